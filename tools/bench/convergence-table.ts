/**
 * The convergence scenarios' report: medians over a scenario's runs,
 * livemig ÷ QEMU under the same lever, the table printed on the terminal
 * (and in the HTML report), and one run's line in the bench's log.
 */
import { CONVERGENCE_VCPU_DIRTY_LIMIT, didNotConverge, type ConvergenceMedians, type ConvergenceMetrics, type ConvergencePlan } from './convergence-plan.js';
import type { RunMetrics, ScenarioResult } from './results.js';
import { median } from './median.js';
import type { Scenario } from './scenarios.js';

/**
 * Converged: runs that completed within the bound, of those measured.
 * Time to converge: total-time; downtime: query-migrate's; transferred:
 * ram.transferred; syncs: dirty-sync-count; throttle: the highest
 * cpu-throttle-percentage seen (auto-converge), or dirty-limit's cap.
 * Medians over the converged runs (over all, when none converged: then
 * transferred and syncs are those of the bound). Guest: page writes/s
 * before `migrate` and from `migrate` to its end; calc-dirty-rate before
 * `migrate`. ÷ QEMU: livemig's figure over QEMU's.
 */
export const CONVERGENCE_COLUMNS = [
  'scenario', 'status', 'converged', 'time to converge ms', 'downtime ms', 'transferred MiB', 'syncs', 'throttle',
  'guest Mpages/s before/during', 'dirty rate MB/s', 'time ÷ QEMU', 'downtime ÷ QEMU', 'bytes ÷ QEMU', 'syncs ÷ QEMU', 'verified',
] as const;

/** The medians of a convergence scenario's runs (each successful run has its figures). */
export function convergenceMedians(ok: RunMetrics[], plan: ConvergencePlan): ConvergenceMedians {
  const all = ok.map((r) => r.convergence).filter((c): c is ConvergenceMetrics => c !== undefined);
  const converged = all.filter((c) => c.converged);
  const over = converged.length > 0 ? converged : all;
  const of = (runs: ConvergenceMetrics[], pick: (c: ConvergenceMetrics) => number | undefined) => {
    const values = runs.map(pick).filter((v): v is number => v !== undefined);
    return values.length > 0 ? median(values) : null;
  };
  return {
    lever: plan.lever,
    runs: all.length,
    converged: converged.length,
    boundMs: plan.boundMs,
    timeToConvergeMs: of(converged, (c) => c.timeToConvergeMs),
    downtimeMs: of(converged, (c) => c.downtimeMs),
    transferredBytes: of(over, (c) => c.transferredBytes) ?? 0,
    dirtySyncCount: of(over, (c) => c.dirtySyncCount) ?? 0,
    maxThrottlePercent: of(over, (c) => c.maxThrottlePercent) ?? 0,
    guestPagesPerSecond: of(all, (c) => c.guest.pagesPerSecond) ?? 0,
    guestDirtyRateMBps: of(all, (c) => c.guest.dirtyRateMBps) ?? 0,
    guestDuringPagesPerSecond: of(over, (c) => c.guest.duringPagesPerSecond),
  };
}

/** livemig ÷ QEMU for each livemig convergence scenario whose QEMU reference has medians: time and downtime where both converged. */
export function addConvergenceRatios(results: ScenarioResult[], scenarios: Scenario[]): void {
  const byName = new Map(results.map((r) => [r.name, r]));
  for (const result of results) {
    const scenario = scenarios.find((s) => s.name === result.name);
    if (scenario?.family !== 'livemig' || !scenario.convergence?.reference) continue;
    const ours = result.median?.convergence;
    const theirs = byName.get(scenario.convergence.reference)?.median?.convergence;
    if (!ours || !theirs) continue;
    const ratio = (a: number | null, b: number | null) => (a !== null && b !== null && b > 0 ? a / b : undefined);
    const bothConverged = ours.converged > 0 && theirs.converged > 0;
    const value = {
      timeToConverge: ratio(ours.timeToConvergeMs, theirs.timeToConvergeMs),
      downtime: ratio(ours.downtimeMs, theirs.downtimeMs),
      // Bytes and syncs compare like with like only: both converged, or both ran to the bound.
      ...(bothConverged || (ours.converged === 0 && theirs.converged === 0 && ours.boundMs === theirs.boundMs)
        ? { transferred: ratio(ours.transferredBytes, theirs.transferredBytes), dirtySyncs: ratio(ours.dirtySyncCount, theirs.dirtySyncCount) }
        : {}),
    };
    result.convergenceVsQemu = {
      reference: scenario.convergence.reference,
      ...Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)),
    };
  }
}

