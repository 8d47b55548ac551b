/**
 * Pages to PAGES runs: consecutive pages of one kind (zero or with data),
 * data runs never crossing a slab so each is one view of guest memory.
 * Shared by the single-channel RAM saver and the multifd channel workers.
 *
 * Hot path: called per page. No allocation per page, no copy of page bytes.
 */
import { TARGET_PAGE_SIZE } from '../guest/constants.js';
import type { RamBlock } from '../guest/ram-block.js';
import type { PageRun } from '../../protocols/stream/types.js';

export const MAX_DATA_PAGES = 256;
export const MAX_PAGES = 2048;
export const MAX_RUNS = 1024;
const ZERO_PAGE = Buffer.alloc(TARGET_PAGE_SIZE);

/** Node Buffers over a block's slabs, made once, so zero checks need no view per page. */
export function slabBuffers(ram: RamBlock): Buffer[] {
  return ram.slabs.map((s) => Buffer.from(s.buffer, s.byteOffset, s.byteLength));
}

/**
 * A page is zero if the guest never wrote it (no scan at all) or if a
 * native comparison says so — non-zero pages usually differ in their first
 * bytes, so the comparison returns early.
 */
export function isZeroPage(ram: RamBlock, slabs: readonly Buffer[], page: number): boolean {
  if (!ram.touched.test(page)) return true;
  const at = ram.offsetInSlab(page);
  return ZERO_PAGE.compare(slabs[ram.slabIndex(page)]!, at, at + TARGET_PAGE_SIZE) === 0;
}

/** Collects pages into runs within one frame's limits. */
export class RunBuilder {
  runs: PageRun[] = [];
  dataPages = 0;
  zeroPages = 0;
  private last: PageRun | undefined;

  constructor(private readonly ram: RamBlock) {}

  /** False when the page does not fit in this frame (the caller sends and starts another). */
  add(page: number, zero: boolean): boolean {
    if (this.full()) return false;
    const run = this.last;
    const extends_ =
      run !== undefined && run.first + run.count === page && run.zero === zero &&
      (zero || this.ram.slabIndex(run.first) === this.ram.slabIndex(page));
    if (extends_) run.count++;
    else {
      if (this.runs.length === MAX_RUNS) return false;
      this.last = { first: page, count: 1, zero };
      this.runs.push(this.last);
    }
    if (zero) this.zeroPages++;
    else this.dataPages++;
    return true;
  }

  full(): boolean {
    return this.dataPages >= MAX_DATA_PAGES || this.dataPages + this.zeroPages >= MAX_PAGES;
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
