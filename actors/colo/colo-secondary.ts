/**
 * COLO on the secondary (QEMU's colo_process_incoming_thread), run by the
 * incoming migration once the first stream is loaded: the loaded state is
 * checkpoint 0 (copied into the COLO cache), the guest runs, its output
 * goes back to the primary's colo-compare and never out, and each
 * checkpoint is taken in whole or not at all:
 *
 *   CHECKPOINT_REQUEST → stop, CHECKPOINT_REPLY
 *   VMSTATE_SEND, pages (staged), held output, VMSTATE_SIZE n, n devices
 *     → VMSTATE_RECEIVED, apply (colo-cache.ts), load devices, run,
 *       VMSTATE_LOADED
 *
 * Anything else from the primary, or a broken link, ends checkpointing
 * with COLO_EXIT (reason error); the guest stays as it was (stopped, if a
 * checkpoint was under way) until `x-colo-lost-heartbeat` makes it take
 * over: RAM and devices back to the last completed checkpoint, the
 * primary's output held as of that checkpoint sent out, then the guest
 * runs and its output goes out (the link skips what the peer already has).
 */
import type { PageSink } from '../../protocols/page-runs/types.js';
import type { StreamMessage } from '../../protocols/stream/messages.js';
import type { SavedSection } from '../guest/devices.js';
import { digestBlocksHere, digestText } from '../guest/digest.js';
import type { Guest } from '../guest/guest.js';
import { NIC_PACKET_BYTES } from '../guest/nic.js';
import type { RamBlock } from '../guest/ram-block.js';
import type { GuestNetwork } from '../net/guest-network.js';
import type { GuestSink } from '../ram/guest-sink.js';
import type { DestinationReturnPath } from '../return-path/destination-return-path.js';
import { ColoCache } from './colo-cache.js';
import type { ColoStatus } from './colo-status.js';

/** Packets per COLO_PACKETS message: 28 × 16 bytes keep the body under the return path's 512. */
const PACKETS_PER_MESSAGE = 28;

export interface ColoSecondaryDeps {
  guest: Guest;
  /** The RAM blocks in the stream's order. */
  blocks: readonly RamBlock[];
  sink: GuestSink;
  returnPath: DestinationReturnPath;
  network: GuestNetwork;
  status: ColoStatus;
  digests: boolean;
  announceCheckpoint(data: Record<string, string | number>): void;
  log(message: string, fields?: Record<string, unknown>): void;
  trace(from: string, to: string, type: string): void;
  /** Drops the connection to the primary (failover). */
  closeLink(): void;
}

type Phase = 'idle' | 'requested' | 'ram' | 'devices' | 'lost';

/** Where pages land outside a checkpoint's RAM phase: nowhere (a primary that sends them there is confused). */
const refusePages = (): never => {
  throw new Error('The primary sent pages outside a COLO checkpoint');
};
const NO_PAGES_HERE: PageSink = { pageView: refusePages, pagesLoaded: () => {}, zeroPages: refusePages };

export class ColoSecondary {
  private readonly cache: ColoCache;
  private phase: Phase = 'idle';
  private id = 0;
  private devicesExpected = 0;
  private incomingDevices: SavedSection[] = [];
  private incomingOutput: Uint8Array[] = [];
  /** The last completed checkpoint: its number, device state, and the primary's output not yet released then. */
  private checkpointId = 0;
  private checkpointDevices: SavedSection[];
  private checkpointOutput: Uint8Array[] = [];
  private forward: Uint8Array[] = [];
  private started = 0;

  constructor(private readonly deps: ColoSecondaryDeps) {
    this.cache = new ColoCache(deps.blocks);
    this.checkpointDevices = deps.guest.devices.saveAll();
  }

  /** Checkpoint 0 is what the first migration loaded: the guest runs from it, and CHECKPOINT_READY tells the primary. */
  start(): void {
    const { guest, network, status } = this.deps;
    status.enter('secondary');
    this.deps.sink.divert(NO_PAGES_HERE);
    network.divert((packet) => {
      this.forward.push(packet);
      if (this.forward.length === 1) setImmediate(() => this.sendForward());
    });
    guest.start();
    this.deps.returnPath.send({ type: 'colo', message: 'checkpoint-ready' });
  }

  /**
   * A message of the main stream while in COLO. Returns a promise when the
   * stream must wait for it (a stop), and throws on a message that has no
   * place in the checkpoint protocol here.
   */
  handle(message: StreamMessage): Promise<void> | undefined {
    if (this.phase === 'lost' || this.deps.status.failover !== 'none') return undefined;
    switch (this.phase) {
      case 'idle':
        if (message.type === 'colo' && message.message === 'checkpoint-request') return this.stopForCheckpoint(message.value);
        break;
      case 'requested':
        if (message.type === 'colo' && message.message === 'vmstate-send') {
          this.phase = 'ram';
          this.deps.sink.divert(this.cache.staging);
          return undefined;
        }
        break;
      case 'ram':
        if (message.type === 'colo-output') {
          if (message.packets.length % NIC_PACKET_BYTES !== 0) throw new Error(`COLO output of ${message.packets.length} bytes is not whole packets`);
          for (let at = 0; at < message.packets.length; at += NIC_PACKET_BYTES) this.incomingOutput.push(message.packets.slice(at, at + NIC_PACKET_BYTES));
          return undefined;
        }
        if (message.type === 'colo' && message.message === 'vmstate-size') {
          this.deps.sink.divert(NO_PAGES_HERE);
          this.phase = 'devices';
          this.devicesExpected = message.value;
          if (this.devicesExpected === 0) this.commit();
          return undefined;
        }
        break;
      case 'devices':
        if (message.type === 'device') {
          this.incomingDevices.push(message);
          if (this.incomingDevices.length === this.devicesExpected) this.commit();
          return undefined;
        }
        break;
    }
    const what = message.type === 'colo' ? `COLO message '${message.message}'` : `'${message.type}' message`;
    throw new Error(`Unexpected ${what} in COLO checkpoint phase '${this.phase}'`);
  }

