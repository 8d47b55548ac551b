/**
 * What an instance knows of its COLO life: its mode (primary, secondary,
 * none), the mode it had before its last failover, the failover's state,
 * and the checkpoint figures. query-colo-status and livemig's query-colo
 * read it; COLO_EXIT is announced through it.
 */
import type { ColoCompareCounters } from './colo-compare.js';

export type ColoMode = 'none' | 'primary' | 'secondary';
/** QEMU's FailoverStatus, without relaunch (a failover during a load here waits for the load). */
export type FailoverState = 'none' | 'require' | 'active' | 'completed';
export type ColoExitReason = 'request' | 'error';
/** Why a checkpoint was taken. */
export type CheckpointReason = 'periodic' | 'mismatch' | 'timeout' | 'request';

export interface CheckpointRecord {
  id: number;
  reason: CheckpointReason;
  /** From the checkpoint request until the secondary had loaded it. */
  ms: number;
  /** The guest stopped: from its stop until it ran again. */
  downtimeMs: number;
  pages: number;
  /** The primary: bytes the checkpoint put on the wire. */
  bytes?: number;
  /** Both sides, with --colo-digests: the checkpoint's RAM digest. */
  digest?: string;
}

export class ColoStatus {
  mode: ColoMode = 'none';
  lastMode: ColoMode = 'none';
  failover: FailoverState = 'none';
  checkpoints = 0;
  totalMs = 0;
  totalDowntimeMs = 0;
  totalPages = 0;
  last: CheckpointRecord | undefined;
  /** The primary's colo-compare counters, while it has one. */
  compare: ColoCompareCounters | undefined;
  /** The secondary's takeover: the checkpoint it went back to, and (with --colo-digests) its RAM digest then. */
  takeover: { checkpoint: number; digest?: string } | undefined;

  constructor(private readonly announce: (mode: Exclude<ColoMode, 'none'>, reason: ColoExitReason) => void) {}

  /** A COLO session begins: nothing of an earlier one on this instance carries over. */
  enter(mode: Exclude<ColoMode, 'none'>): void {
    this.mode = mode;
    this.failover = 'none';
    this.exited = false;
    this.checkpoints = 0;
    this.totalMs = 0;
    this.totalDowntimeMs = 0;
    this.totalPages = 0;
    this.last = undefined;
    this.takeover = undefined;
    this.compare = undefined;
  }

  checkpointDone(record: CheckpointRecord): void {
    this.checkpoints++;
    this.totalMs += record.ms;
    this.totalDowntimeMs += record.downtimeMs;
    this.totalPages += record.pages;
    this.last = record;
  }

  private exited = false;

  /** COLO ended on this side, once (COLO_EXIT): the other side was lost (error), or a failover ended it (request). */
  exit(reason: ColoExitReason): void {
    if (this.mode === 'none' || this.exited) return;
    this.exited = true;
    this.announce(this.mode, reason);
  }

  /** The failover is through: COLO_EXIT (reason request, unless a lost link announced it already), and the mode becomes last-mode. */
  failedOver(): void {
    this.exit('request');
    this.failover = 'completed';
    this.lastMode = this.mode;
    this.mode = 'none';
  }

  /** query-colo-status, as QEMU words it. */
  query(): { mode: ColoMode; 'last-mode': ColoMode; reason: 'none' | 'request' | 'error' | 'processing' } {
    const reason = this.failover === 'none' ? 'none' : this.failover === 'completed' ? 'request' : this.mode !== 'none' ? 'processing' : 'error';
    return { mode: this.mode, 'last-mode': this.lastMode, reason };
  }
}
