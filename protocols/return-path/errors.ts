import { CodedError } from '../coded-error.js';

export type ReturnPathErrorCode =
  /** Unknown type, or a body longer than 512 bytes. */
  | 'INVALID_MESSAGE'
  /** A body that is not msgpack or breaks its type's schema. */
  | 'BAD_MESSAGE'
  /** A RECV_BITMAP for an unknown block, over its size limit, or with a bad end marker. */
  | 'BAD_BITMAP'
  /** The return path ended inside a message. */
  | 'TRUNCATED'
  /** Input offered to a decoder that has already ended. */
  | 'DECODER_CLOSED';

/** A malformed return-path message: the return path is bad; callers match on `code`. */
export class ReturnPathError extends CodedError<ReturnPathErrorCode> {
  override readonly name = 'ReturnPathError';
}
