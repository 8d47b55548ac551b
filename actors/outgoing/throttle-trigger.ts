/**
 * When a migration throttles its guest (QEMU's migration_trigger_throttle,
 * run from migration_bitmap_sync): at dirty syncs at least a second apart,
 * compare the bytes the guest dirtied over that period with the bytes sent;
 * the second period in which they exceed throttle-trigger-threshold percent
 * of them fires the trigger (QEMU's dirty_rate_high_cnt, not reset by a
 * quieter period in between). auto-converge then throttles the vCPUs, and
 * dirty-limit caps their dirty rate; the two are exclusive, as in QEMU.
 */
import { TARGET_PAGE_SIZE } from '../guest/constants.js';

/** QEMU measures over periods of at least this long (migration_bitmap_sync). */
const PERIOD_MS = 1000;

/** A period that fired the trigger: what it dirtied, against what the threshold allowed. */
export interface HighDirtyPeriod {
  dirtiedBytes: number;
  thresholdBytes: number;
}

export class ThrottleTrigger {
  private periodStart: number;
  private transferredAtStart: number;
  private dirtiedInPeriod = 0;
  private highPeriods = 0;

  constructor(
    /** throttle-trigger-threshold, percent, read at each period's end (so it acts live). */
    private readonly threshold: () => number,
    now: number,
    transferred: number,
  ) {
    this.periodStart = now;
    this.transferredAtStart = transferred;
  }

  /**
   * A dirty sync found `dirtiedPages` pages dirty; `transferred` bytes have
   * gone so far. Returns the period that fires the trigger, else undefined.
   */
  onSync(now: number, dirtiedPages: number, transferred: number): HighDirtyPeriod | undefined {
    this.dirtiedInPeriod += dirtiedPages;
    if (now - this.periodStart <= PERIOD_MS) return undefined;
    const sentBytes = transferred - this.transferredAtStart;
    const dirtiedBytes = this.dirtiedInPeriod * TARGET_PAGE_SIZE;
    const thresholdBytes = (sentBytes * this.threshold()) / 100;
    this.periodStart = now;
    this.transferredAtStart = transferred;
    this.dirtiedInPeriod = 0;
    if (dirtiedBytes > thresholdBytes && ++this.highPeriods >= 2) {
      this.highPeriods = 0;
      return { dirtiedBytes, thresholdBytes };
    }
    return undefined;
  }
}
