/**
 * What a convergence run (convergence-plan.ts) measured, from the
 * migration as measure-migration.ts saw it: its figures, and its metrics
 * as the bench's results hold them.
 */
import type { MigrationPlan } from '../orchestrate.js';
import type { ConvergenceLever, ConvergenceMetrics, ConvergencePlan, GuestPace } from './convergence-plan.js';
import { measureGuestPace, watchGuestPace, type WorkCounter } from './guest-pace.js';
import { measureMigration, type Endpoint, type MeasuredMigration } from './measure-migration.js';
import { migrationMetrics } from './migration-metrics.js';
import type { RunMetrics, Sample } from './results.js';

/**
 * The figures of a run that ended: the source's final query-migrate
 * (completed), or (cancelled at the bound: query-migrate then has no
 * figures, on either engine) the last sample before the cancel.
 */
export function convergenceFigures(
  lever: ConvergenceLever,
  boundMs: number,
  final: Record<string, unknown>,
  series: Sample[],
  guest: GuestPace,
): ConvergenceMetrics {
  const converged = final.status === 'completed';
  const ram = (final.ram ?? {}) as Record<string, number>;
  const last = series.filter((s) => s.status !== 'completed').at(-1);
  const xbzrle = final['xbzrle-cache'] as Record<string, number> | undefined;
  return {
    lever,
    converged,
    boundMs,
    ...(converged ? { timeToConvergeMs: Number(final['total-time']) } : {}),
    ...(converged && typeof final.downtime === 'number' ? { downtimeMs: final.downtime } : {}),
    transferredBytes: converged ? Number(ram.transferred ?? 0) : (last?.transferred ?? 0),
    dirtySyncCount: converged ? Number(ram['dirty-sync-count'] ?? 0) : (last?.pass ?? 0),
    maxThrottlePercent: Math.max(0, ...series.map((s) => s.cpuThrottlePercentage ?? 0)),
    guest,
    ...(xbzrle ? { xbzrle } : {}),
  };
}

/**
 * A convergence run's metrics: a completed migration as any other (verified
 * as the engine's runner checked it) with its convergence figures; one
 * cancelled at the bound is no failure but a result, "did not converge",
 * with the figures of its last sample; anything else failed.
 */
export function convergenceRunMetrics(run: MeasuredMigration, plan: ConvergencePlan, guest: GuestPace, verified: boolean | null): RunMetrics {
  const final = run.source;
  const metrics = migrationMetrics(final, run.usage, verified, run.series);
  const figures = convergenceFigures(plan.lever, plan.boundMs, final, run.series, guest);
  if (final.status === 'cancelled') {
    const { error: _cancelled, ...rest } = metrics;
    return { ...rest, ok: true, totalTimeMs: run.series.at(-1)?.t ?? plan.boundMs, wireBytes: figures.transferredBytes, convergence: figures };
  }
  if (metrics.ok && run.destination.status !== 'completed') {
    return { ...metrics, ok: false, error: `destination ${String(run.destination.status)}: ${String(run.destination['error-desc'] ?? '')}` };
  }
  return metrics.ok ? { ...metrics, convergence: figures } : metrics;
}

/**
 * One convergence run of either engine: the guest's pace for a second
 * before `migrate` and over the migration, the migration bounded by the
 * plan, then its metrics (`sameMemory` compares the two guests' memories
 * once both sides completed).
 */
export async function measureConvergenceRun(
  source: Endpoint,
  destination: Endpoint,
  migration: MigrationPlan,
  plan: ConvergencePlan,
  pagesWritten: WorkCounter,
  sameMemory: () => Promise<boolean>,
): Promise<RunMetrics> {
  const pace = await measureGuestPace(source.qmp, pagesWritten);
  const during = await watchGuestPace(pagesWritten);
  const result = await measureMigration(source, destination, migration, false, plan.boundMs);
  pace.duringPagesPerSecond = await during.stop();
  const completed = result.source.status === 'completed' && result.destination.status === 'completed';
  return convergenceRunMetrics(result, plan, pace, completed ? await sameMemory() : null);
}
