/**
 * The source's migration bitmap (QEMU's RAMBlock bmap): one bit a page still
 * to send, per block, and the count of them, in SharedArrayBuffers.
 *
 * Two threads take pages from it in postcopy: the migration thread, for the
 * background, and the postcopy-preempt thread, for requested pages. A page
 * is sent by whichever takes its bit: `take` clears it atomically and says
 * whether it was set, so with release-ram no page is read after the thread
 * that sent it gave its memory back.
 */
import { AtomicBitmap, popcount } from '../guest/bitmap.js';

/** Everything the bitmap is made of, in a form that can be posted to a worker. */
export interface MigrationBitmapShared {
  words: SharedArrayBuffer[];
  /** Int32 cells: REMAINING, then the request hint (sequence, block, page). */
  cells: SharedArrayBuffer;
}

const REMAINING = 0;
const HINT_SEQ = 1;
const HINT_BLOCK = 2;
const HINT_PAGE = 3;
const CELLS = 4;

export class MigrationBitmap {
  /** Per block; bit i of word w is page 32w+i. */
  readonly words: Int32Array[];
  private readonly cells: Int32Array;
  private hintSeen = 0;

  constructor(readonly shared: MigrationBitmapShared) {
    this.words = shared.words.map((b) => new Int32Array(b));
    this.cells = new Int32Array(shared.cells);
  }

  /** Every page of every block set: the first pass sends them all. */
  static full(pageCounts: readonly number[]): MigrationBitmap {
    const words = pageCounts.map((pages) => {
      const all = new AtomicBitmap(pages);
      all.fill(true);
      return all.buffer;
    });
    const bitmap = new MigrationBitmap({ words, cells: new SharedArrayBuffer(CELLS * 4) });
    Atomics.store(bitmap.cells, REMAINING, pageCounts.reduce((n, p) => n + p, 0));
    return bitmap;
  }

  /** Pages set. */
  get remaining(): number {
    return Atomics.load(this.cells, REMAINING);
  }

  /** Pages set that are also set in `also` (one bitmap per block, as `words`). */
  countAnd(also: readonly AtomicBitmap[]): number {
    let n = 0;
    for (let b = 0; b < this.words.length; b++) {
      const words = this.words[b]!;
      const other = also[b]!.words;
      for (let w = 0; w < words.length; w++) n += popcount(Atomics.load(words, w) & Atomics.load(other, w));
    }
    return n;
  }

  /** Clears the page's bit; true when it was set, so the caller now owns sending it. */
  take(block: number, page: number): boolean {
    const m = 1 << (page & 31);
    if ((Atomics.and(this.words[block]!, page >>> 5, ~m) & m) === 0) return false;
    Atomics.sub(this.cells, REMAINING, 1);
    return true;
  }

  /** ORs a dirty-log word into word `w` (a dirty sync); returns the pages newly set. */
  merge(block: number, w: number, dirty: number): number {
    const added = popcount(dirty & ~Atomics.or(this.words[block]!, w, dirty));
    if (added > 0) Atomics.add(this.cells, REMAINING, added);
    return added;
  }

  /**
   * Recovery: every page of `block` the destination has not received is to
   * send (again), whatever this side sent before the link broke. `received`
   * is the destination's bitmap (bit i of byte k: page 8k+i); pages past
   * its end count as not received. Only the migration thread runs here.
   */
  resendUnreceived(block: number, received: Uint8Array, pageCount: number): void {
    const words = this.words[block]!;
    const bytes = new Uint8Array(4);
    for (let w = 0; w < words.length; w++) {
      for (let i = 0; i < 4; i++) bytes[i] = received[w * 4 + i] ?? 0;
      const got = bytes[0]! | (bytes[1]! << 8) | (bytes[2]! << 16) | (bytes[3]! << 24);
      // No bit past the block's end.
      const valid = (w + 1) * 32 <= pageCount ? -1 : (1 << (pageCount - w * 32)) - 1;
      Atomics.store(words, w, ~got & valid);
    }
  }

  /**
   * Counts the pages set afresh. The count follows every take, but a thread
   * ended between a take's two atomics (a preempt thread torn down by a
   * pause) could leave it off by one: recovery recounts, and so does a
   * sender that finds no page where the count says some remain.
   */
  recount(): void {
    let remaining = 0;
    for (const words of this.words) for (let w = 0; w < words.length; w++) remaining += popcount(Atomics.load(words, w));
    Atomics.store(this.cells, REMAINING, remaining);
  }

  /** Where the guest last asked for pages: the background goes on from there (set by whichever thread served the request). */
  hint(block: number, page: number): void {
    Atomics.store(this.cells, HINT_BLOCK, block);
    Atomics.store(this.cells, HINT_PAGE, page);
    Atomics.add(this.cells, HINT_SEQ, 1);
  }

  /** A hint not seen yet, once. */
  takeHint(): { block: number; page: number } | undefined {
    const seq = Atomics.load(this.cells, HINT_SEQ);
    if (seq === this.hintSeen) return undefined;
    this.hintSeen = seq;
    return { block: Atomics.load(this.cells, HINT_BLOCK), page: Atomics.load(this.cells, HINT_PAGE) };
  }
}
