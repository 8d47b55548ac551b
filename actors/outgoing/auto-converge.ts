/**
 * auto-converge (QEMU's migration_trigger_throttle and
 * mig_throttle_guest_down): when the throttle trigger fires (dirtied bytes
 * above throttle-trigger-threshold percent of those sent, the second such
 * period of at least a second: throttle-trigger.ts), throttle the vCPUs —
 * cpu-throttle-initial percent at first, then up by cpu-throttle-increment
 * (or, with cpu-throttle-tailslow, by no more than what would bring the
 * dirty rate down to the threshold), at most max-cpu-throttle. Parameters
 * are read at each decision, so they act live.
 */
import type { MigrationParameters } from '../options/parameters.js';
import { ThrottleTrigger } from './throttle-trigger.js';

/** What auto-converge throttles: the guest's vCPUs (Guest.setThrottle). */
export interface Throttled {
  readonly throttle: number;
  setThrottle(percent: number): void;
}

type ThrottleParameters = Pick<
  MigrationParameters,
  'throttle-trigger-threshold' | 'cpu-throttle-initial' | 'cpu-throttle-increment' | 'cpu-throttle-tailslow' | 'max-cpu-throttle'
>;

/** cpu_throttle_set's bounds. */
const MIN_PERCENT = 1;
const MAX_PERCENT = 99;

export class AutoConverge {
  private readonly trigger: ThrottleTrigger;

  constructor(
    private readonly guest: Throttled,
    private readonly params: () => ThrottleParameters,
    now: number,
    transferred: number,
  ) {
    this.trigger = new ThrottleTrigger(() => this.params()['throttle-trigger-threshold'], now, transferred);
  }

  /** The throttle in force (query-migrate's cpu-throttle-percentage), 0 when none. */
  get percentage(): number {
    return this.guest.throttle;
  }

  /** A dirty sync found `dirtiedPages` pages dirty; `transferred` bytes have gone so far. */
  onSync(now: number, dirtiedPages: number, transferred: number): void {
    const high = this.trigger.onSync(now, dirtiedPages, transferred);
    if (high) this.throttleDown(this.params(), high.dirtiedBytes, high.thresholdBytes);
  }

  /** The migration is over, however it ended: the vCPUs run free again. */
  stop(): void {
    this.guest.setThrottle(0);
  }

  private throttleDown(p: ThrottleParameters, dirtiedBytes: number, thresholdBytes: number): void {
    const now = this.guest.throttle;
    if (now === 0) return this.set(p['cpu-throttle-initial']);
    let increment = p['cpu-throttle-increment'];
    if (p['cpu-throttle-tailslow']) {
      // The share of CPU at which the guest would dirty just the threshold; step no further than that.
      const cpuNow = 100 - now;
      const cpuIdeal = cpuNow * (thresholdBytes / dirtiedBytes);
      increment = Math.min(Math.trunc(cpuNow - cpuIdeal), increment);
    }
    this.set(Math.min(now + increment, p['max-cpu-throttle']));
  }

  private set(percent: number): void {
    this.guest.setThrottle(Math.max(MIN_PERCENT, Math.min(MAX_PERCENT, Math.trunc(percent))));
  }
}
