/**
 * XBZRLE encoding: a re-sent page as its difference from the copy the
 * destination already holds, in QEMU's format (migration/xbzrle.c,
 * docs/devel/migration/xbzrle.rst):
 *
 *   delta = (zero-run length, literal-run length, literal bytes)*
 *
 * Each length is a ULEB128 of one or two bytes (uleb128.ts). A zero run is
 * a stretch where old and new bytes are equal (their XOR is zero); a literal
 * run is a stretch where every byte differs, sent as the new bytes. Runs are
 * maximal, so only the first zero run can be empty, and a zero run that
 * reaches the end of the page is left out. The reading side is decode.ts.
 *
 * Output is byte for byte QEMU's generic encoder's, including where it gives
 * up: it wants two free bytes before each run length (so a page whose tail
 * is unchanged needs two spare bytes at the end), and a literal run must fit
 * whole. QEMU walks the pages a long word at a time; so does this, four
 * bytes at a time, and like QEMU's that changes the speed, never the bytes.
 *
 * Hot path: once per dirty page that hits the page cache. It must never
 * allocate (no subarray, no view or closure per call), nor write outside
 * `out[0, limit)`, nor read beyond the two pages' buffers.
 */
import { ULEB128_SMALL_MAX, writeUleb128Small } from './uleb128.js';
import { copyBytes, wordsOf } from './word-access.js';

/** What encode returns when the delta does not fit the limit: send the page whole. */
export const XBZRLE_OVERFLOW = -1;

/** The largest page encode takes: any run of it must fit a two-byte length, as QEMU asserts. */
export const XBZRLE_MAX_PAGE_SIZE = ULEB128_SMALL_MAX;

/** Room QEMU checks for before writing a run length: the most a length can take. */
const LENGTH_ROOM = 2;

/** The word view of pages that cannot be read by words: never indexed. */
const EMPTY_WORDS = new Int32Array(0);

/**
 * Writes the delta that turns `oldPage` into `newPage` into `out`, at most
 * `limit` bytes (QEMU gives the page size). Returns the delta's length, 0
 * when the pages are equal (nothing to send), or XBZRLE_OVERFLOW (-1) when
 * it would not fit; `out` then holds garbage below `limit`.
 *
 * @example
 * const delta = new Uint8Array(4096);
 * const n = encode(cachedPage, guestPage, delta);
 * if (n === XBZRLE_OVERFLOW) sendWhole(guestPage); else if (n > 0) sendDelta(delta, n);
 */
export function encode(oldPage: Uint8Array, newPage: Uint8Array, out: Uint8Array, limit: number = out.length): number {
  const size = newPage.length;
  if (oldPage.length !== size) {
    throw new RangeError(`XBZRLE: the old page has ${oldPage.length} bytes, the new page ${size}`);
  }
  if (size > XBZRLE_MAX_PAGE_SIZE) {
    throw new RangeError(`XBZRLE: a page of ${size} bytes is over the ${XBZRLE_MAX_PAGE_SIZE} a run length can hold`);
  }
  if (!Number.isInteger(limit) || limit < 0 || limit > out.length) {
    throw new RangeError(`XBZRLE: limit ${limit} is not within the ${out.length}-byte output`);
  }

  // Word steps need both pages word-aligned in their buffers (guest memory and cache pages are).
  const byWords = ((oldPage.byteOffset | newPage.byteOffset) & 3) === 0;
  const oldWords = byWords ? wordsOf(oldPage) : EMPTY_WORDS;
  const newWords = byWords ? wordsOf(newPage) : EMPTY_WORDS;
  const oldBase = oldPage.byteOffset >> 2;
  const newBase = newPage.byteOffset >> 2;
  const wordEnd = byWords ? size >> 2 : 0;

  let at = 0;
  let used = 0;
  while (at < size) {
    if (used + LENGTH_ROOM > limit) return XBZRLE_OVERFLOW;

    // Zero run: bytes up to a word boundary, whole equal words, then bytes again.
    const zeroStart = at;
    while ((at & 3) !== 0 && at < size && oldPage[at] === newPage[at]) at++;
    if ((at & 3) === 0) {
      let word = at >> 2;
      // Four words a round while they all match (the common case: most of a page unchanged), then one at a time.
      while (
        word + 4 <= wordEnd &&
        (((oldWords[oldBase + word] as number) ^ (newWords[newBase + word] as number)) |
          ((oldWords[oldBase + word + 1] as number) ^ (newWords[newBase + word + 1] as number)) |
          ((oldWords[oldBase + word + 2] as number) ^ (newWords[newBase + word + 2] as number)) |
          ((oldWords[oldBase + word + 3] as number) ^ (newWords[newBase + word + 3] as number))) ===
          0
      ) {
        word += 4;
      }
      while (word < wordEnd && oldWords[oldBase + word] === newWords[newBase + word]) word++;
      at = word << 2;
      while (at < size && oldPage[at] === newPage[at]) at++;
    }
    // Equal pages: nothing to send. A zero run up to the end is implied.
    if (at === size) return zeroStart === 0 ? 0 : used;
    used += writeUleb128Small(out, used, at - zeroStart);

    if (used + LENGTH_ROOM > limit) return XBZRLE_OVERFLOW;

    // Literal run: the same, with whole words while none of their bytes is equal.
    const literalStart = at;
    while ((at & 3) !== 0 && at < size && oldPage[at] !== newPage[at]) at++;
    if ((at & 3) === 0) {
      let word = at >> 2;
      while (word < wordEnd && !hasZeroByte((oldWords[oldBase + word] as number) ^ (newWords[newBase + word] as number))) word++;
      at = word << 2;
      while (at < size && oldPage[at] !== newPage[at]) at++;
    }
    const literal = at - literalStart;
    used += writeUleb128Small(out, used, literal);
    if (used + literal > limit) return XBZRLE_OVERFLOW;
    copyBytes(newPage, literalStart, out, used, literal);
    used += literal;
  }
  return used;
}

/** The high bit of each byte of a word, as an int32. */
const HIGH_BITS = 0x80808080 | 0;

/**
 * Whether some byte of `word` is zero: the classic bit trick QEMU uses too.
 * After 1 is taken from every byte, a byte below 0x80 (kept by `~word`)
 * shows its high bit only if it was zero or a zero byte below it borrowed;
 * with no zero byte there is no borrow, so the answer is exact.
 */
function hasZeroByte(word: number): boolean {
  return (((word - 0x01010101) | 0) & ~word & HIGH_BITS) !== 0;
}
