/**
 * A small seeded PRNG (mulberry32) so fuzz runs and random chunkings repeat
 * exactly. Set LIVEMIG_FUZZ_SEED to replay or vary a fuzz run, LIVEMIG_FUZZ_ITERATIONS
 * to soak longer.
 */
export class SeededRandom {
  private state: number;

  constructor(readonly seed: number) {
    this.state = seed >>> 0;
  }

  /** Uniform in [0, 1). */
  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** An integer in [min, max]. */
  int(min: number, max: number): number {
    return min + Math.floor(this.next() * (max - min + 1));
  }

  pick<T>(items: readonly T[]): T {
    return items[this.int(0, items.length - 1)] as T;
  }

  bytes(length: number): Uint8Array {
    const out = new Uint8Array(length);
    for (let i = 0; i < length; i++) out[i] = this.int(0, 255);
    return out;
  }

  /** Splits `data` into chunks of random sizes from 1 to `maxChunk`. */
  chunks(data: Uint8Array, maxChunk: number): Uint8Array[] {
    const out: Uint8Array[] = [];
    for (let at = 0; at < data.length; ) {
      const n = this.int(1, maxChunk);
      out.push(data.subarray(at, at + n));
      at += n;
    }
    return out;
  }
}

/** The seed for fuzz tests: LIVEMIG_FUZZ_SEED, else a fixed one so CI is repeatable. */
export function fuzzSeed(fallback: number): number {
  const fromEnv = process.env['LIVEMIG_FUZZ_SEED'];
  return fromEnv !== undefined && /^\d+$/.test(fromEnv) ? Number(fromEnv) : fallback;
}

/** How many cases a fuzz test runs: LIVEMIG_FUZZ_ITERATIONS for a longer soak, else `fallback`. */
export function fuzzIterations(fallback: number): number {
  const fromEnv = process.env['LIVEMIG_FUZZ_ITERATIONS'];
  return fromEnv !== undefined && /^\d+$/.test(fromEnv) ? Number(fromEnv) : fallback;
}
