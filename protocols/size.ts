/**
 * Sizes as QEMU's command line and QAPI `size` values take them: a decimal
 * number with an optional binary suffix (K, M, G, T, P, E; `B` for bytes).
 * Returns a bigint so `size` parameters up to 2^64-1 stay exact.
 *
 * @example parseSize('256M') === 268435456n
 */
export function parseSize(text: string): bigint {
  const m = /^(\d+)([KMGTPE]?)B?$/i.exec(text.trim());
  if (!m) throw new RangeError(`'${text}' is not a size (expected a number with an optional K, M, G or T suffix)`);
  const shift = SUFFIX_SHIFT[(m[2] ?? '').toUpperCase()] ?? 0n;
  const value = BigInt(m[1]!) << shift;
  if (value > MAX_UINT64) throw new RangeError(`size '${text}' is larger than 2^64-1`);
  return value;
}

/** parseSize for a size that must also fit in a JS number (RAM sizes, offsets). */
export function parseSafeSize(text: string): number {
  const value = parseSize(text);
  if (value > BigInt(Number.MAX_SAFE_INTEGER)) throw new RangeError(`size '${text}' is too large`);
  return Number(value);
}

const SUFFIX_SHIFT: Record<string, bigint> = { '': 0n, K: 10n, M: 20n, G: 30n, T: 40n, P: 50n, E: 60n };
const MAX_UINT64 = (1n << 64n) - 1n;
