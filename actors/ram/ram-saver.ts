/**
 * The source's RAM side (QEMU's ram.c): the migration bitmap of pages still
 * to send, dirty syncs that merge the guest's dirty log into it, and page
 * batches taken from it.
 *
 * Hot path: nextBatch runs once per ~4 MiB of pages. Per page it tests a bit
 * and, for a page the guest has written, checks in place whether it is
 * zero (ZeroPageCheck); it never copies page bytes or allocates per page. Pages the guest
 * never wrote are sent as zero runs without being read at all.
 */
import { AtomicBitmap, popcount } from '../guest/bitmap.js';
import { DirtyLog } from '../guest/dirty-log.js';
import type { RamBlock } from '../guest/ram-block.js';
import type { PageRun } from '../../protocols/page-runs/types.js';
import { MAX_DATA_PAGES, RunBuilder, ZeroPageCheck } from './page-runs.js';

export interface PageBatch {
  block: number;
  runs: PageRun[];
  /** Views of guest memory holding the non-zero runs' bytes, in run order. */
  data: Uint8Array[];
  normalPages: number;
  zeroPages: number;
}

export class RamSaver {
  /** Pages still to send, one bitmap per block (only the migration touches these). */
  private readonly bitmaps: Int32Array[];
  private readonly logs: DirtyLog[];
  private readonly zero: ZeroPageCheck[];
  private cursorBlock = 0;
  private cursorPage = 0;
  /** Pages set in the migration bitmaps. */
  remaining = 0;

  constructor(private readonly blocks: readonly RamBlock[]) {
    this.logs = blocks.map((b) => new DirtyLog(b));
    this.zero = blocks.map((b) => new ZeroPageCheck(b));
    this.bitmaps = blocks.map((b) => {
      const all = new AtomicBitmap(b.pageCount);
      all.fill(true);
      return Int32Array.from(all.words);
    });
    this.remaining = blocks.reduce((n, b) => n + b.pageCount, 0);
  }

  /**
   * Starts dirty logging: from here on every guest write is caught; what was
   * written before is covered by the first, full pass.
   */
  startDirtyLogging(): void {
    for (const log of this.logs) log.reset();
  }

  /**
   * QEMU's migration_bitmap_sync: fetch-and-clear every block's dirty log and
   * merge it into the migration bitmap. Returns the dirty-page rate.
   */
  sync(): { rate: number } {
    let rate = 0;
    for (let b = 0; b < this.blocks.length; b++) {
      const s = this.logs[b]!.sync();
      rate += s.rate;
      if (s.count === 0) continue;
      const bmap = this.bitmaps[b]!;
      for (let w = 0; w < bmap.length; w++) {
        const dirty = s.bitmap[w]!;
        if (dirty === 0) continue;
        this.remaining += popcount(dirty & ~bmap[w]!);
        bmap[w]! |= dirty;
      }
    }
    return { rate };
  }

  /** The next batch of pages to send, going round the blocks; null when nothing is left. */
  nextBatch(maxDataPages = MAX_DATA_PAGES): PageBatch | null {
    if (this.remaining === 0) return null;
    for (let tried = 0; tried <= this.blocks.length; tried++) {
      const batch = this.takeFromBlock(this.cursorBlock, maxDataPages);
      if (batch) return batch;
      this.cursorBlock = (this.cursorBlock + 1) % this.blocks.length;
      this.cursorPage = 0;
    }
    return null;
  }

