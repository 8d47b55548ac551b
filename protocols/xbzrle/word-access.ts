/**
 * Four bytes at a time over pages, for the XBZRLE codec: JavaScript has no
 * memcmp and no allocation-free memcpy between two arrays (`set` wants a
 * `subarray`, a new object per run), so encode.ts compares and both sides
 * copy through Int32Array views of the whole buffers behind the pages.
 *
 * Hot path: the views are made once per buffer and kept; nothing here
 * allocates per call, and copyBytes writes only the bytes it is asked to.
 */

/**
 * An Int32Array over the whole buffer behind `bytes`, made once per buffer
 * (guest memory, the page cache and the delta buffers live long), so word
 * reads cost no allocation. Index it by (byteOffset + offset) / 4.
 */
export function wordsOf(bytes: Uint8Array): Int32Array {
  const buffer = bytes.buffer;
  const wordCount = buffer.byteLength >>> 2;
  let words = wordViews.get(buffer);
  // A length that changed means a resized buffer: its old view no longer covers it.
  if (words === undefined || words.length !== wordCount) {
    words = new Int32Array(buffer, 0, wordCount);
    wordViews.set(buffer, words);
  }
  return words;
}

const wordViews = new WeakMap<ArrayBufferLike, Int32Array>();

/** Whether this machine stores the low byte of a word first, which copyBytes's shifts assume. */
const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

/** Below this many bytes a plain byte loop is as fast as setting up words. */
const WORD_COPY_MIN = 12;

/**
 * Copies `length` bytes from `source[from]` to `target[to]`, like
 * `target.set(source.subarray(from, from + length), to)` without the
 * subarray. Bytes up to a word boundary of the target go one by one, then
 * whole target words, each put together from the one or two source words
 * its bytes sit in, then the last bytes one by one. It reads the words that
 * hold the source bytes (so up to three bytes either side of them, never
 * past the source buffer) and writes nothing outside `target[to, to + length)`.
 * The two ranges must not overlap.
 */
export function copyBytes(source: Uint8Array, from: number, target: Uint8Array, to: number, length: number): void {
  let k = 0;
  if (length >= WORD_COPY_MIN && LITTLE_ENDIAN) {
    const targetStart = target.byteOffset + to;
    while (((targetStart + k) & 3) !== 0) {
      target[to + k] = source[from + k] as number;
      k++;
    }
    const sourceWords = wordsOf(source);
    const targetWords = wordsOf(target);
    const sourceAddress = source.byteOffset + from + k;
    let sourceWord = sourceAddress >> 2;
    let targetWord = (targetStart + k) >> 2;
    const shift = (sourceAddress & 3) << 3;
    // Whole target words, but no source word past the view: a buffer's last 1-3 bytes are in none.
    let words = (length - k) >> 2;
    const readable = sourceWords.length - sourceWord - (shift === 0 ? 0 : 1);
    if (words > readable) words = readable > 0 ? readable : 0;
    const targetEnd = targetWord + words;
    if (shift === 0) {
      while (targetWord < targetEnd) targetWords[targetWord++] = sourceWords[sourceWord++] as number;
    } else {
      const back = 32 - shift;
      let low = sourceWords[sourceWord] as number;
      while (targetWord < targetEnd) {
        const high = sourceWords[++sourceWord] as number;
        targetWords[targetWord++] = (low >>> shift) | (high << back);
        low = high;
      }
    }
    k += words << 2;
  }
  for (; k < length; k++) target[to + k] = source[from + k] as number;
}
