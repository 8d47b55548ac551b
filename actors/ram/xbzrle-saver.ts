/**
 * XBZRLE on the source (QEMU's save_xbzrle_page): once the first pass is
 * through, a page sent again goes as a delta against the copy the page
 * cache holds of what was sent of it before, which is what the destination
 * holds too. That copy and the wire must agree whatever the guest writes
 * meanwhile, so, as QEMU does, a page is first copied to a buffer of its
 * own and everything sent for it comes from a copy: the delta is encoded
 * from that buffer (which then becomes the cached copy), and a page sent
 * whole after a miss goes from the copy just cached. A write after the copy
 * is caught by the dirty log and sent in a later round.
 *
 * Hot path: once per batch after the first pass (batches before it never
 * come here). Per page a copy, an encode and a copy into the outgoing
 * frame; no allocation per page.
 */
import { XBZRLE_PAGE_HEADER_SIZE } from '../../protocols/stream/constants.js';
import { XBZRLE_HEADER_SIZE, writeXbzrleHeader, writeXbzrlePageHeader } from '../../protocols/stream/encode.js';
import { XBZRLE_OVERFLOW, encode } from '../../protocols/xbzrle/encode.js';
import { copyBytes } from '../../protocols/xbzrle/word-access.js';
import { TARGET_PAGE_SIZE } from '../guest/constants.js';
import type { RamBlock } from '../guest/ram-block.js';
import { PageCache } from './page-cache.js';
import { MAX_DATA_PAGES, RunBuilder, type PageBatch } from './page-runs.js';
import { XbzrleCounters } from './xbzrle-counters.js';

const ZERO_PAGE = new Uint8Array(TARGET_PAGE_SIZE);

/** savePage's answer for a page to send whole, from wholeSource at wholeFrom. */
const SEND_WHOLE = -1;

/** What a batch becomes on the main channel, in order: PAGES frames as batches, XBZRLE frames ready to write. */
export type XbzrleFrames = (PageBatch | Buffer)[];

export class XbzrleSaver {
  readonly counters: XbzrleCounters;
  /**
   * The guest is stopped for the switchover (QEMU's last_stage): the cache
   * is no longer filled on a miss nor updated on a hit, as no round follows.
   */
  lastStage = false;
  private cache: PageCache;
  private cacheSize: bigint;
  private readonly guestPages: number;
  /** Each block's first page in the cache's address space (the blocks end to end). */
  private readonly bases: number[] = [];
  /** QEMU's current_buf: the page being encoded, copied out of the guest's reach. */
  private readonly current = new Uint8Array(TARGET_PAGE_SIZE);
  /** QEMU's encoded_buf. */
  private readonly delta = new Uint8Array(TARGET_PAGE_SIZE);
  /** A batch's XBZRLE frame is built here, then copied out at its size. */
  private readonly frame = Buffer.alloc(XBZRLE_HEADER_SIZE + MAX_DATA_PAGES * (XBZRLE_PAGE_HEADER_SIZE + TARGET_PAGE_SIZE));
  private wholeSource: Uint8Array = ZERO_PAGE;
  private wholeFrom = 0;

  /**
   * @param cacheSize xbzrle-cache-size, read at every batch: a new value
   *   replaces the cache by an empty one of that size (QEMU's xbzrle_cache_resize)
   * @throws Error "Failed to allocate page cache"
   */
  constructor(
    private readonly blocks: readonly RamBlock[],
    private readonly wantedCacheSize: () => bigint,
    now: number,
  ) {
    let pages = 0;
    for (const block of blocks) {
      this.bases.push(pages);
      pages += block.pageCount;
    }
    this.guestPages = pages;
    this.cacheSize = wantedCacheSize();
    this.cache = new PageCache(this.cacheSize, pages, TARGET_PAGE_SIZE);
    this.counters = new XbzrleCounters(now);
  }

