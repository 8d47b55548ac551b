/**
 * The source's RAM side (QEMU's ram.c): the migration bitmap of pages still
 * to send, dirty syncs that merge the guest's dirty log into it, and page
 * batches taken from it.
 *
 * Hot path: nextBatch runs once per ~1 MiB of pages. Per page it tests a bit
 * and, for a page the guest has written, compares it with a zero page in
 * place; it never copies page bytes or allocates per page. Pages the guest
 * never wrote are sent as zero runs without being read at all.
 */
import { AtomicBitmap, popcount } from '../guest/bitmap.js';
import { TARGET_PAGE_SIZE } from '../guest/constants.js';
import { DirtyLog } from '../guest/dirty-log.js';
import type { RamBlock } from '../guest/ram-block.js';
import type { PageRun } from '../../protocols/stream/types.js';

export interface PageBatch {
  block: number;
  runs: PageRun[];
  /** Views of guest memory holding the non-zero runs' bytes, in run order. */
  data: Uint8Array[];
  normalPages: number;
  zeroPages: number;
}

/** At most this many pages with data in one batch: 1 MiB, the write size loopback likes. */
const MAX_NORMAL_PAGES = 256;
const MAX_PAGES = 2048;
const MAX_RUNS = 1024;
const ZERO_PAGE = Buffer.alloc(TARGET_PAGE_SIZE);

export class RamSaver {
  /** Pages still to send, one bitmap per block (only the migration touches these). */
  private readonly bitmaps: Int32Array[];
  private readonly logs: DirtyLog[];
  private readonly slabs: Buffer[][];
  private cursorBlock = 0;
  private cursorPage = 0;
  /** Pages set in the migration bitmaps. */
  remaining = 0;

  constructor(private readonly blocks: readonly RamBlock[]) {
    this.logs = blocks.map((b) => new DirtyLog(b));
    this.slabs = blocks.map((b) => b.slabs.map((s) => Buffer.from(s.buffer, s.byteOffset, s.byteLength)));
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
  nextBatch(): PageBatch | null {
    if (this.remaining === 0) return null;
    for (let tried = 0; tried <= this.blocks.length; tried++) {
      const batch = this.takeFromBlock(this.cursorBlock);
      if (batch) return batch;
      this.cursorBlock = (this.cursorBlock + 1) % this.blocks.length;
      this.cursorPage = 0;
    }
    return null;
  }

  private takeFromBlock(b: number): PageBatch | null {
    const bmap = this.bitmaps[b]!;
    const ram = this.blocks[b]!;
    const slabs = this.slabs[b]!;
    let page = findNextSet(bmap, this.cursorPage, ram.pageCount);
    if (page < 0) return null;
    const runs: PageRun[] = [];
    let run: PageRun | undefined;
    let normal = 0;
    let zero = 0;
    while (page >= 0 && normal < MAX_NORMAL_PAGES && normal + zero < MAX_PAGES) {
      const isZero = !ram.touched.test(page) || isZeroPage(slabs, ram, page);
      const extends_ =
        run !== undefined && run.first + run.count === page && run.zero === isZero &&
        (isZero || ram.slabIndex(run.first) === ram.slabIndex(page));
      if (!extends_) {
        if (runs.length === MAX_RUNS) break;
        run = { first: page, count: 0, zero: isZero };
        runs.push(run);
      }
      run!.count++;
      bmap[page >>> 5]! &= ~(1 << (page & 31));
      if (isZero) zero++;
      else normal++;
      page = findNextSet(bmap, page + 1, ram.pageCount);
    }
    this.cursorPage = page < 0 ? ram.pageCount : page;
    this.remaining -= normal + zero;
    const data: Uint8Array[] = [];
    for (const r of runs) if (!r.zero) data.push(ram.pagesView(r.first, r.count));
    return { block: b, runs, data, normalPages: normal, zeroPages: zero };
  }
}

function isZeroPage(slabs: Buffer[], ram: RamBlock, page: number): boolean {
  const slab = slabs[ram.slabIndex(page)]!;
  const at = ram.offsetInSlab(page);
  // Non-zero pages usually differ in the first bytes, so this returns early.
  return ZERO_PAGE.compare(slab, at, at + TARGET_PAGE_SIZE) === 0;
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
