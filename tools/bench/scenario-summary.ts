/**
 * From runs to what a scenario reports: medians over the successful runs
 * (never a single run), the run to plot, and the ratios against the
 * references measured beside them in the same bench run, round by round.
 */
import { addConvergenceRatios, convergenceMedians } from './convergence-table.js';
import type { ColoDelayMedians, ColoDelayMetrics, Medians, PostcopyMedians, Ratio, RunMetrics, ScenarioResult, SnapshotMedians, StartToDoneMetrics } from './results.js';
import { REFERENCES, type ColoPlan, type PostcopyPlan, type Scenario } from './scenarios.js';
import { median } from './median.js';
import { driftsOf, pairRatios, summarizePairs, type Drift, type RoundDrift } from './pair-ratios.js';
import { DRIFT_PROBE, flagsPairsOf, pairedReferencesOf } from './round-plan.js';

function medianOf(runs: RunMetrics[], pick: (r: RunMetrics) => number | undefined): number | null {
  const values = runs.map(pick).filter((v): v is number => v !== undefined);
  return values.length > 0 ? median(values) : null;
}

export function summarizeScenario(scenario: Scenario, runs: RunMetrics[], notAvailable?: string): ScenarioResult {
  const { family, name, description, ...config } = scenario;
  const base = { name, family, description, config: config as Record<string, unknown>, runs };
  if (notAvailable !== undefined) return { ...base, status: 'not-available', note: notAvailable };
  const ok = runs.filter((r) => r.ok);
  if (ok.length === 0) {
    return { ...base, status: 'failed', note: runs.find((r) => r.error)?.error ?? 'no run completed' };
  }
  const m: Medians = {
    totalTimeMs: medianOf(ok, (r) => r.totalTimeMs)!,
    setupTimeMs: medianOf(ok, (r) => r.setupTimeMs),
    downtimeMs: medianOf(ok, (r) => r.downtimeMs),
    guestGBps: medianOf(ok, (r) => r.guestGBps)!,
    wireGBps: medianOf(ok, (r) => r.wireGBps)!,
    wireBytes: medianOf(ok, (r) => r.wireBytes)!,
    dirtySyncCount: medianOf(ok, (r) => r.dirtySyncCount),
    pagesPerSecond: medianOf(ok, (r) => r.pagesPerSecond),
    sourceCpuSeconds: medianOf(ok, (r) => r.source.cpuSeconds)!,
    destinationCpuSeconds: medianOf(ok, (r) => r.destination.cpuSeconds)!,
    sourcePeakRssBytes: medianOf(ok, (r) => r.source.peakRssBytes)!,
    destinationPeakRssBytes: medianOf(ok, (r) => r.destination.peakRssBytes)!,
    ...compressionRatio(ok),
    ...(scenario.family !== 'loopback' && scenario.postcopy ? { postcopy: postcopyMedians(ok) } : {}),
    ...(scenario.family === 'livemig' && scenario.snapshot ? { snapshot: snapshotMedians(ok) } : {}),
    ...(scenario.family === 'livemig' && scenario.colo ? { colo: coloMedians(ok, scenario.colo) } : {}),
    ...(scenario.family !== 'loopback' && scenario.convergence ? { convergence: convergenceMedians(ok, scenario.convergence) } : {}),
    ...(scenario.family !== 'loopback' && scenario.startToDone ? { startToDone: startToDoneMedians(ok) } : {}),
  };
  // The run to plot: the successful one whose total time is closest to the median.
  const medianRun = runs.indexOf(ok.reduce((best, r) =>
    Math.abs(r.totalTimeMs - m.totalTimeMs) < Math.abs(best.totalTimeMs - m.totalTimeMs) ? r : best));
  const failures = runs.length - ok.length;
  return {
    ...base,
    status: 'ok',
    ...(failures > 0 ? { note: `${failures} of ${runs.length} runs failed: ${runs.find((r) => !r.ok)?.error}` } : {}),
    median: m,
    medianRun,
  };
}

/** Guest RAM ÷ bytes on the wire, the median over the runs whose wire was counted (compression scenarios). */
function compressionRatio(ok: RunMetrics[]): { compressionRatio?: number } {
  const ratio = medianOf(ok, (r) => (r.loopbackBytes ? r.ramBytes / r.loopbackBytes : undefined));
  return ratio === null ? {} : { compressionRatio: ratio };
}

