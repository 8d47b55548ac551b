/**
 * COLO on the primary (QEMU's colo_process_checkpoint), run by the
 * migration thread once the first migration's stream is through: wait for
 * the secondary's CHECKPOINT_READY, run the guest, and take a checkpoint
 * every `x-checkpoint-delay` ms, or at once when colo-compare sees the two
 * guests' output differ (or wait too long for a match) or when asked.
 *
 * A checkpoint: CHECKPOINT_REQUEST, the secondary stops and says
 * CHECKPOINT_REPLY; the primary stops, sends VMSTATE_SEND, its dirty pages,
 * the output it still holds, VMSTATE_SIZE and the device state; the
 * secondary says VMSTATE_RECEIVED (colo-compare then releases what it held)
 * and VMSTATE_LOADED once it has applied everything; both run again.
 *
 * A broken link or a confused secondary ends checkpointing with COLO_EXIT
 * (reason error); as in QEMU, what happens next is the failover's to
 * decide: `x-colo-lost-heartbeat` drops the secondary, releases the held
 * output, and the guest runs on here alone.
 */
import { NIC_PACKET_BYTES } from '../guest/nic.js';
import { digestBlocksHere, digestText } from '../guest/digest.js';
import type { Guest } from '../guest/guest.js';
import type { GuestNetwork } from '../net/guest-network.js';
import type { MainChannel } from './main-channel.js';
import { abortable } from './abortable.js';
import type { SourceReturnPath } from '../return-path/source-return-path.js';
import { ColoCompare } from '../colo/colo-compare.js';
import type { CheckpointReason, ColoStatus } from '../colo/colo-status.js';

/** Packets per COLO output message on the stream (64 KiB). */
const OUTPUT_CHUNK_PACKETS = 4096;
/** How often colo-compare looks for primary packets that waited too long. */
const COMPARE_SCAN_MS = 500;

export interface ColoPrimaryDeps {
  guest: Guest;
  main: MainChannel;
  returnPath: SourceReturnPath;
  network: GuestNetwork;
  status: ColoStatus;
  /** x-checkpoint-delay, read at each wait (it may change live). */
  delayMs(): number;
  /** Drops the connection to the secondary at once (a failover: whatever is being sent is abandoned). */
  dropSecondary(): void;
  /** Dirty sync and every dirty page out on the main channel, unthrottled. */
  sendDirtyPages(): Promise<{ pages: number; bytes: number }>;
  /** --colo-digests: each checkpoint's RAM digest is worked out (and announced) while the guest is stopped. */
  digests: boolean;
  /** livemig's COLO_CHECKPOINT event. */
  announceCheckpoint(data: Record<string, string | number>): void;
  log(message: string, fields?: Record<string, unknown>): void;
  trace(from: string, to: string, type: string): void;
}

class FailoverRequested extends Error {
  constructor() {
    super('failover request');
  }
}

export class ColoPrimary {
  readonly compare: ColoCompare;
  private readonly failoverAsked = new AbortController();
  private wake: ((reason: CheckpointReason) => void) | undefined;
  /** A checkpoint asked for while none could start yet (the first one runs as soon as the loop waits). */
  private pending: CheckpointReason | undefined;
  private id = 0;
  /** When the last checkpoint began (or checkpointing did): the next is due x-checkpoint-delay after it, as QEMU's timer counts. */
  private lastStart = 0;
  /** The instance is closing: the loop ends without a failover. */
  private stopped = false;

  constructor(private readonly deps: ColoPrimaryDeps) {
    this.compare = new ColoCompare(
      (packet) => deps.network.release(packet),
      (why) => {
        deps.trace('colo-compare', 'migration', why === 'mismatch' ? 'output mismatch' : 'output match timed out');
        this.requestCheckpoint(why);
      },
    );
  }

  /** A checkpoint at once (colo-compare, livemig's colo-checkpoint). */
  requestCheckpoint(reason: CheckpointReason): void {
    if (this.wake) this.wake(reason);
    else this.pending ??= reason;
  }

  /**
   * x-colo-lost-heartbeat: whatever the loop is waiting for or sending, it
   * stops (the connection is shut, as QEMU's failover shuts its files) and
   * the failover runs.
   */
  failover(): void {
    if (this.deps.status.failover !== 'none') return;
    this.deps.status.failover = 'require';
    this.failoverAsked.abort(new FailoverRequested());
    this.deps.dropSecondary();
  }

  /** The migration actor is going (the instance closes): the loop ends, nothing fails over. */
  stop(): void {
    this.stopped = true;
    if (!this.failoverAsked.signal.aborted) this.failoverAsked.abort(new FailoverRequested());
  }

