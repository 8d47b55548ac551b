/**
 * The run lengths of an XBZRLE delta: unsigned LEB128 limited to 14 bits,
 * so one or two bytes, as QEMU's `uleb128_encode_small` /
 * `uleb128_decode_small` (util/cutils.c) write and read them. Seven value
 * bits per byte, low group first; the top bit says another byte follows.
 *
 * Hot path: called twice per run; it never allocates, so reading packs the
 * value and its size into one number instead of returning an object.
 */

/** The largest length two bytes hold; QEMU asserts on anything larger. */
export const ULEB128_SMALL_MAX = 0x3fff;

/** What readUleb128Small answers when the length at `at` is cut off by `end`. */
export const ULEB128_TRUNCATED = -1;

/** What readUleb128Small answers when the second byte also says "more follows" (over 14 bits). */
export const ULEB128_TOO_LONG = -2;

/** Bits of a packed read below the size: the value itself. */
const VALUE_BITS = 14;

/**
 * Writes `value` (0..ULEB128_SMALL_MAX) at `out[at]` and returns how many
 * bytes it took (1 below 128, else 2). The caller has checked that two bytes
 * fit.
 *
 * @example writeUleb128Small(out, 0, 1001) // out[0..2) = e9 07, returns 2
 */
export function writeUleb128Small(out: Uint8Array, at: number, value: number): number {
  if (value < 0x80) {
    out[at] = value;
    return 1;
  }
  out[at] = (value & 0x7f) | 0x80;
  out[at + 1] = value >>> 7;
  return 2;
}

/**
 * Reads the length at `input[at]`, looking no further than `end`: the value
 * in the low 14 bits and its size in bytes above them (take them apart with
 * uleb128Value and uleb128Size), or ULEB128_TRUNCATED / ULEB128_TOO_LONG.
 * Like QEMU, a second byte of 0 is accepted (`81 00` reads as 1): the
 * encoder never writes one, but QEMU's decoder takes it.
 */
export function readUleb128Small(input: Uint8Array, at: number, end: number): number {
  const first = input[at] as number;
  if ((first & 0x80) === 0) return first | (1 << VALUE_BITS);
  if (at + 1 >= end) return ULEB128_TRUNCATED;
  const second = input[at + 1] as number;
  if ((second & 0x80) !== 0) return ULEB128_TOO_LONG;
  return (first & 0x7f) | (second << 7) | (2 << VALUE_BITS);
}

/** The value of a successful readUleb128Small. */
export function uleb128Value(packed: number): number {
  return packed & ULEB128_SMALL_MAX;
}

/** How many bytes a successful readUleb128Small consumed (1 or 2). */
export function uleb128Size(packed: number): number {
  return packed >>> VALUE_BITS;
}