  /**
   * The frames that carry `batch`, taken from the migration bitmap in dirty
   * sync `age`: hits as deltas in one XBZRLE frame, misses and overflows
   * whole, zero pages as such (they update the cache: QEMU's
   * xbzrle_cache_zero_page), unchanged pages not at all.
   */
  save(batch: PageBatch, age: number): XbzrleFrames {
    this.followCacheSize();
    const ram = this.blocks[batch.block]!;
    const base = this.bases[batch.block]!;
    const frames: XbzrleFrames = [];
    // Pages sent whole, copied here (made at the first: a batch of hits needs none).
    let whole: Buffer | undefined;
    let wholeUsed = 0;
    let frameData = 0;
    // Runs of the pages sent whole and the zero pages; split up, they may need more than one frame.
    let builder = new RunBuilder(ram);
    const flush = () => {
      const data = whole && wholeUsed > frameData ? [whole.subarray(frameData, wholeUsed)] : [];
      frames.push({ block: batch.block, runs: builder.runs, data, normalPages: builder.dataPages, zeroPages: builder.zeroPages });
      frameData = wholeUsed;
      builder = new RunBuilder(ram);
    };
    const add = (page: number, zero: boolean) => {
      if (builder.add(page, zero)) return;
      flush();
      builder.add(page, zero);
    };

    let at = XBZRLE_HEADER_SIZE;
    let encodedPages = 0;
    for (const run of batch.runs) {
      for (let page = run.first; page < run.first + run.count; page++) {
        if (run.zero) {
          this.cache.insert(base + page, ZERO_PAGE, 0, age);
          add(page, true);
          continue;
        }
        const length = this.savePage(ram, page, base + page, age);
        if (length === SEND_WHOLE) {
          whole ??= Buffer.allocUnsafe(batch.normalPages * TARGET_PAGE_SIZE);
          copyBytes(this.wholeSource, this.wholeFrom, whole, wholeUsed, TARGET_PAGE_SIZE);
          wholeUsed += TARGET_PAGE_SIZE;
          add(page, false);
        } else if (length > 0) {
          at = writeXbzrlePageHeader(this.frame, at, page, length);
          copyBytes(this.delta, 0, this.frame, at, length);
          at += length;
          encodedPages++;
        }
      }
    }
    if (!builder.empty) flush();
    if (encodedPages > 0) {
      writeXbzrleHeader(this.frame, batch.block, encodedPages, at - XBZRLE_HEADER_SIZE);
      frames.push(Buffer.from(this.frame.subarray(0, at)));
    }
    return frames;
  }

  /** A dirty sync: the rates, once a period is over. */
  onSync(now: number, pagesSentWhole: number): void {
    this.counters.onSync(now, pagesSentWhole, TARGET_PAGE_SIZE);
  }

  /**
   * One page with data: the length of its delta (in `delta`), 0 when it is
   * unchanged since cached, or SEND_WHOLE with the bytes to send set.
   */
  private savePage(ram: RamBlock, page: number, address: number, age: number): number {
    const cache = this.cache;
    const counters = this.counters;
    const slab = ram.slabOf(page);
    const offset = ram.offsetInSlab(page);
    if (!cache.isCached(address, age)) {
      counters.cacheMiss++;
      if (!this.lastStage && cache.insert(address, slab, offset, age)) this.sendWhole(cache.cached(address), 0);
      else this.sendWhole(slab, offset);
      return SEND_WHOLE;
    }
    counters.pages++;
    const cached = cache.cached(address);
    copyBytes(slab, offset, this.current, 0, TARGET_PAGE_SIZE);
    const length = encode(cached, this.current, this.delta, TARGET_PAGE_SIZE);
    // The cache follows what the destination will hold (an overflow sends `current` whole).
    if (!this.lastStage && length !== 0) copyBytes(this.current, 0, cached, 0, TARGET_PAGE_SIZE);
    if (length === XBZRLE_OVERFLOW) {
      counters.overflow++;
      counters.bytes += TARGET_PAGE_SIZE;
      this.sendWhole(this.current, 0);
      return SEND_WHOLE;
    }
    if (length > 0) {
      counters.bytes += XBZRLE_PAGE_HEADER_SIZE + length;
      counters.encoded++;
    }
    return length;
  }

  private sendWhole(source: Uint8Array, from: number): void {
    this.wholeSource = source;
    this.wholeFrom = from;
  }

  /** A new xbzrle-cache-size: a new, empty cache; if it cannot be had, the old one stays (QEMU). */
  private followCacheSize(): void {
    const wanted = this.wantedCacheSize();
    if (wanted === this.cacheSize) return;
    this.cacheSize = wanted;
    try {
      this.cache = new PageCache(wanted, this.guestPages, TARGET_PAGE_SIZE);
    } catch {
      // Kept: every page it holds is still what the destination holds.
    }
  }
}
