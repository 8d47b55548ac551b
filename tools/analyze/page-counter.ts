/**
 * The page sink the analyzer gives the stream decoder: instead of guest RAM,
 * one scratch buffer every run's bytes pass through, and counts per block of
 * the pages that carried bytes and of the zero pages.
 *
 * Hot path: called once per run (and per scratch-full of a long run). It
 * must never allocate or look at page bytes.
 */
import type { PageSink } from '../../protocols/page-runs/types.js';
import type { XbzrleSink } from '../../protocols/stream/decode.js';
import { decode as decodeXbzrle } from '../../protocols/xbzrle/decode.js';

/** Pages per view: a long run is read into the scratch buffer a megabyte at a time. */
const SCRATCH_PAGES = 256;

/** One block's pages, as counted so far. */
export interface PageCounts {
  /** PAGES and XBZRLE frames for the block. */
  frames: number;
  /** Pages whose bytes travelled (query-migrate's `normal`). */
  normal: number;
  /** Zero pages, described without bytes (query-migrate's `duplicate`). */
  zero: number;
  /** Pages sent as XBZRLE deltas (multifd-compression compresses on the multifd channels, not counted here). */
  compressed: number;
  /** Pages (either kind) after the postcopy package: sent while the destination ran the guest. */
  postcopy: number;
}

export class PageCounter implements PageSink, XbzrleSink {
  private readonly scratch: Uint8Array;
  /** Where XBZRLE deltas are applied, so a corrupt one is found as the destination would find it. */
  private readonly xbzrlePage: Uint8Array;
  private counts: PageCounts[] = [];
  /** The block of the frame being read (the last run's). */
  private current = 0;
  /** The postcopy package went by: pages from now on are postcopy's. */
  postcopy = false;

  constructor(private readonly pageSize: number) {
    this.scratch = new Uint8Array(SCRATCH_PAGES * pageSize);
    this.xbzrlePage = this.scratch.subarray(0, pageSize);
  }

  /** The stream header's blocks, in stream order (PAGES frames name them by index). */
  setBlocks(count: number): void {
    this.counts = Array.from({ length: count }, () => ({ frames: 0, normal: 0, zero: 0, compressed: 0, postcopy: 0 }));
  }

  /** Counts per block in stream order. */
  get blocks(): readonly PageCounts[] {
    return this.counts;
  }

  /** The PAGES frame whose runs came last was read whole. */
  frameRead(): void {
    const counts = this.counts[this.current];
    if (counts) counts.frames++;
  }

  pageView(_block: number, _firstPage: number, count: number): Uint8Array {
    return count >= SCRATCH_PAGES ? this.scratch : this.scratch.subarray(0, count * this.pageSize);
  }

  pagesLoaded(block: number, _firstPage: number, count: number): void {
    this.current = block;
    const counts = this.counts[block]!;
    counts.normal += count;
    if (this.postcopy) counts.postcopy += count;
  }

  loadXbzrlePage(block: number, _page: number, delta: Uint8Array): void {
    decodeXbzrle(delta, this.xbzrlePage);
    this.current = block;
    const counts = this.counts[block]!;
    counts.compressed++;
    if (this.postcopy) counts.postcopy++;
  }

  zeroPages(block: number, _firstPage: number, count: number): void {
    this.current = block;
    const counts = this.counts[block]!;
    counts.zero += count;
    if (this.postcopy) counts.postcopy += count;
  }
}