  /** The link to the primary broke (or carried nonsense): checkpointing ends; the failover decides the rest. */
  lost(err: unknown): void {
    if (this.phase === 'lost' || this.deps.status.failover !== 'none') return;
    this.phase = 'lost';
    this.deps.closeLink();
    this.deps.sink.divert(NO_PAGES_HERE);
    this.deps.log('COLO checkpointing stopped: the primary is lost; waiting for x-colo-lost-heartbeat', { error: (err as Error).message ?? String(err) });
    this.deps.status.exit('error');
  }

  /**
   * x-colo-lost-heartbeat: take over from the last completed checkpoint. A
   * checkpoint only partly received is dropped; one fully received was
   * applied already (commit runs in one go). False if a failover had
   * already begun.
   */
  async failover(): Promise<boolean> {
    const { guest, network, status } = this.deps;
    if (status.failover !== 'none') return false;
    status.failover = 'active';
    this.deps.closeLink();
    this.deps.sink.divert(NO_PAGES_HERE);
    if (guest.running) await guest.stop('colo');
    // This timeline's output never went out, and the guest will send it again from the checkpoint.
    guest.nic.discard();
    this.forward = [];
    const restored = this.cache.rollback();
    for (const saved of this.checkpointDevices) guest.devices.load(saved);
    network.restore();
    for (const packet of this.checkpointOutput) network.release(packet);
    const digest = this.deps.digests ? digestText(digestBlocksHere(guest.blocks)) : undefined;
    status.takeover = { checkpoint: this.checkpointId, ...(digest ? { digest } : {}) };
    guest.start();
    this.deps.log('COLO failover: the secondary took over', { checkpoint: this.checkpointId, restoredPages: restored });
    this.deps.trace('colo', 'incoming', `took over from checkpoint ${this.checkpointId}`);
    return true;
  }

  private async stopForCheckpoint(id: number): Promise<void> {
    const { guest, returnPath } = this.deps;
    this.started = Date.now();
    this.id = id;
    this.deps.trace('incoming', 'colo', `checkpoint ${id} requested`);
    await guest.stop('colo');
    // Lost, or told to take over, while it stopped: the failover decides what runs.
    if (this.phase !== 'idle' || this.deps.status.failover !== 'none') return;
    // Whatever the guest sent before the stop reaches the primary ahead of the reply.
    guest.nic.flush();
    this.sendForward();
    this.incomingDevices = [];
    this.incomingOutput = [];
    this.cache.staging.reset();
    this.phase = 'requested';
    returnPath.send({ type: 'colo', message: 'checkpoint-reply' });
  }

  /**
   * Everything of the checkpoint is in: apply it in one go, then run. The
   * devices load first: one that is refused leaves the cache at the last
   * checkpoint, whole, for a takeover (which loads that checkpoint's
   * devices again).
   */
  private commit(): void {
    const { guest, returnPath, status } = this.deps;
    returnPath.send({ type: 'colo', message: 'vmstate-received' });
    const staged = this.cache.staging.pages;
    for (const saved of this.incomingDevices) guest.devices.load(saved);
    this.cache.commit();
    this.checkpointId = this.id;
    this.checkpointDevices = this.incomingDevices;
    this.checkpointOutput = this.incomingOutput;
    this.phase = 'idle';
    const digest = this.deps.digests ? digestText(digestBlocksHere(guest.blocks)) : undefined;
    guest.start();
    returnPath.send({ type: 'colo', message: 'vmstate-loaded' });
    const ms = Date.now() - this.started;
    status.checkpointDone({ id: this.id, reason: 'periodic', ms, downtimeMs: ms, pages: staged, ...(digest ? { digest } : {}) });
    this.deps.announceCheckpoint({ checkpoint: this.id, mode: 'secondary', pages: staged, ...(digest ? { digest } : {}) });
    this.deps.trace('colo', 'incoming', `checkpoint ${this.id} loaded (${staged} pages)`);
  }

  private sendForward(): void {
    const packets = this.forward;
    this.forward = [];
    for (let first = 0; first < packets.length; first += PACKETS_PER_MESSAGE) {
      this.deps.returnPath.send({ type: 'colo-packets', packets: Buffer.concat(packets.slice(first, first + PACKETS_PER_MESSAGE)) });
    }
  }
}