  /**
   * Runs until a failover is through (true), or the instance closes
   * (false); never throws (a lost secondary waits for the failover).
   */
  async run(): Promise<boolean> {
    const { guest, returnPath, network, status } = this.deps;
    status.enter('primary');
    status.compare = this.compare.counters;
    returnPath.acceptColo = true;
    returnPath.on('colo-packets', (bytes) => {
      for (let at = 0; at < bytes.length; at += NIC_PACKET_BYTES) this.compare.fromSecondary(bytes.slice(at, at + NIC_PACKET_BYTES));
    });
    // In the path's order: the secondary's packets before its VMSTATE_RECEIVED are of the run the checkpoint replaces.
    returnPath.on('colo', (step) => {
      if (step === 'vmstate-received') this.compare.secondaryReloaded();
    });
    guest.nic.flush();
    network.divert((packet) => this.compare.fromPrimary(packet));
    const scan = setInterval(() => this.compare.checkTimeout(), COMPARE_SCAN_MS);
    try {
      await this.waitFor(returnPath.coloMessage('checkpoint-ready'));
      guest.start();
      this.lastStart = Date.now();
      for (;;) await this.checkpoint(await this.nextCheckpoint());
    } catch (err) {
      // A failure that is not the failover's own doing: the secondary is lost, and the heartbeat decides.
      if (!this.failoverAsked.signal.aborted) {
        this.deps.log('COLO checkpointing stopped: the secondary is lost; waiting for x-colo-lost-heartbeat', { error: (err as Error).message });
        status.exit('error');
        await new Promise<void>((resolve) => this.failoverAsked.signal.addEventListener('abort', () => resolve(), { once: true }));
      }
    } finally {
      clearInterval(scan);
    }
    if (this.stopped) return false;
    status.failover = 'active';
    // The secondary is gone: what was held goes out, oldest first, and from now on the guest's output goes straight out.
    guest.nic.flush();
    this.compare.releaseAll();
    network.restore();
    if (guest.runState !== 'running') guest.start();
    this.deps.log('COLO failover: the primary runs on alone');
    return true;
  }

  /** Waits until x-checkpoint-delay after the last checkpoint began, or less when one is asked for. */
  private async nextCheckpoint(): Promise<CheckpointReason> {
    if (this.pending) {
      const reason = this.pending;
      this.pending = undefined;
      return reason;
    }
    const left = this.lastStart + this.deps.delayMs() - Date.now();
    if (left <= 0) return 'periodic';
    // A new x-checkpoint-delay asks for a checkpoint at once (colo-checkpoint), so the wait need not re-read it.
    let timer: NodeJS.Timeout | undefined;
    const woken = new Promise<CheckpointReason>((resolve) => {
      this.wake = resolve;
      timer = setTimeout(() => resolve('periodic'), left);
    });
    try {
      return await this.waitFor(woken);
    } finally {
      this.wake = undefined;
      clearTimeout(timer);
    }
  }

  private async checkpoint(reason: CheckpointReason): Promise<void> {
    const { guest, main, returnPath } = this.deps;
    const id = ++this.id;
    const started = Date.now();
    this.lastStart = started;
    this.deps.trace('migration', 'colo', `checkpoint ${id} (${reason})`);
    await main.sendMessage({ type: 'colo', message: 'checkpoint-request', value: id });
    await this.waitFor(returnPath.coloMessage('checkpoint-reply'));
    await guest.stop('colo');
    const stopped = Date.now();
    // What the guest sent before the stop is the checkpoint's, held or matched.
    guest.nic.flush();
    let digest: string | undefined;
    if (this.deps.digests) {
      digest = digestText(digestBlocksHere(guest.blocks));
      this.deps.announceCheckpoint({ checkpoint: id, mode: 'primary', digest });
    }
    await main.sendMessage({ type: 'colo', message: 'vmstate-send', value: 0 });
    const ram = await this.deps.sendDirtyPages();
    const held = this.compare.held();
    for (let first = 0; first < held.length; first += OUTPUT_CHUNK_PACKETS) {
      await main.sendMessage({ type: 'colo-output', packets: Buffer.concat(held.slice(first, first + OUTPUT_CHUNK_PACKETS)) });
    }
    const devices = guest.devices.saveAll();
    await main.sendMessage({ type: 'colo', message: 'vmstate-size', value: devices.length });
    for (const saved of devices) await main.sendMessage({ type: 'device', ...saved });
    await this.waitFor(returnPath.coloMessage('vmstate-received'));
    this.compare.checkpoint();
    await this.waitFor(returnPath.coloMessage('vmstate-loaded'));
    guest.start();
    const now = Date.now();
    this.deps.status.checkpointDone({ id, reason, ms: now - started, downtimeMs: now - stopped, pages: ram.pages, bytes: ram.bytes, ...(digest ? { digest } : {}) });
    this.deps.trace('colo', 'migration', `checkpoint ${id} loaded (${ram.pages} pages)`);
  }

  /** Every wait of the loop ends at once when a failover is asked for. */
  private waitFor<T>(promise: Promise<T>): Promise<T> {
    return abortable(this.failoverAsked.signal, promise);
  }
}
