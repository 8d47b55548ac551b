/**
 * XBZRLE decoding: applies a delta (encode.ts has the format) to the page
 * the destination already holds, in place.
 *
 * It accepts exactly the deltas QEMU's `xbzrle_decode_buffer` accepts, and
 * refuses the rest with an XbzrleError naming the rule and the byte of the
 * delta. Unlike QEMU, which copies each run as it goes and may leave a page
 * half-patched before it meets a bad pair, the whole delta is checked first:
 * a refused delta leaves the page as it was.
 *
 * Hot path: once per XBZRLE page received. It must never allocate, nor
 * write anywhere but `page` (the delta must not share its bytes).
 */
import { XbzrleError } from './errors.js';
import {
  ULEB128_TOO_LONG,
  ULEB128_TRUNCATED,
  readUleb128Small,
  uleb128Size,
  uleb128Value,
} from './uleb128.js';
import { copyBytes } from './word-access.js';

/**
 * Turns `page`, which holds the old page, into the new one by applying
 * `encoded` (a whole delta, as encode wrote it). An empty delta changes
 * nothing. Throws XbzrleError, with `page` untouched, if the delta is corrupt.
 *
 * @example
 * decode(received.subarray(0, length), guestPage);
 */
export function decode(encoded: Uint8Array, page: Uint8Array): void {
  checkDelta(encoded, page.length);
  applyDelta(encoded, page);
}

/**
 * Walks the pairs without writing anything and throws at the first one
 * QEMU would refuse. The rules, in the order met along a pair: each length
 * is complete and at most two bytes; a zero run is empty only in the first
 * pair; runs stay within the page; a zero run is followed by a literal run
 * of at least one byte, all of whose bytes are in the delta.
 */
function checkDelta(encoded: Uint8Array, pageSize: number): void {
  const end = encoded.length;
  let at = 0;
  let covered = 0;
  while (at < end) {
    const zeroAt = at;
    const zero = readLength(encoded, zeroAt, end, 'zero-run');
    const zeroLength = uleb128Value(zero);
    if (zeroLength === 0 && zeroAt > 0) {
      throw new XbzrleError('EMPTY_RUN', zeroAt, 'a zero run of 0 bytes after the first pair');
    }
    checkWithinPage('zero', zeroLength, covered, pageSize, zeroAt);
    covered += zeroLength;
    at += uleb128Size(zero);

    if (at >= end) {
      throw new XbzrleError('TRUNCATED_PAIR', at, 'the delta ends after a zero run, without its literal run');
    }
    const literalAt = at;
    const literal = readLength(encoded, literalAt, end, 'literal-run');
    const literalLength = uleb128Value(literal);
    if (literalLength === 0) {
      throw new XbzrleError('EMPTY_RUN', literalAt, 'a literal run of 0 bytes');
    }
    checkWithinPage('literal', literalLength, covered, pageSize, literalAt);
    at += uleb128Size(literal);
    if (at + literalLength > end) {
      throw new XbzrleError(
        'LITERAL_PAST_INPUT',
        literalAt,
        `a literal run of ${literalLength} bytes, but only ${end - at} are left in the ${end}-byte delta`,
      );
    }
    covered += literalLength;
    at += literalLength;
  }
}

/** A run of `length` bytes from page offset `covered` must end within the page. */
function checkWithinPage(kind: 'zero' | 'literal', length: number, covered: number, pageSize: number, at: number): void {
  if (covered + length > pageSize) {
    throw new XbzrleError('RUN_PAST_PAGE', at, `a ${kind} run of ${length} bytes from page offset ${covered} goes past the ${pageSize}-byte page`);
  }
}

/** Reads a run length for checkDelta, turning the two ways it can fail into errors. */
function readLength(encoded: Uint8Array, at: number, end: number, what: string): number {
  const packed = readUleb128Small(encoded, at, end);
  if (packed === ULEB128_TRUNCATED) {
    throw new XbzrleError('TRUNCATED_LENGTH', at, `the delta ends inside a ${what} length`);
  }
  if (packed === ULEB128_TOO_LONG) {
    throw new XbzrleError('LENGTH_TOO_LONG', at, `a ${what} length of more than 2 bytes (over 14 bits)`);
  }
  return packed;
}

/** Copies the literal runs of a delta checkDelta has passed into `page`. */
function applyDelta(encoded: Uint8Array, page: Uint8Array): void {
  const end = encoded.length;
  let at = 0;
  let covered = 0;
  while (at < end) {
    const zero = readUleb128Small(encoded, at, end);
    covered += uleb128Value(zero);
    at += uleb128Size(zero);
    const literal = readUleb128Small(encoded, at, end);
    const literalLength = uleb128Value(literal);
    at += uleb128Size(literal);
    copyBytes(encoded, at, page, covered, literalLength);
    covered += literalLength;
    at += literalLength;
  }
}
