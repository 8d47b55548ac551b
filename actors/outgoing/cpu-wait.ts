import { readFileSync } from 'node:fs';

/**
 * How much of the migration thread's wall time went to waiting for a CPU,
 * from the kernel's schedstat (ns run, ns waited on a run queue). On a host
 * with few cores a running guest's vCPUs hold cores the migration thread
 * then waits for; stopped for the switchover they give them back, and the
 * stop-and-copy waits far less (README, downtime sweep: the source's main
 * thread waited a median 38 % of a dirty pass, 15 % of a stop-and-copy).
 * Any wait counts, whoever caused it.
 *
 * Sampled at each dirty sync after the first pass (the bulk pass says
 * nothing of the scattered dirty pages'), over the newest samples that
 * cover WINDOW_MS, or all there are before that.
 */
export class CpuWait {
  private readonly samples: { ms: number; waitMs: number }[] = [];
  private last: { at: number; waitNs: number } | undefined;
  /** No schedstat for this thread (not Linux, or a kernel without it): nothing is measured. */
  private unavailable = false;

  constructor(
    private readonly path = '/proc/thread-self/schedstat',
    private readonly now: () => number = () => performance.now(),
  ) {}

  /**
   * Ends a sample here. `keep` false only sets where the next one starts
   * (the syncs that end setup and the first pass).
   */
  sample(keep: boolean): void {
    const waitNs = this.readWaitNs();
    if (waitNs === undefined) return;
    const at = this.now();
    if (keep && this.last) this.samples.push({ ms: at - this.last.at, waitMs: (waitNs - this.last.waitNs) / 1e6 });
    this.last = { at, waitNs };
    let covered = 0;
    for (let i = this.samples.length - 1; i > 0; i--) {
      covered += this.samples[i]!.ms;
      if (covered >= WINDOW_MS) {
        this.samples.splice(0, i);
        break;
      }
    }
  }

  /**
   * The share of the window's wall time the thread did not spend waiting
   * for a CPU (running, or idle on I/O); 1 until something is measured.
   */
  shareNotWaiting(): number {
    let ms = 0;
    let waitMs = 0;
    for (const s of this.samples) {
      ms += s.ms;
      waitMs += s.waitMs;
    }
    return ms > 0 ? Math.min(1, Math.max(0, (ms - waitMs) / ms)) : 1;
  }

  private readWaitNs(): number | undefined {
    if (this.unavailable) return undefined;
    try {
      // Read on this thread: an asynchronous read would run on a libuv pool thread, which /proc/thread-self would name.
      const waitNs = Number(readFileSync(this.path, 'utf8').split(' ')[1]);
      if (Number.isFinite(waitNs)) return waitNs;
    } catch {
      // No such file: fall through.
    }
    this.unavailable = true;
    return undefined;
  }
}

/** What the share is measured over: a single short pass is at the mercy of one scheduling hiccup. */
const WINDOW_MS = 200;
