/**
 * Where the guest's output packets go. Normally straight out on the link
 * (or nowhere, when the instance has no `--net-out`); COLO diverts them:
 * the primary's to colo-compare, which releases them; the secondary's back
 * to the primary for comparing, never out.
 */
import type { Nic } from '../guest/nic.js';
import type { NetLink } from './net-link.js';
import { AnnounceTimer, announceFrame, NIC_NAME } from './announce.js';

export class GuestNetwork {
  private diverted: ((packet: Uint8Array) => void) | undefined;
  /** Packets the guest sent that no link took (no --net-out). */
  unconnected = 0;
  /** The self-announcement after an incoming migration (QEMU's mis->announce_timer). */
  readonly migrationAnnounce = new AnnounceTimer((interfaces) => this.announce(interfaces));

  constructor(
    nic: Nic,
    readonly link: NetLink | undefined,
  ) {
    nic.consumer = (packet) => this.route(packet);
  }

  /** Sends packets to `to` instead of the link, until restore(). */
  divert(to: (packet: Uint8Array) => void): void {
    this.diverted = to;
  }

  restore(): void {
    this.diverted = undefined;
  }

  /** Out on the link, whoever produced the packet (colo-compare releasing, or the guest itself). */
  release(packet: Uint8Array): void {
    if (this.link) this.link.send(packet);
    else this.unconnected++;
  }

  /**
   * One self-announcement round (qemu_announce_self_iter): a frame for the
   * NIC unless `interfaces` leaves it out, straight onto the link — never
   * diverted, as QEMU's RARP goes to the NIC's netdev, not through filters.
   */
  announce(interfaces?: string[]): void {
    if (interfaces && !interfaces.includes(NIC_NAME)) return;
    this.link?.send(announceFrame(Date.now()));
  }

  private route(packet: Uint8Array): void {
    if (this.diverted) this.diverted(packet);
    else this.release(packet);
  }
}
