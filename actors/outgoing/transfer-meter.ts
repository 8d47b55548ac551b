import type { RamStats } from '../ram/ram-stats.js';
import { BandwidthMeter, RateLimiter } from './rate-limit.js';

/**
 * Where every byte the source puts on the wire is counted, on whichever
 * channel (DESIGN rule 6; QEMU's migration_rate_account): query-migrate's
 * counters, the bandwidth that the switchover threshold and the expected
 * downtime are worked out from, and max-bandwidth's budget.
 */
export class TransferMeter {
  readonly bandwidth = new BandwidthMeter();
  readonly limiter: RateLimiter;

  /** @param maxBandwidth bytes/s, read at every use (Infinity: no limit) */
  constructor(
    private readonly stats: RamStats,
    maxBandwidth: () => number,
  ) {
    this.limiter = new RateLimiter(maxBandwidth);
  }

  /**
   * Counts `bytes` put on the wire; `clearedBytes` is how much RAM they
   * moved (the switchover bandwidth); `charged`, what max-bandwidth is
   * charged for them.
   */
  account(bytes: number, clearedBytes = bytes, charged = bytes): void {
    this.stats.countBytes(bytes);
    this.bandwidth.account(clearedBytes);
    this.limiter.account(charged);
  }
}
