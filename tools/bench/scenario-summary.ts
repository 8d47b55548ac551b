/**
 * From runs to what a scenario reports: medians over the successful runs
 * (never a single run), the run to plot, and the ratios against the
 * references measured in the same bench run.
 */
import { addConvergenceRatios, convergenceMedians } from './convergence-table.js';
import type { ColoDelayMedians, ColoDelayMetrics, Medians, PostcopyMedians, RunMetrics, ScenarioResult, SnapshotMedians } from './results.js';
import { REFERENCES, type ColoPlan, type PostcopyPlan, type Scenario } from './scenarios.js';
import { median } from './median.js';

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
 * livemig ÷ QEMU and livemig ÷ loopback limit, in guest GB/s, for livemig
 * scenarios that move the same amount of like data as their references;
 * for postcopy scenarios, QEMU's switchover → completion time ÷ livemig's,
 * under the same plan.
 */
export function addRatios(results: ScenarioResult[], scenarios: Scenario[]): void {
  addConvergenceRatios(results, scenarios);
  const byName = new Map(results.map((r) => [r.name, r]));
  for (const result of results) {
    const scenario = scenarios.find((s) => s.name === result.name);
    if (scenario?.family === 'livemig' && scenario.postcopy && result.median?.postcopy) {
      // Postcopy: the same plan on the same guest range; the speed of the phase after the switch.
      const ref = scenario.postcopy.reference ? byName.get(scenario.postcopy.reference) : undefined;
      const theirs = ref?.median?.postcopy?.switchoverToCompleteMs;
      const ours = result.median.postcopy.switchoverToCompleteMs;
      if (theirs !== undefined && ref!.config.ram === scenario.ram && samePlan(ref!.config.postcopy, scenario.postcopy) && ours > 0) {
        result.postcopyVsQemu = { reference: ref!.name, value: theirs / ours };
      }
    }
    if (scenario?.family !== 'livemig' || !scenario.shape || !result.median) continue;
    const refs = REFERENCES[scenario.shape];
    const ratio = (refName: string | undefined) => {
      const ref = refName ? byName.get(refName) : undefined;
      const sameSize = ref && (ref.config.ram ?? ref.config.size) === scenario.ram;
      return ref?.median && sameSize ? { reference: ref.name, value: result.median!.guestGBps / ref.median.guestGBps } : undefined;
    };
    const vsQemu = ratio(refs.qemu);
    const vsLimit = ratio(refs.limit);
    if (vsQemu) result.vsQemu = vsQemu;
    if (vsLimit) result.vsLimit = vsLimit;
  }
}
