/**
 * Downtime against its promise: downtime-limit is what the orchestrator
 * allows, expected-downtime what the source last estimated before it
 * switched over; the bench sets both beside the downtime each run had.
 * Every precopy migration, both engines'. A stopped guest (the random, zero
 * and compressible fills) feels no pause, but the figure is the same
 * promise: the time from the switchover to the migration's end.
 */
import type { ScenarioResult } from './results.js';
import { median } from './median.js';
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

/** One precopy scenario's downtimes against its limit, over its runs that completed. */
interface DowntimeFigures {
  scenario: string;
  guest: string;
  limitMs: number;
  /** The median of each run's last expected-downtime; undefined when no run showed one. */
  expectedMs: number | undefined;
  medianMs: number | null;
  maxMs: number;
  overruns: number;
  runs: number;
}

function downtimeFigures(results: ScenarioResult[]): DowntimeFigures[] {
  return results.flatMap((r) => {
    const runs = r.runs.filter((run) => run.ok && run.downtimeMs !== undefined);
    if (!isPrecopy(r) || runs.length === 0 || !r.median) return [];
    const limitMs = limitOf(r);
    const downtimes = runs.map((run) => run.downtimeMs!);
    const expected = runs.map((run) => run.expectedDowntimeMs).filter((e): e is number => e !== undefined);
    return [{
      scenario: `${r.family} ${r.name}`,
      guest: guestOf(r),
      limitMs,
      expectedMs: expected.length > 0 ? median(expected) : undefined,
      medianMs: r.median.downtimeMs,
      maxMs: Math.max(...downtimes),
      overruns: downtimes.filter((d) => d > limitMs).length,
      runs: runs.length,
    }];
  });
}

/** One row per precopy scenario that completed a run, in DOWNTIME_COLUMNS order. */
export function downtimeRows(results: ScenarioResult[]): string[][] {
  return downtimeFigures(results).map((f) => [
    f.scenario,
    f.guest,
    `${f.limitMs} ms`,
    f.expectedMs === undefined ? '–' : `${fixed(f.expectedMs, 0)} ms`,
    `${fixed(f.medianMs, 0)} ms`,
    `${f.maxMs} ms`,
    `${f.overruns} of ${f.runs} runs`,
  ]);
}

/** The scenarios some run of which overran its downtime-limit, for the summary. */
export function downtimeOverruns(results: ScenarioResult[]): string[] {
  return downtimeFigures(results)
    .filter((f) => f.overruns > 0)
    .map((f) => `${f.scenario} (${f.guest} guest): downtime up to ${f.maxMs} ms against a limit of ${f.limitMs} ms, in ${f.overruns} of ${f.runs} runs`);
}
