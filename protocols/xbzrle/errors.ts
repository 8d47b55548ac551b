import { CodedError } from '../coded-error.js';

/**
 * Why a delta was refused. Together they reject exactly the deltas QEMU's
 * `xbzrle_decode_buffer` answers -1 for; the codes only say which rule broke.
 */
export type XbzrleErrorCode =
  /** A run length whose first byte says "more follows" but the delta ends there. */
  | 'TRUNCATED_LENGTH'
  /** A run length of more than two bytes: over QEMU's 14-bit limit. */
  | 'LENGTH_TOO_LONG'
  /** The delta ends after a zero run's length: the pair lacks its literal run. */
  | 'TRUNCATED_PAIR'
  /** A literal run of 0 bytes, or a zero run of 0 bytes other than the first. */
  | 'EMPTY_RUN'
  /** A zero or literal run that ends beyond the page. */
  | 'RUN_PAST_PAGE'
  /** A literal run announcing more bytes than the delta has left. */
  | 'LITERAL_PAST_INPUT';

/** A corrupt or hostile XBZRLE delta; `offset` is the byte of the delta where the bad field starts. */
export class XbzrleError extends CodedError<XbzrleErrorCode> {
  override readonly name = 'XbzrleError';
  readonly offset: number;

  constructor(code: XbzrleErrorCode, offset: number, message: string) {
    super(code, `XBZRLE delta, byte ${offset}: ${message}`);
    this.offset = offset;
  }
}
