/**
 * Pages to PAGES runs: consecutive pages of one kind (zero or with data),
 * data runs never crossing a slab so each is one view of guest memory.
 * Shared by the single-channel RAM saver and the multifd channel workers.
 *
 * Hot path: called per page. No allocation per page, no copy of page bytes.
 */
import { TARGET_PAGE_SIZE } from '../guest/constants.js';
import type { RamBlock } from '../guest/ram-block.js';
import type { PageRun } from '../../protocols/page-runs/types.js';

/**
 * 4 MiB of page data per frame or packet: against 1 MiB, the sender spends
 * ~20% less CPU per GiB and a GiB crosses ~10% faster (interleaved runs,
 * medians), as each frame's header costs its own reads on the destination.
 */
export const MAX_DATA_PAGES = 1024;
export const MAX_PAGES = 2048;
export const MAX_RUNS = 1024;
const ZERO_PAGE = Buffer.alloc(TARGET_PAGE_SIZE);

/**
 * Tells zero pages from written ones in one block. A page is zero if the
 * guest never wrote it (no scan at all); otherwise its first 16 bytes are
 * read in JS — written pages almost always differ there, with no native
 * call — and only a page that starts with zeros gets a native comparison.
 */
export class ZeroPageCheck {
  /** Node Buffers and Int32 views over the block's slabs, made once, so no check makes a view. */
  private readonly buffers: Buffer[];
  private readonly words: Int32Array[];

  constructor(private readonly ram: RamBlock) {
    this.buffers = ram.slabs.map((s) => Buffer.from(s.buffer, s.byteOffset, s.byteLength));
    this.words = ram.slabs.map((s) => new Int32Array(s.buffer, s.byteOffset, s.byteLength >> 2));
  }

  isZero(page: number): boolean {
    const ram = this.ram;
    if (!ram.touched.test(page)) return true;
    const slab = ram.slabIndex(page);
    const at = ram.offsetInSlab(page);
    const words = this.words[slab]!;
    const w = at >> 2;
    if ((words[w]! | words[w + 1]! | words[w + 2]! | words[w + 3]!) !== 0) return false;
    return ZERO_PAGE.compare(this.buffers[slab]!, at, at + TARGET_PAGE_SIZE) === 0;
  }
}

/** One frame's worth of pages of one block, ready to send. */
export interface PageBatch {
  block: number;
  runs: PageRun[];
  /** Views of guest memory holding the non-zero runs' bytes, in run order. */
  data: Uint8Array[];
  normalPages: number;
  zeroPages: number;
}

/** Collects pages into runs within one frame's limits. */
export class RunBuilder {
  runs: PageRun[] = [];
  dataPages = 0;
  zeroPages = 0;
  private last: PageRun | undefined;

  /** `maxDataPages` below MAX_DATA_PAGES keeps a frame within a rate window (see RateLimiter.windowPages). */
  constructor(
    private readonly ram: RamBlock,
    private readonly maxDataPages = MAX_DATA_PAGES,
  ) {}

  /** Whether `add(page, zero)` would take the page. */
  fits(page: number, zero: boolean): boolean {
    return !this.full() && (this.extendsLast(page, zero) || this.runs.length < MAX_RUNS);
  }

  /** False when the page does not fit in this frame (the caller sends and starts another). */
  add(page: number, zero: boolean): boolean {
    if (this.full()) return false;
    const run = this.last;
    if (run !== undefined && this.extendsLast(page, zero)) run.count++;
    else {
      if (this.runs.length === MAX_RUNS) return false;
      this.last = { first: page, count: 1, zero };
      this.runs.push(this.last);
    }
    if (zero) this.zeroPages++;
    else this.dataPages++;
    return true;
  }

  private extendsLast(page: number, zero: boolean): boolean {
    const run = this.last;
    return run !== undefined && run.first + run.count === page && run.zero === zero &&
      (zero || this.ram.slabIndex(run.first) === this.ram.slabIndex(page));
  }

  full(): boolean {
    return this.dataPages >= this.maxDataPages || this.dataPages + this.zeroPages >= MAX_PAGES;
  }

  get empty(): boolean {
    return this.runs.length === 0;
  }

  /** Views of guest memory holding the data runs' bytes, in run order. */
  dataViews(): Uint8Array[] {
    const views: Uint8Array[] = [];
    for (const r of this.runs) if (!r.zero) views.push(this.ram.pagesView(r.first, r.count));
    return views;
  }
}
