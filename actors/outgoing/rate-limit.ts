/** QEMU's BUFFER_DELAY: bandwidth is limited, and measured, in 100 ms windows. */
export const RATE_WINDOW_MS = 100;

/**
 * max-bandwidth as a token bucket refilled at the limit and holding at most
 * one 100 ms window's worth: a batch over a tiny limit is paid back
 * by sleeping, not rounded up to a window. The limit is read at every call,
 * so migrate-set-parameters takes effect at once: a debt made at another
 * limit shrinks to at most one window at the new one, so lowering the limit
 * (or the switch to max-postcopy-bandwidth) costs at most one window's wait,
 * as with QEMU's per-window count, not the old debt paid at the new rate.
 */
export class RateLimiter {
  private tokens: number;
  private last = performance.now();
  /** The limit the bucket was last refilled at. */
  private limit: number;

  constructor(private readonly bytesPerSecond: () => number) {
    // Start with a full window's budget: an empty bucket would make the very
    // first batches wait.
    this.limit = bytesPerSecond();
    this.tokens = windowBytes(this.limit) ?? 0;
  }

  account(bytes: number): void {
    this.refill();
    this.tokens -= bytes;
  }

  /**
   * How long to wait (ms) before sending more; 0 within budget or without a
   * limit. A debt under a millisecond is carried, not slept: timers cannot
   * sleep less than 1 ms, and rounding each small debt up would cap a fast
   * link at one batch per millisecond.
   */
  delay(): number {
    this.refill();
    const limit = this.bytesPerSecond();
    if (!(limit > 0) || !Number.isFinite(limit)) {
      this.tokens = 0;
      return 0;
    }
    const ms = (-this.tokens / limit) * 1000;
    return ms >= 1 ? ms : 0;
  }

  /**
   * The most data pages one frame or batch may carry: a window's worth under
   * a limit, so a round is paced through the windows as QEMU's page-by-page
   * rate check paces it, and not sent in one burst the moment the bucket
   * holds a token (a whole small round would then go at once, and the next
   * dirty sync would find the guest had no time to dirty anything).
   */
  windowPages(maxPages: number, pageSize: number): number {
    return windowPagesAt(this.bytesPerSecond(), maxPages, pageSize);
  }

  private refill(): void {
    const now = performance.now();
    const limit = this.bytesPerSecond();
    const window = windowBytes(limit);
    if (window !== undefined) {
      const debt = limit === this.limit ? this.tokens : Math.max(this.tokens, -window);
      this.tokens = Math.min(debt + (limit * (now - this.last)) / 1000, window);
    }
    this.limit = limit;
    this.last = now;
  }
}

/** RateLimiter.windowPages for a limit of `limit` bytes/s. */
export function windowPagesAt(limit: number, maxPages: number, pageSize: number): number {
  const window = windowBytes(limit);
  if (window === undefined) return maxPages;
  return Math.max(1, Math.min(maxPages, Math.floor(window / pageSize)));
}

/** One window's worth of bytes at `limit` bytes/s; undefined without a limit. */
function windowBytes(limit: number): number | undefined {
  return limit > 0 && Number.isFinite(limit) ? (limit * RATE_WINDOW_MS) / 1000 : undefined;
}

/**
 * Measures the bandwidth the migration achieves, over windows of at least
 * 100 ms (QEMU's migration_update_counters), for the switchover threshold and
 * the mbps counter.
 */
export class BandwidthMeter {
  private windowStart = performance.now();
  private windowBytes = 0;
  /** Bytes per millisecond over the last completed window. */
  bytesPerMs = 0;

  account(bytes: number): void {
    this.windowBytes += bytes;
    const now = performance.now();
    const elapsed = now - this.windowStart;
    if (elapsed >= RATE_WINDOW_MS) {
      this.bytesPerMs = this.windowBytes / elapsed;
      this.windowStart = now;
      this.windowBytes = 0;
    }
  }
}
