/**
 * The destination's postcopy fault handler (QEMU's postcopy_ram_fault_thread):
 * the guest's faults on pages not received yet become page requests, one
 * per missing page, each page asked for once. The main thread runs one
 * that writes to the return path; the postcopy-preempt thread runs its own
 * that writes to the preempt connection.
 */
import type { ReqPagesIdMessage, ReqPagesMessage } from '../../protocols/return-path/messages.js';
import { TARGET_PAGE_SIZE } from '../guest/constants.js';
import type { FaultQueue } from '../guest/fault-queue.js';
import type { RamBlock } from '../guest/ram-block.js';

/** How often the handler looks again when no fault wakes it (a stop, the end of postcopy). */
const FAULT_POLL_MS = 100;

/** Who turns the guest's faults into page requests: a PageRequester, or the postcopy-preempt thread. */
export interface FaultHandler {
  start(): void;
  stop(): void;
  /** Looks for faults now (after a page is placed on the main channel). */
  poll(): void;
  /** Page requests sent. */
  readonly requests: number;
}

export class PageRequester implements FaultHandler {
  private listening = false;
  /** Pages asked for and not placed yet, per guest block: a page is asked for once. */
  private readonly requested = new Map<number, Set<number>>();
  /** The block the last REQ_PAGES_ID named: a REQ_PAGES for the same block needs no name. */
  private lastRequestBlock: number | undefined;
  /** Page requests sent. */
  requests = 0;

  /**
   * @param blocks the guest's RAM blocks, in the guest's order (faults name them so)
   * @param send writes one request; false when there is nowhere to write it now
   */
  constructor(
    private readonly faults: FaultQueue,
    private readonly blocks: readonly RamBlock[],
    private readonly send: (message: ReqPagesIdMessage | ReqPagesMessage) => boolean,
  ) {}

  /**
   * Handles faults until stop(): as they wake it, and whenever poll() is
   * called (after each page placed). Starting again (after a recovery)
   * starts afresh: nothing counts as asked for, and the next request names
   * its block, as the source forgot the last one too.
   */
  start(): void {
    if (this.listening) return;
    this.listening = true;
    this.requested.clear();
    this.lastRequestBlock = undefined;
    void this.loop();
  }

  /** Stops handling faults; what was asked for stays asked for. */
  stop(): void {
    this.listening = false;
  }

  /**
   * Turns the faults raised since the last look into requests. Cheap when
   * there are none (one atomic read), so it runs after every placement too:
   * while pages stream in back to back, the handler's own wake-up may wait.
   */
  poll(): void {
    if (!this.listening || !this.faults.pending()) return;
    for (const fault of this.faults.drain()) if (fault.kind !== 'write-protect') this.request(fault.block, fault.page);
  }

  private async loop(): Promise<void> {
    while (this.listening) {
      this.poll();
      await this.faults.wait(FAULT_POLL_MS);
    }
  }

  private request(block: number, page: number): void {
    const ram = this.blocks[block]!;
    if (ram.received.test(page)) return;
    let pending = this.requested.get(block);
    if (!pending) this.requested.set(block, (pending = new Set()));
    // Placed pages leave the set as they are met again; one vCPU's fault is its only request.
    for (const p of pending) if (ram.received.test(p)) pending.delete(p);
    if (pending.has(page)) return;
    const start = page * TARGET_PAGE_SIZE;
    const sent = this.lastRequestBlock === block
      ? this.send({ type: 'req-pages', start, len: TARGET_PAGE_SIZE })
      : this.send({ type: 'req-pages-id', block: ram.name, start, len: TARGET_PAGE_SIZE });
    if (!sent) return;
    pending.add(page);
    this.lastRequestBlock = block;
    this.requests++;
  }
}
