/**
 * The source's side of postcopy (QEMU's postcopy_start, and the postcopy
 * phase of the migration thread): the discard list and the package at the
 * switch, then every page still to send in the background, and each page
 * the destination asks for as soon as it asks.
 *
 * Requested pages go out from the request itself, one request after the
 * other, never waiting for the background (which may be waiting for its
 * socket to drain, or for max-postcopy-bandwidth, neither of which holds
 * them back): they take the next frame boundary on the main connection.
 * With postcopy-preempt the requests never come here: the preempt thread
 * (actors/postcopy-preempt/) reads and serves them on its own connection,
 * taking its pages from the same migration bitmap, and this side counts
 * what it sent.
 */
import { encodeControl } from '../../protocols/stream/encode.js';
import type { StreamMessage } from '../../protocols/stream/messages.js';
import { TARGET_PAGE_SIZE } from '../guest/constants.js';
import type { PageBatch } from '../ram/page-runs.js';
import type { RamSaver } from '../ram/ram-saver.js';
import type { RamStats } from '../ram/ram-stats.js';
import type { PageRequest } from '../return-path/messages.js';
import { KEEPALIVE_PING, POSTCOPY_KEEPALIVE_MS } from '../return-path/postcopy-liveness.js';
import { abortable, sleep } from './abortable.js';
import type { MainChannel } from './main-channel.js';
import { RATE_WINDOW_MS } from './rate-limit.js';
import type { TransferMeter } from './transfer-meter.js';

/** The PING that closes the postcopy package: its PONG means the destination loaded the package (and listens). */
export const PACKAGE_LOADED_PING = 6;

/**
 * Background pages per frame after the switch. The destination's guest runs
 * while they land, and a requested page waits for whatever either side's
 * main thread is busy with: a 4 MiB frame holds the source for its
 * zero-page check and write and the destination for its placement, a
 * millisecond or more each; 256 KiB frames keep each such task short.
 */
const BACKGROUND_BATCH_PAGES = 64;
/** Bitmap bytes per discard message: 32 Mi pages, 128 GiB of guest. */
const DISCARD_CHUNK_BYTES = 4 << 20;

export interface PostcopySenderParts {
  saver: RamSaver;
  main: MainChannel;
  meter: TransferMeter;
  stats: RamStats;
  /** Counts a batch's pages and sends it on the main channel (background pages, and those requested on the return path). */
  sendBatch(batch: PageBatch): Promise<void>;
  /** Counts what the postcopy-preempt thread sent; called as the background goes. */
  progress(): void;
  /** Requested pages that went already are sent again, unless their memory may be released (release-ram). */
  resendSentPages: boolean;
  /** Aborts every wait: a failure seen elsewhere, or the actor stopping. */
  signal: AbortSignal;
}

export class PostcopySender {
  /** Requested pages being sent, in request order. */
  private urgent: Promise<void> = Promise.resolve();
  /** Why sending a requested page failed: the phase ends with it. */
  private urgentFailure: unknown;
  /** Every page has gone out: a request from now on names a page already on its way. */
  private allSent = false;

  constructor(private readonly parts: PostcopySenderParts) {}

  /** A page request from the return path: its pages go out now, ahead of any background page not yet written. */
  request(request: PageRequest): void {
    this.parts.stats.postcopyRequests++;
    if (this.allSent) return;
    this.urgent = this.urgent.then(() => this.serve(request)).catch((err: unknown) => {
      this.urgentFailure ??= err;
    });
  }

  /** The discard list: every page still to send, which the destination must not use what it holds of. */
  async sendDiscard(): Promise<void> {
    const bitmaps = this.parts.saver.pendingBitmaps();
    for (let block = 0; block < bitmaps.length; block++) {
      const words = bitmaps[block]!;
      const bytes = new Uint8Array(words.buffer, words.byteOffset, words.byteLength);
      for (let at = 0; at < bytes.length; at += DISCARD_CHUNK_BYTES) {
        const bitmap = bytes.slice(at, at + DISCARD_CHUNK_BYTES);
        await this.parts.main.sendMessage({ type: 'postcopy-discard', block, firstPage: at * 8, bitmap });
      }
    }
  }

  /**
   * The device state as one PACKAGED blob, loaded as a whole on the
   * destination: POSTCOPY_LISTEN (with QEMU's PING 3 after it), the devices,
   * and PACKAGE_LOADED_PING, whose answer says the destination holds it all.
   * Unlike QEMU's, the package does not end with POSTCOPY_RUN: that follows
   * on its own once the answer came (source-migration.ts), so that a
   * package lost on a broken link never leaves the guest owned by neither.
   */
  async sendPackage(devices: readonly StreamMessage[]): Promise<void> {
    const inside: StreamMessage[] = [{ type: 'postcopy-listen' }, { type: 'ping', value: 3 }, ...devices, { type: 'ping', value: PACKAGE_LOADED_PING }];
    const frames = inside.map((m) => encodeControl(m));
    await this.parts.main.sendMessage({ type: 'packaged', data: Buffer.concat(frames) });
  }

  /**
   * The postcopy phase's background: every page not sent yet, rate-limited
   * by max-postcopy-bandwidth, until none is left and every requested page
   * is out.
   */
  async run(): Promise<void> {
    const { saver, meter, signal } = this.parts;
    let keptAlive = Date.now();
    while (saver.remaining > 0) {
      this.checkUrgent();
      this.parts.progress();
      // However slow the background, the destination hears from this side every second (postcopy-liveness.ts).
      if (Date.now() - keptAlive >= POSTCOPY_KEEPALIVE_MS) {
        keptAlive = Date.now();
        await this.parts.main.sendMessage({ type: 'ping', value: KEEPALIVE_PING });
      }
      const wait = meter.limiter.delay();
      if (wait > 0) {
        await sleep(signal, Math.min(wait, RATE_WINDOW_MS));
        continue;
      }
      const batch = saver.nextBatch(meter.limiter.windowPages(BACKGROUND_BATCH_PAGES, TARGET_PAGE_SIZE));
      if (batch) await this.parts.sendBatch(batch);
      else {
        // None although the count says some remain: the preempt thread is taking the last ones this
        // instant, or the count is off (see MigrationBitmap.recount); either way, look again.
        saver.bitmap.recount();
        await new Promise(setImmediate);
      }
    }
    this.allSent = true;
    await abortable(signal, this.urgent);
    this.checkUrgent();
  }

  private checkUrgent(): void {
    if (this.urgentFailure !== undefined) throw this.urgentFailure;
  }

  private async serve(request: PageRequest): Promise<void> {
    for (const batch of this.parts.saver.requestedBatches(request.block, request.firstPage, request.pages, this.parts.resendSentPages)) await this.parts.sendBatch(batch);
  }
}
