import { CodedError } from '../coded-error.js';

export type MultifdErrorCode =
  /** The channel hello is malformed or is not a multifd channel's. */
  | 'BAD_HELLO'
  /** A packet header without MULTIFD_MAGIC: out of step, or not a multifd channel. */
  | 'BAD_MAGIC'
  | 'BAD_VERSION'
  /** Flag bits this build does not know. */
  | 'BAD_FLAGS'
  /** A packet compressed otherwise than this side's `multifd-compression`. */
  | 'COMPRESSION_MISMATCH'
  /** A packet number that skips or repeats one. */
  | 'OUT_OF_SEQUENCE'
  /** A packet of another round than the one this channel is in. */
  | 'BAD_ROUND'
  /** A block index the guest does not have (or pages before the layout is known). */
  | 'BAD_BLOCK'
  /** A run of no pages, or pages beyond the end of their block. */
  | 'BAD_RUN'
  /** A data length that does not match the packet's runs. */
  | 'BAD_LENGTH'
  /** Runs, pages or data over the packet limits; refused before buffering. */
  | 'TOO_LARGE'
  /** Compressed data that is corrupt or does not decompress to the runs' exact size. */
  | 'DECOMPRESS_FAILED'
  /** The channel ended inside its hello or a packet. */
  | 'TRUNCATED'
  /** Input offered to a decoder that has already ended. */
  | 'DECODER_CLOSED';

/** A malformed or hostile multifd channel; callers match on `code`. */
export class MultifdError extends CodedError<MultifdErrorCode> {
  override readonly name = 'MultifdError';
}
