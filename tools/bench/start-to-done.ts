/**
 * Start-to-done: what an orchestrator waits for when it starts the
 * destination and migrates into it, from the destination's start to the
 * migration's completion. The source is started and prepared first (it is
 * the running guest); only then is the destination started, and the clock
 * runs from there. QEMU's destination pre-allocates its RAM (prealloc=on)
 * before its monitor answers, so it is migrated into at once; livemig's
 * answers at once and pre-faults behind it, so it is measured both ways:
 * migrated into at once, and only once its RAM is pre-faulted.
 */
import type { RunMetrics, StartToDoneMetrics } from './results.js';

/** When the orchestrator sends `migrate`: as soon as the destination's monitor answers, or once its RAM is pre-faulted (livemig only). */
export type StartToDonePlan = 'at-once' | 'after-prefault';

/** A stopwatch started with the destination; `migrateSent` is a MigrationPlan's beforeMigrate hook (orchestrate.ts). */
export class StartToDoneClock {
  private readonly start = performance.now();
  private monitor: number | undefined;
  private migrate: number | undefined;

  monitorAnswered(): void {
    this.monitor = performance.now() - this.start;
  }

  readonly migrateSent = async (): Promise<void> => {
    this.migrate = performance.now() - this.start;
  };

  /** The figures of a completed run, from the source's final query-migrate; undefined if it did not complete. */
  metrics(source: Record<string, unknown>): StartToDoneMetrics | undefined {
    const total = source['total-time'];
    if (source.status !== 'completed' || typeof total !== 'number' || this.monitor === undefined || this.migrate === undefined) return undefined;
    return { monitorMs: this.monitor, migrateMs: this.migrate, doneMs: this.migrate + total };
  }
}

/** RunMetrics with the start-to-done figures, or failed when a completed run lacks them. */
export function withStartToDone(metrics: RunMetrics, clock: StartToDoneClock, source: Record<string, unknown>): RunMetrics {
  if (!metrics.ok) return metrics;
  const startToDone = clock.metrics(source);
  return startToDone ? { ...metrics, startToDone } : { ...metrics, ok: false, error: 'the run completed without the moments start-to-done needs' };
}
