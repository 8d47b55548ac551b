/**
 * Downtime against its promise: downtime-limit is what the orchestrator
 * allows, expected-downtime what the source last estimated before it
 * switched over; the bench sets both beside the downtime each run had.
 * Every precopy migration, both engines'. A stopped guest (the random, zero
 * and compressible fills) feels no pause, but the figure is the same
 * promise: the time from the switchover to the migration's end.
 */
import type { ScenarioResult } from './results.js';
import { fixed } from './table.js';

export const DOWNTIME_COLUMNS = [
  'scenario', 'guest', 'downtime-limit', 'expected-downtime', 'downtime', 'downtime max', 'over the limit',
] as const;

/** QEMU's default downtime-limit, ms. */
const DEFAULT_DOWNTIME_LIMIT_MS = 300;

/** Scenarios that are one precopy migration each (postcopy, snapshots, COLO and the predictor sweep report otherwise). */
function isPrecopy(r: ScenarioResult): boolean {
  const c = r.config;
  return r.family !== 'loopback' && !c.postcopy && !c.snapshot && !c.colo && !c.predictorSweep;
}

function limitOf(r: ScenarioResult): number {
  const c = r.config as { downtimeLimit?: number; convergence?: { downtimeLimit: number } };
  return c.downtimeLimit ?? c.convergence?.downtimeLimit ?? DEFAULT_DOWNTIME_LIMIT_MS;
}

function guestOf(r: ScenarioResult): string {
  const c = r.config as { workload?: { kind: string }; memory?: string };
  const kind = c.workload?.kind ?? c.memory;
  return kind === 'ab' || kind === 'dirty' || kind === 'dirtying' ? 'running' : 'stopped';
}

/** One row per precopy scenario that completed a run, in DOWNTIME_COLUMNS order; expected-downtime is the median of each run's last estimate. */
export function downtimeRows(results: ScenarioResult[]): string[][] {
  return results.flatMap((r) => {
    const runs = r.runs.filter((run) => run.ok && run.downtimeMs !== undefined);
    if (!isPrecopy(r) || runs.length === 0 || !r.median) return [];
    const limit = limitOf(r);
    const downtimes = runs.map((run) => run.downtimeMs!);
    const over = downtimes.filter((d) => d > limit).length;
    const expected = runs.map((run) => run.expectedDowntimeMs).filter((e): e is number => e !== undefined).sort((a, b) => a - b);
    return [[
      `${r.family} ${r.name}`,
      guestOf(r),
      `${limit} ms`,
      expected.length > 0 ? `${fixed(expected[Math.floor(expected.length / 2)], 0)} ms` : '–',
      `${fixed(r.median.downtimeMs, 0)} ms`,
      `${Math.max(...downtimes)} ms`,
      `${over} of ${runs.length} runs`,
    ]];
  });
}

/** The scenarios some run of which overran its downtime-limit, for the summary. */
export function downtimeOverruns(results: ScenarioResult[]): string[] {
  return downtimeRows(results).filter((row) => !row[6]!.startsWith('0 ')).map((row) => `${row[0]} (${row[1]} guest): downtime up to ${row[5]} against a limit of ${row[2]}, in ${row[6]}`);
}
