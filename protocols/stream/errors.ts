import { CodedError } from '../coded-error.js';

export type StreamErrorCode =
  /** The first 4 bytes are not livemig's magic: not a migration stream. */
  | 'BAD_MAGIC'
  /** A stream version this build cannot read. */
  | 'BAD_VERSION'
  /** A hello field out of range (channel kind, id, count, reserved bytes). */
  | 'BAD_HELLO'
  /** A frame header with non-zero flags or reserved bits. */
  | 'BAD_FRAME'
  | 'BAD_FRAME_TYPE'
  /** A frame header announcing a body over its type's limit; refused before buffering. */
  | 'FRAME_TOO_LARGE'
  /** A PAGES frame whose runs or length do not fit the guest layout or the format. */
  | 'BAD_PAGES'
  /** An XBZRLE frame the destination cannot load (QEMU's "Failed to load XBZRLE page - …"). */
  | 'BAD_XBZRLE'
  /** A control message that is not msgpack or breaks its type's schema. */
  | 'BAD_MESSAGE'
  | 'UNKNOWN_MESSAGE'
  /** The stream ended inside the hello or a frame. */
  | 'TRUNCATED'
  /** Input offered to a decoder that has already ended. */
  | 'DECODER_CLOSED';

/** A malformed or hostile migration stream; callers match on `code`. */
export class StreamError extends CodedError<StreamErrorCode> {
  override readonly name = 'StreamError';
}
