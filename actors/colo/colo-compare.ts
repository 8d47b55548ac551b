/**
 * QEMU's colo-compare, on the primary: the primary guest's output packets
 * are held until the secondary has produced the same packet (then the
 * primary's goes out) or until a checkpoint has made the secondary's state
 * the primary's (then everything held goes out: the secondary can no
 * longer disagree with it). A packet that differs, or a primary packet the
 * secondary has not matched within COMPARE_TIMEOUT_MS, asks for a
 * checkpoint at once. The secondary's packets never go out.
 */
import { Nic, seqBefore } from '../guest/nic.js';

/** colo-compare's default compare_timeout. */
export const COMPARE_TIMEOUT_MS = 3000;

export interface ColoCompareCounters {
  /** Primary packets released because the secondary sent the same. */
  matched: number;
  /** Primary packets released by a checkpoint (or the failover that dropped the secondary). */
  releasedAtCheckpoint: number;
  /** Packets that differed (each forced a checkpoint). */
  mismatches: number;
}

interface Held {
  seq: number;
  packet: Uint8Array;
  at: number;
}

export class ColoCompare {
  private primary: Held[] = [];
  private secondary: Held[] = [];
  /** A mismatch asked for a checkpoint: nothing more is compared until it is through. */
  private diverged = false;
  private timeoutAsked = false;
  readonly counters: ColoCompareCounters = { matched: 0, releasedAtCheckpoint: 0, mismatches: 0 };

  constructor(
    private readonly release: (packet: Uint8Array) => void,
    private readonly mismatch: (why: 'mismatch' | 'timeout') => void,
  ) {}

  fromPrimary(packet: Uint8Array): void {
    this.primary.push({ seq: Nic.seqOf(packet), packet, at: Date.now() });
    this.compare();
  }

  fromSecondary(packet: Uint8Array): void {
    this.secondary.push({ seq: Nic.seqOf(packet), packet, at: Date.now() });
    this.compare();
  }

  /** The primary's packets held now, oldest first (a checkpoint carries them to the secondary). */
  held(): Uint8Array[] {
    return this.primary.map((h) => h.packet);
  }

  /**
   * The secondary has received a checkpoint (its VMSTATE_RECEIVED, in the
   * return path's order): every packet of its own before this point is of
   * the run the checkpoint replaces; what it sends from here on comes after
   * the checkpoint.
   */
  secondaryReloaded(): void {
    this.secondary = [];
  }

  /**
   * A checkpoint taken with the primary stopped is the secondary's now:
   * every held primary packet goes out, and comparing starts afresh.
   */
  checkpoint(): void {
    this.counters.releasedAtCheckpoint += this.primary.length;
    for (const h of this.primary) this.release(h.packet);
    this.primary = [];
    this.diverged = false;
    this.timeoutAsked = false;
    this.compare();
  }

  /** Failover on the primary: the secondary is gone, so what is held goes out and nothing is held again. */
  releaseAll(): void {
    this.secondaryReloaded();
    this.checkpoint();
  }

  /** Asks for a checkpoint if a primary packet has waited too long for its match. */
  checkTimeout(now = Date.now()): void {
    const oldest = this.primary[0];
    if (!oldest || this.diverged || this.timeoutAsked || now - oldest.at < COMPARE_TIMEOUT_MS) return;
    this.timeoutAsked = true;
    this.mismatch('timeout');
  }

  private compare(): void {
    while (!this.diverged && this.primary.length > 0 && this.secondary.length > 0) {
      const p = this.primary[0]!;
      const s = this.secondary[0]!;
      if (seqBefore(s.seq, p.seq)) {
        // The secondary's copy of a packet the primary already released at a checkpoint.
        this.secondary.shift();
        continue;
      }
      if (s.seq === p.seq && Buffer.compare(s.packet, p.packet) === 0) {
        this.primary.shift();
        this.secondary.shift();
        this.counters.matched++;
        this.release(p.packet);
        continue;
      }
      this.diverged = true;
      this.counters.mismatches++;
      this.mismatch('mismatch');
    }
  }
}