  /**
   * For multifd: the next dirty ranges of one block, up to `maxPages`, of
   * which at most `maxDataPages` the guest has written (the rest are zero
   * and cost no wire bytes), taken from the bitmap without reading a byte
   * (channel workers read, detect zero pages and send). Flat pairs: first,
   * count, first, count, …
   */
  nextRanges(maxPages: number, maxDataPages = maxPages): { block: number; ranges: Uint32Array; pages: number; dataPages: number } | null {
    if (this.remaining === 0) return null;
    for (let tried = 0; tried <= this.blocks.length; tried++) {
      const b = this.cursorBlock;
      const bmap = this.bitmaps[b]!;
      const pageCount = this.blocks[b]!.pageCount;
      let page = findNextSet(bmap, this.cursorPage, pageCount);
      if (page >= 0) {
        const pairs: number[] = [];
        const touched = this.blocks[b]!.touched;
        let taken = 0;
        let data = 0;
        while (page >= 0 && taken < maxPages && data < maxDataPages) {
          let count = 0;
          while (
            page + count < pageCount && taken + count < maxPages && data < maxDataPages &&
            (bmap[(page + count) >>> 5]! & (1 << ((page + count) & 31))) !== 0
          ) {
            bmap[(page + count) >>> 5]! &= ~(1 << ((page + count) & 31));
            if (touched.test(page + count)) data++;
            count++;
          }
          pairs.push(page, count);
          taken += count;
          page = findNextSet(bmap, page + count, pageCount);
        }
        this.cursorPage = page < 0 ? pageCount : page;
        this.remaining -= taken;
        return { block: b, ranges: Uint32Array.from(pairs), pages: taken, dataPages: data };
      }
      this.cursorBlock = (b + 1) % this.blocks.length;
      this.cursorPage = 0;
    }
    return null;
  }

  /**
   * Postcopy: the pages a page request names, taken out of the bitmap if
   * they were still there, as batches ready to send. With `resend`, pages
   * that went before are sent again (the request may have overtaken them):
   * the destination places a page only once, so a second copy is dropped
   * there. Without it (release-ram: their memory may be gone) they are not.
   * The background goes on from just past the request, as QEMU's does: a
   * guest that touched this page is likely to touch the next ones.
   */
  requestedBatches(block: number, firstPage: number, count: number, resend: boolean): PageBatch[] {
    this.cursorBlock = block;
    this.cursorPage = firstPage + count;
    const bmap = this.bitmaps[block]!;
    const ram = this.blocks[block]!;
    const zero = this.zero[block]!;
    const batches: PageBatch[] = [];
    let builder = new RunBuilder(ram);
    const flush = () => {
      batches.push({ block, runs: builder.runs, data: builder.dataViews(), normalPages: builder.dataPages, zeroPages: builder.zeroPages });
      builder = new RunBuilder(ram);
    };
    for (let page = firstPage; page < firstPage + count; page++) {
      const w = page >>> 5;
      const m = 1 << (page & 31);
      if ((bmap[w]! & m) !== 0) {
        bmap[w]! &= ~m;
        this.remaining--;
      } else if (!resend) {
        continue;
      }
      const isZero = zero.isZero(page);
      if (!builder.add(page, isZero)) {
        flush();
        builder.add(page, isZero);
      }
    }
    if (!builder.empty) flush();
    return batches;
  }

  /**
   * The pages still to send, per block, as bitmaps of 32-bit words (bit i of
   * word w is page 32w+i): at the switch to postcopy, the pages the
   * destination must drop what it holds of (DESIGN rule 3's discard list).
   */
  pendingBitmaps(): readonly Int32Array[] {
    return this.bitmaps;
  }

  private takeFromBlock(b: number, maxDataPages: number): PageBatch | null {
    const bmap = this.bitmaps[b]!;
    const ram = this.blocks[b]!;
    const zero = this.zero[b]!;
    let page = findNextSet(bmap, this.cursorPage, ram.pageCount);
    if (page < 0) return null;
    const builder = new RunBuilder(ram, maxDataPages);
    while (page >= 0 && builder.add(page, zero.isZero(page))) {
      bmap[page >>> 5]! &= ~(1 << (page & 31));
      page = findNextSet(bmap, page + 1, ram.pageCount);
    }
    this.cursorPage = page < 0 ? ram.pageCount : page;
    this.remaining -= builder.dataPages + builder.zeroPages;
    return { block: b, runs: builder.runs, data: builder.dataViews(), normalPages: builder.dataPages, zeroPages: builder.zeroPages };
  }
}

/** The first set bit at or after `from`, below `limit`; -1 if none. */
export function findNextSet(words: Int32Array, from: number, limit: number): number {
  let w = from >>> 5;
  if (w >= words.length) return -1;
  let v = words[w]! & (~0 << (from & 31));
  while (v === 0) {
    if (++w >= words.length) return -1;
    v = words[w]!;
  }
  const bit = (w << 5) + (31 - Math.clz32(v & -v));
  return bit < limit ? bit : -1;
}
