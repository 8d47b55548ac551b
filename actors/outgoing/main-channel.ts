/**
 * The source's main channel (QEMU's QEMUFile for the migration stream):
 * the channel hello, control messages, page frames and device state go out
 * here, with the socket's backpressure, and every byte is counted as it is
 * written.
 *
 * Hot path: sendPages runs once per frame of up to 4 MiB of pages. It must
 * never copy or look at page bytes (they go out as views of guest memory)
 * nor allocate per page; a frame's header and data leave in one writev.
 */
import { once } from 'node:events';
import type { Writable } from 'node:stream';
import { encodeControl, encodePagesHeader } from '../../protocols/stream/encode.js';
import type { StreamMessage } from '../../protocols/stream/messages.js';
import type { PageBatch } from '../ram/page-runs.js';
import { abortable } from './abortable.js';
import type { TransferMeter } from './transfer-meter.js';

/** A write waited past the stall timeout: the link passes nothing, though nothing closed it. */
class StalledChannel extends Error {}

export class MainChannel {
  private sinkError: Error | undefined;

  /**
   * @param signal aborts every wait (cancel, or a failure seen elsewhere)
   * @param peerReason the destination's own reason when the channel breaks (its SHUT on the return path), if it comes in time
   * @param stallTimeoutMs how long a write may wait for the socket to drain before the channel counts as stalled
   *   (looked up at each wait; undefined: as long as it takes)
   */
  constructor(
    private readonly sink: Writable,
    private readonly meter: TransferMeter,
    private readonly signal: AbortSignal,
    private readonly peerReason: () => Promise<Error | undefined>,
    private readonly stallTimeoutMs: () => number | undefined = () => undefined,
  ) {
    // Kept, and surfaced by the write or drain that finds the channel broken.
    sink.on('error', (err) => (this.sinkError ??= err));
  }

  /**
   * One PAGES frame: its header, then the batch's views of guest memory.
   * `written` runs once the kernel has every byte of it (the views may be
   * freed from then on: release-ram).
   */
  async sendPages(batch: PageBatch, written?: () => void): Promise<void> {
    const header = encodePagesHeader(batch.block, batch.runs);
    const sink = this.sink;
    // One writev for the frame: a header written alone leaves as a segment of its own.
    let ok = true;
    let bytes = header.length;
    sink.cork();
    try {
      ok = sink.write(header, batch.data.length === 0 ? written : undefined);
      batch.data.forEach((view, i) => {
        ok = sink.write(view, i === batch.data.length - 1 ? written : undefined) && ok;
        bytes += view.length;
      });
    } finally {
      sink.uncork();
    }
    this.meter.account(bytes);
    if (!ok) await this.drain();
  }

  async sendMessage(message: StreamMessage): Promise<void> {
    await this.write(encodeControl(message));
  }

  async write(bytes: Uint8Array): Promise<void> {
    const ok = this.sink.write(bytes);
    this.meter.account(bytes.length);
    if (!ok) await this.drain();
  }

  private async drain(): Promise<void> {
    const sink = this.sink;
    if (sink.destroyed) {
      // A cancel, or a failure seen elsewhere (migrate-pause), explains itself better than the channel it closed.
      if (this.signal.aborted) throw this.signal.reason;
      throw await this.brokenChannel();
    }
    // Both waits are removed once either ends: one per backpressure wait would pile up.
    const waiting = new AbortController();
    const drained = once(sink, 'drain', { signal: waiting.signal });
    const closed = once(sink, 'close', { signal: waiting.signal });
    drained.catch(() => {});
    closed.catch(() => {});
    const stallMs = this.stallTimeoutMs();
    let stallTimer: NodeJS.Timeout | undefined;
    const stalled = new Promise<'stall'>((resolve) => {
      if (stallMs !== undefined) stallTimer = setTimeout(() => resolve('stall'), stallMs);
    });
    try {
      const first = await abortable(this.signal, Promise.race([drained.then(() => 'drain'), closed.then(() => 'close'), stalled]));
      if (first === 'stall') {
        throw new StalledChannel(`The migration channel stalled: nothing could be written to it for ${Math.round(stallMs! / 1000)} s`);
      }
      if (first === 'close') throw new Error('closed');
    } catch (err) {
      if (err instanceof StalledChannel) throw err;
      // A cancel, or a failure seen elsewhere (the return path), explains itself.
      if (this.signal.aborted) throw this.signal.reason;
      throw await this.brokenChannel();
    } finally {
      clearTimeout(stallTimer);
      waiting.abort();
    }
  }

  /**
   * The error for a channel that broke under a write. A destination that
   * refused the stream says why on the return path just before it closes:
   * that reason, when it comes, is the one a person can act on.
   */
  private async brokenChannel(): Promise<Error> {
    const reason = await this.peerReason();
    if (reason) return reason;
    const err = this.sinkError as NodeJS.ErrnoException | undefined;
    if (!err) return new Error('The migration channel was closed');
    return new Error(err.syscall === 'write' ? `Unable to write to the migration channel: ${err.message}` : `The migration channel failed: ${err.message}`);
  }
}
