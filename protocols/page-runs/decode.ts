/**
 * The page-run half of the main stream's and the multifd channels' decoders.
 * A PAGES frame and a multifd packet both carry a batch of page runs: run
 * descriptors (u32 first page, u32 page count with ZERO_RUN_FLAG for a run of
 * zero pages), then the bytes of the other runs back to back. The whole batch
 * is checked against the guest's block first; then zero runs are announced to
 * the PageSink and each data run's bytes land in the views the sink returns.
 *
 * Hot path: a page view is one field of the pull decoder. Nothing here
 * allocates or copies per page (but for placeRuns, which copies decompressed
 * pages into place), and no view is asked for before the batch is checked.
 * The batch's page bytes may be read ahead (bytesAhead): short runs then
 * cost one read for many, and a copy each.
 */
import { PullDecoder } from '../pull-decoder/pull-decoder.js';
import { RUN_COUNT_MASK, RUN_DESCRIPTOR_SIZE, ZERO_RUN_FLAG } from './constants.js';
import type { GuestLayout, PageSink } from './types.js';

export interface PageRunDecoderOptions {
  sink: PageSink;
  /** Checked by the protocol. */
  pageSize: number;
  /** The most runs one batch may have: the size of the descriptor buffer. */
  maxRuns: number;
  layout?: GuestLayout | undefined;
}

export abstract class PageRunDecoder extends PullDecoder {
  protected readonly pageSize: number;
  protected layout: GuestLayout | undefined;
  /** Where a batch's descriptors are read to, from its start. */
  protected readonly descriptors: Uint8Array;
  /** The batch's block and run count, as its header gives them (beginBatch). */
  protected block = 0;
  protected runCount = 0;
  /** The batch's pages, and those that carry bytes; 0 until its runs are checked. */
  protected batchPages = 0;
  protected batchDataPages = 0;

  private readonly sink: PageSink;
  private readonly descriptorView: DataView;
  private runIndex = 0;
  private runFirst = 0;
  private runPages = 0;
  private runPagesDone = 0;
  private pagesLoaded = 0;
  private zeroPages = 0;
  /** The batch's data runs are landing in sink views (landRuns), with `viewBytesLeft` of them from the current view on. */
  private landingViews = false;
  private viewBytesLeft = 0;

  constructor(options: PageRunDecoderOptions) {
    super();
    this.sink = options.sink;
    this.pageSize = options.pageSize;
    this.layout = options.layout;
    this.descriptors = new Uint8Array(RUN_DESCRIPTOR_SIZE * options.maxRuns);
    this.descriptorView = new DataView(this.descriptors.buffer);
  }

  /** Pages whose bytes were placed (pagesLoaded). */
  get pagesReceived(): number {
    return this.pagesLoaded;
  }
  /** Pages announced as zero (zeroPages). */
  get zeroPagesReceived(): number {
    return this.zeroPages;
  }

  /** The guest's RAM blocks, in the stream header's order. */
  setLayout(layout: GuestLayout): void {
    this.layout = layout;
  }

  /** The protocol's error for run `run` (0-based) of a batch for `block` that has no pages. */
  protected abstract emptyRun(run: number, block: number): Error;
  /** The protocol's error for pages `first` to `first + count - 1` past the `pageCount` pages of `block`. */
  protected abstract outsideBlock(first: number, count: number, block: number, pageCount: number): Error;
  /** Every run of the batch has landed. */
  protected abstract runsLanded(): void;

  /** A new batch, of `runCount` runs of `block`; its descriptors go to `descriptors` next. */
  protected beginBatch(block: number, runCount: number): void {
    this.block = block;
    this.runCount = runCount;
    this.batchPages = 0;
    this.batchDataPages = 0;
  }