/** The medians of each start-to-done moment (a successful start-to-done run always has them). */
function startToDoneMedians(ok: RunMetrics[]): StartToDoneMetrics {
  return {
    monitorMs: medianOf(ok, (r) => r.startToDone?.monitorMs)!,
    migrateMs: medianOf(ok, (r) => r.startToDone?.migrateMs)!,
    doneMs: medianOf(ok, (r) => r.startToDone?.doneMs)!,
  };
}

/** Both ran the same postcopy plan (preempt, both bandwidths). */
function samePlan(theirs: unknown, ours: PostcopyPlan): boolean {
  const t = theirs as Partial<PostcopyPlan> | undefined;
  return t?.preempt === ours.preempt && t.maxBandwidth === ours.maxBandwidth && t.maxPostcopyBandwidth === ours.maxPostcopyBandwidth;
}

/** The medians of the postcopy figures (a successful postcopy run always has them). */
function postcopyMedians(ok: RunMetrics[]): PostcopyMedians {
  const pc = ok.map((r) => r.postcopy).filter((p) => p !== undefined);
  const of = (pick: (p: NonNullable<RunMetrics['postcopy']>) => number | undefined) => {
    const values = pc.map(pick).filter((v): v is number => v !== undefined);
    return values.length > 0 ? median(values) : null;
  };
  return {
    switchoverToCompleteMs: of((p) => p.switchoverToCompleteMs)!,
    stopToResumeMs: of((p) => p.stopToResumeMs),
    stopToRunMs: of((p) => p.stopToRunMs),
    requests: of((p) => p.requests)!,
    postcopyBytes: of((p) => p.postcopyBytes)!,
    faultCount: of((p) => p.faultLatencyUs?.count),
    faultP50Us: of((p) => p.faultLatencyUs?.p50),
    faultP99Us: of((p) => p.faultLatencyUs?.p99),
    faultMaxUs: of((p) => p.faultLatencyUs?.max),
    blocktimeMs: of((p) => p.blocktimeMs),
  };
}

/** The medians of the snapshot figures (a successful snapshot run always has them). */
function snapshotMedians(ok: RunMetrics[]): SnapshotMedians {
  return {
    faultedPages: medianOf(ok, (r) => r.snapshot?.faultedPages)!,
    guestPagesPerSecondBefore: medianOf(ok, (r) => r.snapshot?.guestPagesPerSecondBefore)!,
    guestPagesPerSecondDuring: medianOf(ok, (r) => r.snapshot?.guestPagesPerSecondDuring),
    // Run by run, then the median: each run's before is its own baseline (the machine's speed drifts between runs).
    duringOverBefore: medianOf(ok, (r) => {
      const s = r.snapshot;
      return s?.guestPagesPerSecondDuring === undefined ? undefined : s.guestPagesPerSecondDuring / s.guestPagesPerSecondBefore;
    }),
  };
}

/** The medians of each x-checkpoint-delay's figures (a successful COLO run has them all, in the plan's order). */
function coloMedians(ok: RunMetrics[], plan: ColoPlan): ColoDelayMedians[] {
  return plan.delaysMs.map((delayMs, i) => {
    const of = (pick: (d: ColoDelayMetrics, before: number) => number) =>
      medianOf(ok, (r) => (r.colo ? pick(r.colo.delays[i]!, r.colo.guestPagesPerSecondBefore) : undefined))!;
    return {
      delayMs,
      windowMs: of((d) => d.windowMs),
      checkpoints: of((d) => d.checkpoints),
      checkpointMs: of((d) => d.checkpointMs),
      downtimeMs: of((d) => d.downtimeMs),
      pages: of((d) => d.pages),
      guestPagesPerSecondBefore: of((_, before) => before),
      guestPagesPerSecondDuring: of((d) => d.guestPagesPerSecond),
      // Run by run, then the median, as for snapshots: each run's before is its own baseline.
      duringOverBefore: of((d, before) => d.guestPagesPerSecond / before),
    };
  });
}

/**
 * The rounds in which a reference moved more than DRIFT_TOLERANCE from its
 * median over the run (pair-ratios.ts): the drift probe, and each
 * reference a livemig scenario's ratios are taken against, by the figure
 * they are taken on (guest GB/s; postcopy: switchover → completion ms).
 * runs[r] is round r's run: index.ts runs each scenario once a round, and
 * only ever stops one for good.
 */
