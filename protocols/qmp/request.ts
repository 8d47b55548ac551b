/**
 * The envelope of a QMP request, checked as qmp_dispatch_check_obj does:
 * `{"execute": NAME, "arguments": {...}, "id": ANY}`, or `exec-oob` in place
 * of `execute` once the client has enabled out-of-band execution.
 */
import { genericError } from './errors.js';
import type { JsonObject, JsonValue } from './types.js';

export interface QmpRequest {
  command: string;
  arguments: JsonObject;
  /** Run out-of-band (`exec-oob`): ahead of queued in-band requests. */
  oob: boolean;
}

function isObject(value: JsonValue): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** The request's `id`, echoed in its response whatever else is wrong with it. */
export function requestId(value: JsonValue): JsonValue | undefined {
  return isObject(value) && Object.hasOwn(value, 'id') ? value.id : undefined;
}

/** qmp_is_oob: such a request skips the in-band queue (and is refused there if OOB is off). */
export function isOobRequest(value: JsonValue): boolean {
  return isObject(value) && Object.hasOwn(value, 'exec-oob') && !Object.hasOwn(value, 'execute');
}

/** @throws QmpError (GenericError) with QEMU's text. */
export function checkRequest(value: JsonValue, oobEnabled: boolean): QmpRequest {
  if (!isObject(value)) throw genericError('QMP input must be a JSON object');
  let execKey: 'execute' | 'exec-oob' | undefined;
  for (const [key, member] of Object.entries(value)) {
    if (key === 'execute' || (key === 'exec-oob' && oobEnabled)) {
      if (typeof member !== 'string') throw genericError(`QMP input member '${key}' must be a string`);
      if (execKey !== undefined) throw genericError(`QMP input member '${key}' clashes with '${execKey}'`);
      execKey = key;
    } else if (key === 'arguments') {
      if (!isObject(member)) throw genericError("QMP input member 'arguments' must be an object");
    } else if (key !== 'id') {
      throw genericError(`QMP input member '${key}' is unexpected`);
    }
  }
  if (execKey === undefined) throw genericError("QMP input lacks member 'execute'");
  return {
    command: value[execKey] as string,
    arguments: Object.hasOwn(value, 'arguments') ? (value.arguments as JsonObject) : {},
    oob: execKey === 'exec-oob',
  };
}