  /**
   * Checks the batch's descriptors against its block in the layout, sets
   * batchPages and batchDataPages, and rewinds to the first run. The protocol
   * then checks the totals against its limits.
   */
  protected checkRuns(): void {
    const view = this.descriptorView;
    const { block, runCount } = this;
    const pageCount = (this.layout as GuestLayout).blocks[block]?.pageCount ?? 0;
    let pages = 0;
    let dataPages = 0;
    for (let i = 0; i < runCount; i++) {
      const first = view.getUint32(i * RUN_DESCRIPTOR_SIZE);
      const raw = view.getUint32(i * RUN_DESCRIPTOR_SIZE + 4);
      const count = raw & RUN_COUNT_MASK;
      if (count < 1) throw this.emptyRun(i, block);
      if (first + count > pageCount) throw this.outsideBlock(first, count, block, pageCount);
      pages += count;
      if ((raw & ZERO_RUN_FLAG) === 0) dataPages += count;
    }
    this.runIndex = 0;
    this.batchPages = pages;
    this.batchDataPages = dataPages;
    this.viewBytesLeft = dataPages * this.pageSize;
  }

  /** Announces zero runs up to the next run with bytes and waits for those, or ends the batch. */
  protected landRuns(): void {
    const view = this.descriptorView;
    while (this.runIndex < this.runCount) {
      const first = view.getUint32(this.runIndex * RUN_DESCRIPTOR_SIZE);
      const raw = view.getUint32(this.runIndex * RUN_DESCRIPTOR_SIZE + 4);
      const count = raw & RUN_COUNT_MASK;
      if ((raw & ZERO_RUN_FLAG) === 0) {
        this.startDataRun(first, count);
        this.expectView();
        this.landingViews = true;
        return;
      }
      this.runIndex++;
      this.zeroRun(first, count);
    }
    this.landingViews = false;
    this.runsLanded();
  }

  /** The rest of the batch's page data: a data run's view decides nothing about where later bytes go. */
  protected override bytesAhead(): number {
    return this.landingViews ? this.viewBytesLeft - this.filled : 0;
  }

  /** A view of the current data run is full: waits for the next one, or lands the runs after it. */
  protected pageViewFilled(view: Uint8Array): void {
    this.expectView();
    this.viewBytesLeft -= view.length;
    this.runPagesDone += view.length / this.pageSize;
    if (this.runPagesDone < this.runPages) return;
    this.runIndex++;
    this.dataRunLoaded();
    this.landRuns();
  }

  /** Lands the rest of the batch from `pages`, the data runs' bytes back to back in run order; then runsLanded(). */
  protected placeRuns(pages: Uint8Array): void {
    const view = this.descriptorView;
    let offset = 0;
    for (; this.runIndex < this.runCount; this.runIndex++) {
      const first = view.getUint32(this.runIndex * RUN_DESCRIPTOR_SIZE);
      const raw = view.getUint32(this.runIndex * RUN_DESCRIPTOR_SIZE + 4);
      const count = raw & RUN_COUNT_MASK;
      if ((raw & ZERO_RUN_FLAG) !== 0) {
        this.zeroRun(first, count);
        continue;
      }
      this.startDataRun(first, count);
      while (this.runPagesDone < count) {
        const target = this.pageView();
        target.set(pages.subarray(offset, offset + target.length));
        offset += target.length;
        this.runPagesDone += target.length / this.pageSize;
      }
      this.dataRunLoaded();
    }
    this.runsLanded();
  }

  protected override nextView(): Uint8Array {
    return this.pageView();
  }

  /** The sink's view for the current data run's next pages, checked to hold 1 to the rest of them. */
  private pageView(): Uint8Array {
    const first = this.runFirst + this.runPagesDone;
    const count = this.runPages - this.runPagesDone;
    const view = this.sink.pageView(this.block, first, count);
    if (!(view instanceof Uint8Array) || view.length === 0 || view.length % this.pageSize !== 0 || view.length > count * this.pageSize) {
      throw new RangeError(
        `PageSink.pageView(${this.block}, ${first}, ${count}) must return a view of 1 to ${count} whole pages, ` +
          `got ${view instanceof Uint8Array ? `${view.length} bytes` : typeof view}`,
      );
    }
    return view;
  }

  private startDataRun(first: number, count: number): void {
    this.runFirst = first;
    this.runPages = count;
    this.runPagesDone = 0;
  }

  private zeroRun(first: number, count: number): void {
    this.zeroPages += count;
    this.sink.zeroPages(this.block, first, count);
  }

  private dataRunLoaded(): void {
    this.pagesLoaded += this.runPages;
    this.sink.pagesLoaded(this.block, this.runFirst, this.runPages);
  }
}
