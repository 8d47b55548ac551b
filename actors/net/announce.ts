/**
 * Self-announce (QEMU's net/announce.c): after an incoming migration, and
 * on `announce-self`, the guest's NIC tells the network where it now is,
 * as a RARP packet per NIC does for the switches between hosts. Here an
 * announcement is a frame of its own kind on the --net-out link
 * (protocols/net-out/constants.ts), which the peer counts apart from the
 * guest's packets.
 *
 * The schedule is QEMU's: the first round at once, then each next one
 * `initial + (rounds - round - 1) * step` ms later, where `round` counts
 * the rounds still to go — so the gaps are initial, initial + step,
 * initial + 2·step, … — and any gap beyond `max` (or below 0) is `max`.
 *
 * @example
 * const timer = new AnnounceTimer(() => network.announce());
 * timer.start({ initial: 50, max: 550, rounds: 5, step: 100 });
 */
import { NET_OUT_ANNOUNCE, NET_OUT_ANNOUNCE_SEQ } from '../../protocols/net-out/constants.js';
import { NIC_PACKET_BYTES } from '../guest/nic.js';
import type { MigrationParameters } from '../options/parameters.js';

/** QEMU's AnnounceParameters (announce-self's arguments; the migration's announce-* parameters). */
export interface AnnounceParameters {
  initial: number;
  max: number;
  rounds: number;
  step: number;
  /** Only the NICs named here announce; all of them when absent. */
  interfaces?: string[];
  id?: string;
}

/** migrate_announce_params: the announce-* migration parameters as a schedule. */
export function migrationAnnounceParameters(p: MigrationParameters): AnnounceParameters {
  return { initial: Number(p['announce-initial']), max: Number(p['announce-max']), rounds: Number(p['announce-rounds']), step: Number(p['announce-step']) };
}

/** setTimeout's longest delay; QEMU's int64 ms are cut to it. */
const MAX_TIMEOUT_MS = 0x7fff_ffff;

/** The guest's one NIC, as QEMU would name its netdev. */
export const NIC_NAME = 'net0';

/**
 * qemu_announce_timer_step: the gap before the next round, `round` being
 * the rounds still to go (after the one just sent).
 */
export function announceTimerStep(params: AnnounceParameters, round: number): number {
  const step = params.initial + (params.rounds - round - 1) * params.step;
  return step < 0 || step > params.max ? params.max : step;
}

/** One announcement frame: the reserved sequence number, the kind, the sender's clock (ms since the epoch, u64). */
export function announceFrame(nowMs: number): Uint8Array {
  const frame = new Uint8Array(NIC_PACKET_BYTES);
  const view = new DataView(frame.buffer);
  view.setUint32(0, NET_OUT_ANNOUNCE_SEQ);
  view.setUint32(4, NET_OUT_ANNOUNCE);
  view.setBigUint64(8, BigInt(Math.trunc(nowMs)));
  return frame;
}

/** Whether a frame on the link is an announcement rather than one of the guest's packets. */
export function isAnnounceFrame(frame: Uint8Array): boolean {
  if (frame.length !== NIC_PACKET_BYTES) return false;
  const view = new DataView(frame.buffer, frame.byteOffset, frame.byteLength);
  return view.getUint32(0) === NET_OUT_ANNOUNCE_SEQ && view.getUint32(4) === NET_OUT_ANNOUNCE;
}

/**
 * QEMU's AnnounceTimer: one schedule of rounds at a time; starting it again
 * drops the rounds still to come of the last start (qemu_announce_timer_reset).
 */
export class AnnounceTimer {
  private timer: NodeJS.Timeout | undefined;
  private params: AnnounceParameters | undefined;
  private round = 0;

  /** `announce(interfaces)` sends one round: a frame per NIC that `interfaces` (when given) names. */
  constructor(private readonly announce: (interfaces: string[] | undefined) => void) {}

  /** qemu_announce_self: the first round now, the others on the schedule. */
  start(params: AnnounceParameters): void {
    this.stop();
    this.params = params;
    this.round = params.rounds;
    if (params.rounds !== 0) this.once();
  }

  stop(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  /** qemu_announce_self_once. */
  private once(): void {
    const params = this.params!;
    this.announce(params.interfaces);
    this.round--;
    if (this.round === 0) return this.stop();
    // As QEMU's, a negative `rounds` never reaches 0: rounds go on, `max` apart, until the next start.
    this.timer = setTimeout(() => this.once(), Math.min(announceTimerStep(params, this.round), MAX_TIMEOUT_MS));
    // Rounds still to come must not keep a process that is otherwise done alive.
    this.timer.unref();
  }
}
