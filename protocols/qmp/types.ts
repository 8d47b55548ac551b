/**
 * Public shapes of the QMP layer: JSON values as QMP carries them, and the
 * messages that cross the wire.
 */

/**
 * A JSON value with QAPI's integers kept exact: an integer token inside the
 * safe range is a `number`, beyond it a `bigint` (a uint64 such as
 * 18446744073709551615 never passes through a float). Fractions and
 * exponents are `number`s.
 */
export type JsonValue = null | boolean | number | bigint | string | JsonValue[] | JsonObject;
export interface JsonObject {
  [key: string]: JsonValue;
}

/** QEMU's QapiErrorClass values (qapi/error.json, 8.2). */
export type QmpErrorClass =
  | 'GenericError'
  | 'CommandNotFound'
  | 'DeviceNotActive'
  | 'DeviceNotFound'
  | 'KVMMissingCap';

export interface QmpVersion {
  qemu: { micro: number; minor: number; major: number };
  package: string;
}

/** The first line a QMP server writes. */
export interface QmpGreeting {
  QMP: { version: QmpVersion; capabilities: string[] };
}

/** Wall-clock time of an event, as QEMU stamps it. */
export interface QmpTimestamp {
  seconds: number;
  microseconds: number;
}

export interface QmpEvent {
  event: string;
  /** Absent for events that carry nothing (QEMU's STOP, RESUME). */
  data?: JsonObject;
  timestamp: QmpTimestamp;
}

export type QmpResponse =
  | { return: JsonValue; id?: JsonValue }
  | { error: { class: QmpErrorClass; desc: string }; id?: JsonValue };
