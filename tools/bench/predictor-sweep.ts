/**
 * The convergence predictor's accuracy (issue 19): a `random` guest at each
 * of a sweep of dirty rates, from well below what max-bandwidth carries to
 * well above it. For each rate a fresh pair: the guest's dirty rate
 * measured (calc-dirty-rate), `__org.livemig_query-convergence` asked,
 * then the migration, cancelled past a bound; the prediction (converges?,
 * passes, downtime) beside what happened. A converged destination (started
 * -S, so it holds still) must hold the source's bytes.
 */
import { join } from 'node:path';
import { measureAndPredict } from '../convergence-report.js';
import { boundTcpUri, spawnInstance, type InstanceProcess } from '../instance-process.js';
import type { MigrationPlan } from '../orchestrate.js';
import type { PredictorPoint, PredictorSweepPlan } from './predictor-plan.js';
import { probeSupport, quitAll, sameMemory } from './livemig-migration.js';
import { livemigEndpoint, measureMigration } from './measure-migration.js';
import { failedRunWithLogs, migrationMetrics } from './migration-metrics.js';
import type { RunMetrics, ScenarioResult } from './results.js';
import type { LivemigScenario } from './scenarios.js';
import { formatRows } from './table.js';
import { onTeardown } from './teardown.js';

const START_TIMEOUT_MS = 60_000;
/** Lets the workload settle into its pace before its rate is measured. */
const WARMUP_MS = 500;

export async function runPredictorSweep(scenario: LivemigScenario, plan: PredictorSweepPlan, dir: string, run: number): Promise<RunMetrics> {
  const points: PredictorPoint[] = [];
  const runs: RunMetrics[] = [];
  for (const rate of plan.rates) {
    const result = await sweepPoint(scenario, plan, rate, dir, `${scenario.name}-${run}-${rate}`);
    if ('error' in result) return { ...result.error, predictor: points };
    points.push(result.point);
    runs.push(result.metrics);
  }
  // The run's figures are the sweep's migrations together (a cancelled one reports no time); each point is in `predictor`.
  const sum = (pick: (m: RunMetrics) => number) => runs.reduce((n, m) => n + pick(m), 0);
  const totalTimeMs = sum((m) => m.totalTimeMs);
  const checked = runs.filter((m) => m.verified !== null);
  const verified = checked.length === 0 ? null : checked.every((m) => m.verified);
  return {
    ok: verified !== false,
    ...(verified === false ? { error: 'a converged destination\'s memory differs from the source' } : {}),
    totalTimeMs,
    ramBytes: scenario.ram * runs.length,
    wireBytes: sum((m) => m.wireBytes),
    guestGBps: totalTimeMs > 0 ? (scenario.ram * runs.length) / 1e6 / totalTimeMs : 0,
    wireGBps: totalTimeMs > 0 ? sum((m) => m.wireBytes) / 1e6 / totalTimeMs : 0,
    source: { cpuSeconds: sum((m) => m.source.cpuSeconds), peakRssBytes: Math.max(...runs.map((m) => m.source.peakRssBytes)) },
    destination: { cpuSeconds: sum((m) => m.destination.cpuSeconds), peakRssBytes: Math.max(...runs.map((m) => m.destination.peakRssBytes)) },
    verified,
    series: [],
    predictor: points,
  };
}

