import { TARGET_PAGE_SIZE } from '../guest/constants.js';
import type { RamBlock } from '../guest/ram-block.js';
import type { PageSink } from '../../protocols/page-runs/types.js';

/**
 * Where the destination's decoder lands pages: straight into guest RAM.
 * A page's received bit is set only once its bytes are all in place (DESIGN
 * rule 3), and it is marked touched so a later migration onward sends it.
 */
export class GuestSink implements PageSink {
  pageCount = 0;
  zeroPageCount = 0;

  /** `blocks` in the stream header's order: PAGES frames name blocks by that index. */
  constructor(private blocks: readonly RamBlock[]) {}

  setBlocks(blocks: readonly RamBlock[]): void {
    this.blocks = blocks;
  }

  pageView(block: number, firstPage: number, count: number): Uint8Array {
    return this.blocks[block]!.pagesView(firstPage, count);
  }

  pagesLoaded(block: number, firstPage: number, count: number): void {
    const ram = this.blocks[block]!;
    ram.touched.setRange(firstPage, count);
    ram.received.setRange(firstPage, count);
    this.pageCount += count;
  }

  /** A zero page only needs writing where the destination's page is not already zero. */
  zeroPages(block: number, firstPage: number, count: number): void {
    const ram = this.blocks[block]!;
    for (let page = firstPage; page < firstPage + count; page++) {
      if (ram.touched.test(page)) {
        const at = ram.offsetInSlab(page);
        ram.slabOf(page).fill(0, at, at + TARGET_PAGE_SIZE);
      }
    }
    ram.received.setRange(firstPage, count);
    this.zeroPageCount += count;
  }
}