export function findDrift(results: ScenarioResult[], scenarios: Scenario[]): RoundDrift[] {
  const byName = new Map(results.map((r) => [r.name, r]));
  const paired = scenarios.filter((s) => pairedReferencesOf(s).some((ref) => byName.get(ref)?.median));
  if (paired.length === 0) return [];
  const watched = new Set([DRIFT_PROBE, ...paired.flatMap(pairedReferencesOf)]);
  return [...watched].flatMap((name) => {
    const ref = byName.get(name);
    if (!ref?.median) return [];
    const postcopy = ref.config.postcopy !== undefined;
    const figures = ref.runs.map((run) => (!run.ok ? undefined : postcopy ? run.postcopy?.switchoverToCompleteMs : run.guestGBps));
    return driftsOf(name, figures).map((d) => ({
      ...d,
      unit: postcopy ? 'ms' : 'GB/s',
      flagged: paired.filter((s) => flagsPairsOf(d, s) && byName.get(s.name)?.runs[d.round]?.ok).map((s) => s.name),
    }));
  }).sort((a, b) => a.round - b.round);
}

/** A run's guest GB/s, if it succeeded. */
const guestGBps = (run: RunMetrics) => (run.ok ? run.guestGBps : undefined);

/** The inverse of a postcopy run's switchover → completion time: a speed, so that its pair ratio is QEMU's time ÷ livemig's. */
const postcopySpeed = (run: RunMetrics) => {
  const ms = run.ok ? run.postcopy?.switchoverToCompleteMs : undefined;
  return ms !== undefined && ms > 0 ? 1 / ms : undefined;
};

/**
 * livemig ÷ QEMU and livemig ÷ loopback limit, in guest GB/s, for livemig
 * scenarios that move the same amount of like data as their references;
 * for postcopy scenarios, QEMU's switchover → completion time ÷ livemig's,
 * under the same plan. Each is the median of the round-by-round ratios of
 * the runs taken side by side (round-plan.ts), leaving out the rounds
 * `drift` flags while two others remain (pair-ratios.ts).
 */
export function addRatios(results: ScenarioResult[], scenarios: Scenario[], drift: Drift[] = []): void {
  addConvergenceRatios(results, scenarios);
  const byName = new Map(results.map((r) => [r.name, r]));
  for (const result of results) {
    const scenario = scenarios.find((s) => s.name === result.name);
    if (scenario?.family !== 'livemig' || !result.median) continue;
    const flagged = new Set(drift.filter((d) => flagsPairsOf(d, scenario)).map((d) => d.round));
    // From the pairs; from the two medians only if no round has both runs.
    const paired = (ref: ScenarioResult, figure: (run: RunMetrics) => number | undefined, ofMedians: number): Ratio => {
      const summary = summarizePairs(pairRatios(result.runs.map(figure), ref.runs.map(figure), flagged));
      return summary ? { reference: ref.name, value: summary.value, pairs: { ...summary.pairs, ofMedians } } : { reference: ref.name, value: ofMedians };
    };
    if (scenario.postcopy && result.median.postcopy) {
      // Postcopy: the same plan on the same guest range; the speed of the phase after the switch.
      const ref = scenario.postcopy.reference ? byName.get(scenario.postcopy.reference) : undefined;
      const theirs = ref?.median?.postcopy?.switchoverToCompleteMs;
      const ours = result.median.postcopy.switchoverToCompleteMs;
      if (theirs !== undefined && ref!.config.ram === scenario.ram && samePlan(ref!.config.postcopy, scenario.postcopy) && ours > 0) {
        result.postcopyVsQemu = paired(ref!, postcopySpeed, theirs / ours);
      }
    }
    if (!scenario.shape) continue;
    const refs = REFERENCES[scenario.shape];
    const ratio = (refName: string | undefined) => {
      const ref = refName ? byName.get(refName) : undefined;
      const sameSize = ref && (ref.config.ram ?? ref.config.size) === scenario.ram;
      return ref?.median && sameSize ? paired(ref, guestGBps, result.median!.guestGBps / ref.median.guestGBps) : undefined;
    };
    const vsQemu = ratio(refs.qemu);
    const vsLimit = ratio(refs.limit);
    if (vsQemu) result.vsQemu = vsQemu;
    if (vsLimit) result.vsLimit = vsLimit;
  }
}