async function sweepPoint(
  scenario: LivemigScenario,
  plan: PredictorSweepPlan,
  rate: number,
  dir: string,
  tag: string,
): Promise<{ point: PredictorPoint; metrics: RunMetrics } | { error: RunMetrics }> {
  const base = ['--ram', String(scenario.ram), '--smp', '1'];
  const started: InstanceProcess[] = [];
  const undo = onTeardown(() => quitAll(started));
  try {
    const source = await spawnInstance(
      [...base, '--fill', 'random', '--workload', 'random', '--dirty-rate', String(rate), '--working-set', String(plan.workingSet)],
      { socket: join(dir, `${tag}-src.qmp`), name: 'source', timeoutMs: START_TIMEOUT_MS },
    );
    started.push(source);
    const destination = await spawnInstance([...base, '--incoming', 'tcp:127.0.0.1:0', '--paused'], { socket: join(dir, `${tag}-dst.qmp`), name: 'destination', timeoutMs: START_TIMEOUT_MS });
    started.push(destination);
    const migration: MigrationPlan = {
      uri: await boundTcpUri(destination.qmp),
      caps: [],
      params: [{ 'max-bandwidth': plan.maxBandwidth, 'downtime-limit': BigInt(plan.downtimeLimit) }],
    };
    await probeSupport(source, migration);
    await new Promise((r) => setTimeout(r, WARMUP_MS));
    const p = await measureAndPredict(source.qmp, { calcTimeMs: plan.calcTimeMs, workingSet: plan.workingSet });
    const run = await measureMigration(
      livemigEndpoint(source),
      livemigEndpoint(destination),
      migration,
      false,
      plan.boundMs,
    );
    const converged = run.source.status === 'completed';
    if (!converged && run.source.status !== 'cancelled') throw new Error(`migration ${String(run.source.status)}: ${String(run.source['error-desc'] ?? '')}`);
    // A cancelled migration's query-migrate has no figures left: its last sample's.
    const syncs = converged ? Number((run.source.ram as Record<string, number>)['dirty-sync-count']) : (run.series.at(-1)?.pass ?? 0);
    const verified = converged ? await sameMemory(source, destination) : null;
    const metrics = migrationMetrics(run.source, run.usage, verified, run.series);
    const point: PredictorPoint = {
      rate,
      prediction: { 'dirty-rate': p['dirty-rate'], 'dirty-pages-rate': p['dirty-pages-rate'], converges: p.converges, passes: p.passes, ...(p.converges ? { 'expected-downtime': p['expected-downtime']! } : {}) },
      converged,
      // QEMU counts a dirty sync at setup and one in the stop-and-copy, beside one after each pass.
      ...(converged ? { passes: syncs - 2, downtimeMs: Number(run.source.downtime) } : { dirtySyncCount: syncs }),
    };
    return { point, metrics };
  } catch (err) {
    return { error: failedRunWithLogs(err, started) };
  } finally {
    await undo();
  }
}

/**
 * One row per rate of each predictor sweep's runs: the rate the guest was
 * given and what calc-dirty-rate measured, the prediction and the outcome.
 */
export const PREDICTOR_COLUMNS = [
  'scenario', 'run', 'writes/s', 'measured MB/s', 'predicted', 'passes', 'downtime ms', 'actual', 'passes', 'downtime ms', 'agrees',
] as const;

const outcome = (converges: boolean) => (converges ? 'converges' : 'no');

export function predictorRows(results: ScenarioResult[]): string[][] {
  return results.flatMap((r) => r.runs.flatMap((run, i) => (run.predictor ?? []).map((pt) => [
    `${r.family} ${r.name}`,
    String(i + 1),
    pt.rate.toLocaleString('en-US'),
    String(pt.prediction['dirty-rate']),
    outcome(pt.prediction.converges),
    pt.prediction.converges ? String(pt.prediction.passes) : '–',
    pt.prediction['expected-downtime'] !== undefined ? `≤ ${pt.prediction['expected-downtime']}` : '–',
    pt.converged ? 'converged' : `no (${pt.dirtySyncCount} syncs)`,
    pt.passes !== undefined ? String(pt.passes) : '–',
    pt.downtimeMs !== undefined ? String(pt.downtimeMs) : '–',
    pt.prediction.converges === pt.converged ? 'yes' : 'NO',
  ])));
}

/** The predictor table, or '' when no sweep ran. */
export function formatPredictorTable(results: ScenarioResult[]): string {
  const rows = predictorRows(results);
  return rows.length === 0 ? '' : formatRows(PREDICTOR_COLUMNS, rows);
}
