/**
 * The source's checks of postcopy page requests (QEMU's
 * migrate_handle_rp_req_pages and ram_save_queue_pages), wherever they are
 * read: on the return path, or on the postcopy-preempt connection.
 */
import type { ReqPagesIdMessage, ReqPagesMessage } from '../../protocols/return-path/messages.js';
import type { PageRequest } from './messages.js';

/** What the source knows of its guest's RAM blocks, to check page requests against. */
export interface RequestableBlock {
  name: string;
  size: number;
}

export class PageRequestCheck {
  /** The block the last REQ_PAGES_ID named: a REQ_PAGES takes pages from it. */
  private lastRequestBlock: number | undefined;

  /**
   * @param blocks the guest's RAM blocks in stream order; requests name them
   * @param pageSize requests must be aligned to it
   */
  constructor(
    private readonly blocks: readonly RequestableBlock[],
    private readonly pageSize: number,
  ) {}

  /**
   * The page run a REQ_PAGES(_ID) asks for, or why it is refused: an unknown
   * block, a request before any block was named, a misaligned or empty one,
   * or one past the end of its block.
   */
  check(message: ReqPagesIdMessage | ReqPagesMessage): PageRequest | Error {
    if (message.type === 'req-pages-id') {
      const index = this.blocks.findIndex((b) => b.name === message.block);
      if (index < 0) return new Error(`Page request names RAM block '${message.block}', which this guest does not have`);
      this.lastRequestBlock = index;
    } else if (this.lastRequestBlock === undefined) {
      return new Error('Page request (REQ_PAGES) before any REQ_PAGES_ID named its RAM block');
    }
    const block = this.blocks[this.lastRequestBlock]!;
    const { start, len } = message;
    if (start % this.pageSize !== 0 || len % this.pageSize !== 0 || len === 0) {
      return new Error(`Misaligned page request, start: 0x${start.toString(16)} len: ${len} (pages are ${this.pageSize} bytes)`);
    }
    if (start + len > block.size) {
      return new Error(`Page request overrun start=0x${start.toString(16)} len=0x${len.toString(16)} blocklen=0x${block.size.toString(16)} in '${block.name}'`);
    }
    return { block: this.lastRequestBlock, firstPage: start / this.pageSize, pages: len / this.pageSize };
  }
}
