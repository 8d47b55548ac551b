/**
 * Background snapshot (QEMU's bg_migration_thread): the guest's memory and
 * device state as of one instant, written while the guest keeps running.
 *
 * At the start the guest stops for a moment: its device state is saved
 * aside, every page is write-protected, and it runs again. Then every page
 * goes out once, in one pass with no dirty tracking. A page leaves write
 * protection as soon as its bytes are copied out of guest memory, as
 * QEMU's snapshot copies each page into its stream buffer before lifting
 * the protection: a guest waits for a copy, never for the sink. A guest
 * write to a page still protected faults (the guest's MMU): the page is
 * copied first, ahead of the pass, and the write goes on. Either way each
 * page is saved as it was at the start. The device state follows the pages.
 */
import type { StreamMessage } from '../../protocols/stream/messages.js';
import type { Guest } from '../guest/guest.js';
import type { PageBatch } from '../ram/page-runs.js';
import type { RamSaver } from '../ram/ram-saver.js';
import { abortable } from './abortable.js';

/** How often the fault handler looks again when no fault wakes it. */
const FAULT_POLL_MS = 100;
/**
 * Pages saved for one fault, from the faulted page on: a guest that wrote
 * one page is likely to write the next ones, and one frame of them costs
 * about what one page's does.
 */
const FAULT_AHEAD_PAGES = 128;
/**
 * Copies made for faults and not written yet, at most: past it the fault
 * handler waits for the sink, and so do the guest's writes, so a slow sink
 * never makes the snapshot hold a second copy of guest RAM.
 */
const MAX_QUEUED_COPY_BYTES = 64 << 20;

export interface BackgroundSnapshotParts {
  guest: Guest;
  saver: RamSaver;
  /** Counts a batch's pages and writes it. */
  sendBatch(batch: PageBatch): Promise<void>;
  signal: AbortSignal;
  /** For the visualizer: a vCPU's write met a protected page, which goes out now. */
  traceFault(page: number): void;
}

export class BackgroundSnapshot {
  /** The device state as of the start instant, sent after the pages. */
  devices: StreamMessage[] = [];
  /** How long the guest was stopped at the start (QEMU's downtime for a snapshot). */
  downtime = 0;
  /** Pages saved ahead of the pass because the guest was about to write them. */
  faultedPages = 0;
  private protecting = false;
  /** Pages saved for faults, in fault order, each after the one before. */
  private urgent: Promise<void> = Promise.resolve();
  private urgentFailure: unknown;
  private queuedCopyBytes = 0;

  constructor(private readonly parts: BackgroundSnapshotParts) {}

  /** The instant: stop, save the devices aside, protect every page, run again (if the guest ran). */
  async start(): Promise<void> {
    const guest = this.parts.guest;
    const wasRunning = guest.running;
    const stoppedAt = Date.now();
    // Stopped as for a switchover, so the saved run state is the one it ran in (QEMU's global state).
    if (wasRunning) await guest.stop('finish-migrate');
    try {
      this.devices = guest.devices.saveAll().map((saved) => ({ type: 'device', ...saved }));
      guest.writeProtectAll();
      this.protecting = true;
    } finally {
      if (wasRunning) guest.start();
    }
    this.downtime = Date.now() - stoppedAt;
    void this.handleFaults();
  }

  /** The pass: every page not saved yet for a fault. */
  async run(): Promise<void> {
    const saver = this.parts.saver;
    for (let batch = saver.nextBatch(); batch; batch = saver.nextBatch()) {
      this.checkUrgent();
      await this.parts.sendBatch(this.copyOut(batch));
    }
    await abortable(this.parts.signal, this.urgent);
    this.checkUrgent();
  }

  /** Every page is saved, or the snapshot ended otherwise: the guest writes freely again. */
  stop(): void {
    if (!this.protecting) return;
    this.protecting = false;
    this.parts.guest.stopWriteProtect();
  }

  /** The batch with its page bytes copied out of guest memory, and its pages writable again. */
  private copyOut(batch: PageBatch): PageBatch {
    const copy = { ...batch, data: batch.data.map((view) => Buffer.from(view)) };
    if (this.protecting) for (const run of batch.runs) this.parts.guest.unprotect(batch.block, run.first, run.count);
    return copy;
  }

  /** Write-protect faults: the page goes out now (unless the pass has it on its way already). */
  private async handleFaults(): Promise<void> {
    const { guest, saver } = this.parts;
    while (this.protecting) {
      if (this.queuedCopyBytes > MAX_QUEUED_COPY_BYTES) await this.urgent;
      if (guest.faults.pending()) {
        for (const fault of guest.faults.drain()) {
          if (fault.kind !== 'write-protect') continue;
          this.parts.traceFault(fault.page);
          const pages = Math.min(FAULT_AHEAD_PAGES, guest.blocks[fault.block]!.pageCount - fault.page);
          for (const batch of saver.requestedBatches(fault.block, fault.page, pages, false)) {
            this.faultedPages += batch.normalPages + batch.zeroPages;
            const copy = this.copyOut(batch);
            const bytes = copy.data.reduce((n, v) => n + v.length, 0);
            this.queuedCopyBytes += bytes;
            this.urgent = this.urgent
              .then(() => this.parts.sendBatch(copy))
              .catch((err: unknown) => {
                this.urgentFailure ??= err;
              })
              .finally(() => (this.queuedCopyBytes -= bytes));
          }
        }
      }
      await guest.faults.wait(FAULT_POLL_MS);
    }
  }

  private checkUrgent(): void {
    if (this.urgentFailure !== undefined) throw this.urgentFailure;
  }
}