const fixed = (v: number | null | undefined, digits: number) => (v === null || v === undefined ? '–' : v.toFixed(digits));
const times = (v: number | undefined) => (v === undefined ? '–' : `${v.toFixed(2)}×`);

/** "2/2", or "no in 30 s" when none of the runs converged. */
function convergedCell(m: ConvergenceMedians): string {
  if (m.converged === 0) return `no in ${m.boundMs / 1000} s (0/${m.runs})`;
  return `${m.converged}/${m.runs}`;
}

function throttleCell(m: ConvergenceMedians): string {
  if (m.lever === 'dirty-limit') return `cap ${CONVERGENCE_VCPU_DIRTY_LIMIT} MB/s`;
  return m.maxThrottlePercent > 0 ? `${m.maxThrottlePercent.toFixed(0)} %` : '–';
}

/** The convergence scenarios, both engines, in the order run. */
export function convergenceResults(results: ScenarioResult[]): ScenarioResult[] {
  return results.filter((r) => r.config.convergence !== undefined);
}

/** One row per convergence scenario, in CONVERGENCE_COLUMNS order. */
export function convergenceRows(results: ScenarioResult[]): string[][] {
  return convergenceResults(results).map((r) => {
    const m = r.median?.convergence;
    const status = r.status === 'ok' && r.note ? 'ok*' : r.status;
    if (!m) return [`${r.family} ${r.name}`, status, ...CONVERGENCE_COLUMNS.slice(2).map(() => '')];
    const vs = r.convergenceVsQemu;
    const verified = r.runs.filter((run) => run.verified !== null);
    return [
      `${r.family} ${r.name}`,
      status,
      convergedCell(m),
      fixed(m.timeToConvergeMs, 0),
      fixed(m.downtimeMs, 0),
      fixed(m.transferredBytes / (1 << 20), 0),
      fixed(m.dirtySyncCount, 0),
      throttleCell(m),
      `${fixed(m.guestPagesPerSecond / 1e6, 1)}/${fixed(m.guestDuringPagesPerSecond === null ? null : m.guestDuringPagesPerSecond / 1e6, 2)}`,
      fixed(m.guestDirtyRateMBps, 0),
      times(vs?.timeToConverge),
      times(vs?.downtime),
      times(vs?.transferred),
      times(vs?.dirtySyncs),
      verified.length === 0 ? '–' : `${verified.filter((run) => run.verified).length}/${verified.length}`,
    ];
  });
}

/** One run's convergence figures, as the bench logs it. */
export function convergenceSummary(c: ConvergenceMetrics): string {
  return [
    c.converged ? `converged in ${c.timeToConvergeMs} ms, downtime ${c.downtimeMs} ms` : didNotConverge(c.boundMs),
    `${(c.transferredBytes / (1 << 20)).toFixed(0)} MiB sent, ${c.dirtySyncCount} syncs`,
    c.maxThrottlePercent > 0 ? `throttle up to ${c.maxThrottlePercent} %` : '',
    `guest ${(c.guest.pagesPerSecond / 1e6).toFixed(1)} Mpages/s before, ${((c.guest.duringPagesPerSecond ?? 0) / 1e6).toFixed(2)} during, dirty rate ${c.guest.dirtyRateMBps} MB/s`,
  ].filter(Boolean).join(', ');
}
