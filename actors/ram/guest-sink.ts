import { TARGET_PAGE_SIZE } from '../guest/constants.js';
import type { RamBlock } from '../guest/ram-block.js';
import { MAX_PAGES_PER_BATCH } from '../../protocols/page-runs/constants.js';
import type { PageSink } from '../../protocols/page-runs/types.js';
import { XBZRLE_LOAD_FAILED, type XbzrleSink } from '../../protocols/stream/decode.js';
import { decode as decodeXbzrle } from '../../protocols/xbzrle/decode.js';
import { XbzrleError } from '../../protocols/xbzrle/errors.js';

/**
 * Where the destination's decoder lands pages: guest RAM.
 *
 * In precopy the bytes land straight in guest memory (the socket reads into
 * it, or the decoder copies a short run read ahead); the guest does not run
 * yet. In postcopy it runs, so a page is placed whole and once (DESIGN rule
 * 3): a run's bytes land in a staging buffer, then each page not received
 * yet is copied into place in one synchronous step and only then gets its
 * received bit, which wakes a vCPU waiting on it. A page that is already
 * there (a requested page may arrive twice) is dropped: the guest may have
 * written it since.
 *
 * XBZRLE pages (precopy only, as QEMU loads them) patch the page in place:
 * the destination's copy is the one the source's page cache holds.
 *
 * Every page placed is marked touched, so a later migration onward sends it.
 */
export class GuestSink implements PageSink, XbzrleSink {
  pageCount = 0;
  zeroPageCount = 0;
  /** Postcopy only: one batch's worth of pages, where runs land before they are placed. */
  private staging: Uint8Array | undefined;
  /** Postcopy: told after each placement, so faults are handled even while pages stream in without a pause. */
  private placed: (() => void) | undefined;
  /** The first page of the run being staged. */
  private stagedFirst = -1;
  /** A COLO checkpoint under way: its pages go to the secondary's staging area, not into the running guest. */
  private diverted: PageSink | undefined;

  /** `blocks` in the stream header's order: PAGES frames name blocks by that index. */
  constructor(private blocks: readonly RamBlock[]) {}

  setBlocks(blocks: readonly RamBlock[]): void {
    this.blocks = blocks;
  }

  /** From POSTCOPY_LISTEN on, pages are staged and placed whole; `placed` runs after each run is placed. */
  startPostcopy(placed?: () => void): void {
    this.staging ??= new Uint8Array(MAX_PAGES_PER_BATCH * TARGET_PAGE_SIZE);
    this.placed = placed;
  }

  get postcopy(): boolean {
    return this.staging !== undefined;
  }

  /** Sends pages to `to` until called again with undefined (colo-secondary.ts). */
  divert(to: PageSink | undefined): void {
    this.diverted = to;
  }

  pageView(block: number, firstPage: number, count: number): Uint8Array {
    if (this.diverted) return this.diverted.pageView(block, firstPage, count);
    if (!this.staging) return this.blocks[block]!.pagesView(firstPage, count);
    // The decoder asks for a run's views in order, from its first page on.
    if (this.stagedFirst < 0) this.stagedFirst = firstPage;
    const at = (firstPage - this.stagedFirst) * TARGET_PAGE_SIZE;
    return this.staging.subarray(at, at + count * TARGET_PAGE_SIZE);
  }

  pagesLoaded(block: number, firstPage: number, count: number): void {
    if (this.diverted) return this.diverted.pagesLoaded(block, firstPage, count);
    const ram = this.blocks[block]!;
    if (this.staging) {
      this.place(ram, firstPage, count, this.staging);
      this.stagedFirst = -1;
      this.placed?.();
    } else {
      ram.touched.setRange(firstPage, count);
      ram.received.setRange(firstPage, count);
    }
    this.pageCount += count;
  }

  /** A zero page only needs writing where the destination's page is not already zero. */
  zeroPages(block: number, firstPage: number, count: number): void {
    if (this.diverted) return this.diverted.zeroPages(block, firstPage, count);
    const ram = this.blocks[block]!;
    for (let page = firstPage; page < firstPage + count; page++) {
      if (this.staging && (ram.received.test(page) || !ram.placing.testAndSet(page))) continue;
      if (ram.touched.test(page)) {
        const at = ram.offsetInSlab(page);
        ram.slabOf(page).fill(0, at, at + TARGET_PAGE_SIZE);
      }
      // Set page by page in postcopy: a vCPU waiting on this page may go on now.
      if (this.staging) ram.received.set(page);
    }
    if (!this.staging) ram.received.setRange(firstPage, count);
    this.zeroPageCount += count;
  }

  loadXbzrlePage(block: number, page: number, delta: Uint8Array): void {
    // A COLO checkpoint stages pages aside, and postcopy places them whole: neither has the page to patch.
    if (this.diverted || this.staging) {
      throw new Error(`${XBZRLE_LOAD_FAILED}page ${page} of block ${block} came ${this.staging ? 'in postcopy' : 'in a COLO checkpoint'}, where pages come whole`);
    }
    const ram = this.blocks[block]!;
    try {
      decodeXbzrle(delta, ram.pagesView(page, 1));
    } catch (error) {
      if (!(error instanceof XbzrleError)) throw error;
      throw new Error(`${XBZRLE_LOAD_FAILED}decode error! (page ${page} of RAM block '${ram.name}': ${error.message})`);
    }
    ram.touched.set(page);
    ram.received.set(page);
    this.pageCount++;
  }

  /**
   * Copies each staged page not yet received into guest RAM, then sets the
   * received bits of each bitmap word's pages at once (waking a vCPU waiting
   * on one of them): a page is never marked before its bytes are in.
   */
  private place(ram: RamBlock, firstPage: number, count: number, staged: Uint8Array): void {
    let word = firstPage >>> 5;
    let placed = 0;
    for (let i = 0; i < count; i++) {
      const page = firstPage + i;
      if (page >>> 5 !== word) {
        markPlaced(ram, word, placed);
        word = page >>> 5;
        placed = 0;
      }
      if (ram.received.test(page) || !ram.placing.testAndSet(page)) continue;
      ram.slabOf(page).set(staged.subarray(i * TARGET_PAGE_SIZE, (i + 1) * TARGET_PAGE_SIZE), ram.offsetInSlab(page));
      placed |= 1 << (page & 31);
    }
    markPlaced(ram, word, placed);
  }
}

/** The pages of `mask` in bitmap word `word` are in place: touched (no one waits on that) and received. */
function markPlaced(ram: RamBlock, word: number, mask: number): void {
  if (mask === 0) return;
  ram.touched.setWord(word, mask, false);
  ram.received.setWord(word, mask, true);
}
