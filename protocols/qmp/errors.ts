import type { QmpErrorClass } from './types.js';

/**
 * An error as QMP reports it: `{"error": {"class", "desc"}}`. Command
 * handlers throw it to answer with a class other than GenericError; the
 * client rejects with it when the server answers an error. `code` is the
 * QMP class, so callers match on it.
 *
 * @example throw new QmpError('DeviceNotFound', "Device 'x' not found")
 */
export class QmpError extends Error {
  override readonly name = 'QmpError';
  constructor(
    readonly errorClass: QmpErrorClass,
    readonly desc: string,
  ) {
    super(desc);
  }

  get code(): QmpErrorClass {
    return this.errorClass;
  }
}

/** The common case: QEMU's error_setg(), class GenericError. */
export function genericError(desc: string): QmpError {
  return new QmpError('GenericError', desc);
}

/** Why a client lost its server: the connection closed, a bound ran out, or the peer broke the protocol. */
export type QmpConnectionErrorCode = 'closed' | 'timeout' | 'protocol';

export class QmpConnectionError extends Error {
  override readonly name = 'QmpConnectionError';
  constructor(
    readonly code: QmpConnectionErrorCode,
    message: string,
  ) {
    super(message);
  }
}
