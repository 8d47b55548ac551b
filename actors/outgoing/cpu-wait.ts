import { readFileSync } from 'node:fs';

/**
 * How much of the migration thread's time went to waiting for a CPU, from
 * the kernel's schedstat (time run, time waited on a run queue). On a host
 * with few cores a running guest's vCPUs hold cores the migration thread
 * then waits for; stopped for the switchover, they give them back, so the
 * stop-and-copy does not wait where precopy did (README, downtime sweep:
 * the main thread waited 40–50 % of each dirty pass, 10–20 % of the
 * stop-and-copy).
 *
 * Sampled at each dirty sync after the first pass (the bulk pass's waits
 * say nothing of the scattered dirty pages'), over at least WINDOW_MS.
 */
export class CpuWait {
  private readonly samples: { ms: number; waitMs: number }[] = [];
  private last: { at: number; waitNs: number } | undefined;
  /** No schedstat for this thread (not Linux, or a kernel without it): nothing is measured. */
  private unavailable = false;

  constructor(private readonly path = '/proc/thread-self/schedstat') {}

  /**
   * Ends a sample here. `keep` false only sets where the next one starts
   * (the syncs that end setup and the first pass).
   */
  sample(keep: boolean): void {
    const waitNs = this.readWaitNs();
    if (waitNs === undefined) return;
    const at = performance.now();
    if (keep && this.last) this.samples.push({ ms: at - this.last.at, waitMs: (waitNs - this.last.waitNs) / 1e6 });
    this.last = { at, waitNs };
    // The newest samples that still cover the window.
    let covered = 0;
    for (let i = this.samples.length - 1; i >= 0; i--) {
      covered += this.samples[i]!.ms;
      if (covered >= WINDOW_MS) {
        this.samples.splice(0, i);
        break;
      }
    }
  }

  /** The share of the window the thread did not spend waiting for a CPU; 1 until something is measured. */
  runShare(): number {
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
      // "<ns on a CPU> <ns waiting on a run queue> <timeslices>"
      const waitNs = Number(readFileSync(this.path, 'utf8').split(' ')[1]);
      if (Number.isFinite(waitNs)) return waitNs;
    } catch {
      // No such file: fall through.
    }
    this.unavailable = true;
    return undefined;
  }
}

/** What the share is measured over: a few 100 ms windows, so that one scheduling hiccup does not set it. */
const WINDOW_MS = 200;
