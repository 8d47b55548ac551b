/**
 * The convergence scenarios (issue 19): a guest that dirties faster than
 * the migration may send, migrated by livemig and by real QEMU under the
 * same limits, with no lever (bounded, then cancelled), auto-converge,
 * dirty-limit or XBZRLE: what both engines run and what a run measured
 * (scenarios.ts lists the scenarios, convergence-run.ts works out a run's
 * figures).
 */
import type { MigrationCapabilityStatus } from '../../actors/options/capabilities.js';
import type { MigrateSetParameters } from '../../actors/options/parameters.js';
import type { MigrationPlan } from '../orchestrate.js';

/** What helps the migration converge. */
export type ConvergenceLever = 'none' | 'auto-converge' | 'dirty-limit' | 'xbzrle';

export interface ConvergencePlan {
  lever: ConvergenceLever;
  /** bytes/s: low enough that the whole dirty range cannot go within the downtime limit. */
  maxBandwidth: bigint;
  /** ms. */
  downtimeLimit: number;
  /** Past this (ms after `migrate`), migrate_cancel: "did not converge in N s". */
  boundMs: number;
}

const MiB = 1 << 20;

/**
 * Both guests: 256 MiB of RAM holding random bytes, one vCPU adding 1 to
 * the first byte of every page of [1 MiB, 100 MiB) over and over (QEMU: the
 * boot sector of qemu-dirty-guest/, where the range is fixed; livemig: `ab`
 * given the same range). Each sweeps the range in 1–2 ms, so at every dirty
 * sync the whole 99 MiB is dirty again. The random bytes make the first
 * pass take longer than QEMU's first 100 ms of accounting: a first pass
 * that ends sooner finds QEMU without a threshold yet (0), and it completes
 * at once, sending the whole dirty range in the downtime.
 */
export const CONVERGENCE_RAM = 256 * MiB;
export const CONVERGENCE_DIRTY_RANGE = { start: MiB, end: 100 * MiB } as const;
/**
 * 1 GiB/s × 10 ms = 10 MiB may go in the downtime: a tenth of the dirty
 * range, so that without a lever neither engine converges, unless the
 * guest is kept off its CPU for nearly a whole pass (~0.1 s; it happens on
 * a busy machine). With auto-converge at its 99 % the guests dirty less
 * than the 1 GiB/s sent (QEMU's 1 % of ~12 Mpages/s in bursts of 10 ms a
 * second, livemig's of ~21 Mpages/s spread over each 10 ms), so the dirty
 * set can shrink. Below 99 % neither can.
 */
export const CONVERGENCE_BANDWIDTH = 1n << 30n;
export const CONVERGENCE_DOWNTIME_LIMIT_MS = 10;
/** No lever: long enough to outlast auto-converge's climb to 99 % (a step every ~2 s). */
export const NO_LEVER_BOUND_MS = 30_000;
/** A lever that has not converged by then is reported as not converging. */
export const LEVER_BOUND_MS = 60_000;
/** XBZRLE's cache holds the whole dirty range (QEMU's default, 64 MiB, would not). */
export const CONVERGENCE_XBZRLE_CACHE = 128n << 20n;
/** dirty-limit's cap per vCPU, MB/s: QEMU's default vcpu-dirty-limit, set explicitly. */
export const CONVERGENCE_VCPU_DIRTY_LIMIT = 1n;

/** The capabilities and parameters of a lever, the same for both engines (set on both sides). */
export function convergenceMigrationPlan(uri: string, plan: ConvergencePlan): MigrationPlan {
  const caps: MigrationCapabilityStatus[] = plan.lever === 'none' ? [] : [{ capability: plan.lever, state: true }];
  const params: MigrateSetParameters = {
    'max-bandwidth': plan.maxBandwidth,
    'downtime-limit': plan.downtimeLimit,
    ...(plan.lever === 'xbzrle' ? { 'xbzrle-cache-size': CONVERGENCE_XBZRLE_CACHE } : {}),
    ...(plan.lever === 'dirty-limit' ? { 'vcpu-dirty-limit': CONVERGENCE_VCPU_DIRTY_LIMIT } : {}),
  };
  return { uri, caps, params: [params] };
}

/** How fast the guest dirtied before `migrate`, measured the same way on both engines. */
export interface GuestPace {
  /** Page writes per second over the calc-dirty-rate window (QEMU: the boot sector's pass counter × its pages; livemig: vcpu-work). */
  pagesPerSecond: number;
  /** calc-dirty-rate (page-sampling, calc-time 1 s): distinct pages dirtied in the second, MB/s. */
  dirtyRateMBps: number;
  /** Page writes per second from `migrate` until it ended: what the lever and the machine left the guest. */
  duringPagesPerSecond?: number;
}

/** What one convergence run measured. */
export interface ConvergenceMetrics {
  lever: ConvergenceLever;
  converged: boolean;
  boundMs: number;
  /** total-time of a converged migration (from `migrate` to completed). */
  timeToConvergeMs?: number;
  /** query-migrate's downtime, converged runs only. */
  downtimeMs?: number;
  /** ram.transferred: at completion, or at the last sample before the cancel. */
  transferredBytes: number;
  /** ram.dirty-sync-count, likewise. */
  dirtySyncCount: number;
  /** The highest cpu-throttle-percentage seen (auto-converge), 0 if none. */
  maxThrottlePercent: number;
  guest: GuestPace;
  /** query-migrate's xbzrle-cache at the end (XBZRLE runs). */
  xbzrle?: Record<string, number>;
}

/** The medians a convergence scenario reports. */
export interface ConvergenceMedians {
  lever: ConvergenceLever;
  runs: number;
  converged: number;
  boundMs: number;
  /**
   * Over the converged runs; when none converged, the figures over the
   * bound (transferred, syncs, throttle) and no time or downtime.
   */
  timeToConvergeMs: number | null;
  downtimeMs: number | null;
  transferredBytes: number;
  dirtySyncCount: number;
  maxThrottlePercent: number;
  guestPagesPerSecond: number;
  guestDirtyRateMBps: number;
  guestDuringPagesPerSecond: number | null;
}

/** livemig ÷ QEMU, each figure where both engines have it (both converged, for time and downtime). */
export interface ConvergenceRatios {
  reference: string;
  timeToConverge?: number;
  downtime?: number;
  transferred?: number;
  dirtySyncs?: number;
}

/** A cancelled run ended by the bound, as the bench logs it. */
export function didNotConverge(boundMs: number): string {
  return `did not converge in ${boundMs / 1000} s`;
}
