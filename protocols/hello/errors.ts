import { CodedError } from '../coded-error.js';

export type HelloErrorCode =
  /** The first 4 bytes are not livemig's magic: not a migration connection. */
  | 'BAD_MAGIC'
  /** A stream version this build cannot read. */
  | 'BAD_VERSION'
  /** A field out of range (channel kind, id, count, reserved bytes, UUID). */
  | 'BAD_HELLO'
  /** Fewer than 32 bytes. */
  | 'TRUNCATED';

/**
 * A malformed channel hello. The protocols that read one (the main stream,
 * multifd) report it as their own error, with the same text.
 */
export class HelloError extends CodedError<HelloErrorCode> {
  override readonly name = 'HelloError';
}
