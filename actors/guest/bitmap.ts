/**
 * A bitmap of pages over a SharedArrayBuffer, one bit a page, that every
 * thread updates with Atomics only. Used for the dirty, received,
 * write-protect and touched bitmaps of a RAM block.
 */
export class AtomicBitmap {
  readonly words: Int32Array;

  constructor(readonly bits: number, buffer?: SharedArrayBuffer) {
    const wordCount = Math.ceil(bits / 32);
    this.words = new Int32Array(buffer ?? new SharedArrayBuffer(Math.max(1, wordCount) * 4), 0, wordCount);
  }

  get buffer(): SharedArrayBuffer {
    return this.words.buffer as SharedArrayBuffer;
  }

  test(bit: number): boolean {
    return (Atomics.load(this.words, bit >>> 5) & (1 << (bit & 31))) !== 0;
  }

  /** Sets the bit and wakes any thread waiting on its word (a faulted vCPU). */
  set(bit: number): void {
    const w = bit >>> 5;
    Atomics.or(this.words, w, 1 << (bit & 31));
    Atomics.notify(this.words, w);
  }

  /**
   * ORs `mask` into word `w`; with `wake`, wakes the threads waiting on it.
   * Setting a run of bits a word at a time costs one wake per word instead
   * of one per bit, and a wake is the dear part.
   */
  setWord(w: number, mask: number, wake: boolean): void {
    Atomics.or(this.words, w, mask);
    if (wake) Atomics.notify(this.words, w);
  }

  /** Sets the bit; true when this call set it (it was clear), so the caller owns what it guards. */
  testAndSet(bit: number): boolean {
    const m = 1 << (bit & 31);
    return (Atomics.or(this.words, bit >>> 5, m) & m) === 0;
  }

  clear(bit: number): void {
    const w = bit >>> 5;
    Atomics.and(this.words, w, ~(1 << (bit & 31)));
    Atomics.notify(this.words, w);
  }

  /** Sets `count` bits from `first`, a word at a time where whole words are covered. */
  setRange(first: number, count: number): void {
    this.updateRange(first, count, true);
  }

  clearRange(first: number, count: number): void {
    this.updateRange(first, count, false);
  }

  private updateRange(first: number, count: number, on: boolean): void {
    let bit = first;
    const end = first + count;
    while (bit < end) {
      const w = bit >>> 5;
      const lo = bit & 31;
      const n = Math.min(32 - lo, end - bit);
      const mask = n === 32 ? -1 : ((1 << n) - 1) << lo;
      if (on) Atomics.or(this.words, w, mask);
      else Atomics.and(this.words, w, ~mask);
      Atomics.notify(this.words, w);
      bit += n;
    }
  }

  /**
   * Atomically takes the whole bitmap and leaves it clear (KVM's get-dirty-log
   * with clear): a bit set by a writer after its word was exchanged stays set
   * for the next call, so no write is ever lost between two calls.
   */
  fetchAndClear(into: Int32Array): number {
    let count = 0;
    const words = this.words;
    for (let w = 0; w < words.length; w++) {
      if (Atomics.load(words, w) === 0) {
        into[w] = 0;
        continue;
      }
      const v = Atomics.exchange(words, w, 0);
      into[w] = v;
      count += popcount(v);
    }
    return count;
  }

  count(): number {
    let n = 0;
    for (let w = 0; w < this.words.length; w++) n += popcount(Atomics.load(this.words, w));
    return n;
  }

  fill(on: boolean): void {
    const full = on ? -1 : 0;
    for (let w = 0; w < this.words.length; w++) Atomics.store(this.words, w, full);
    // Bits past the end must stay clear so counts are exact.
    const tail = this.bits & 31;
    if (on && tail !== 0) Atomics.store(this.words, this.words.length - 1, (1 << tail) - 1);
  }
}

export function popcount(v: number): number {
  v = v - ((v >>> 1) & 0x55555555);
  v = (v & 0x33333333) + ((v >>> 2) & 0x33333333);
  return (((v + (v >>> 4)) & 0x0f0f0f0f) * 0x01010101) >>> 24;
}

/** Calls fn(first, count) for each run of set bits in a plain (snapshot) bitmap. */
export function forEachRun(words: Int32Array, bits: number, fn: (first: number, count: number) => void): void {
  let runStart = -1;
  for (let w = 0; w < words.length; w++) {
    const v = words[w]!;
    if (v === 0 || v === -1) {
      const base = w << 5;
      if (v === -1 && runStart < 0) runStart = base;
      else if (v === 0 && runStart >= 0) {
        fn(runStart, base - runStart);
        runStart = -1;
      }
      continue;
    }
    for (let b = 0; b < 32; b++) {
      const bit = (w << 5) + b;
      if (v & (1 << b)) {
        if (runStart < 0) runStart = bit;
      } else if (runStart >= 0) {
        fn(runStart, bit - runStart);
        runStart = -1;
      }
    }
  }
  if (runStart >= 0) fn(runStart, Math.min(bits, words.length << 5) - runStart);
}
