/**
 * `livemig bench` (`npm run bench`): livemig's migration speed next to the
 * machine's loopback limit and real QEMU, measured in one run: rounds of
 * every scenario, each livemig scenario right beside its references
 * (round-plan.ts), so that every round gives ratios of runs taken seconds
 * apart on a machine whose speed drifts; medians over rounds, ratios as
 * medians of those pairs, rounds taken in an unusual phase flagged
 * (pair-ratios.ts). Prints a table and writes results.json and report.html.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join, resolve } from 'node:path';
import { REPO_ROOT } from '../instance-process.js';
import { COMPRESSION_COLUMNS, compressionRows } from './compression-table.js';
import { START_TO_DONE_COLUMNS, startToDoneRows } from './start-to-done-table.js';
import { DOWNTIME_COLUMNS, downtimeOverruns, downtimeRows, downtimeSweepSummary } from './downtime-table.js';
import { SCALE_RAM_COLUMNS, SCALE_VCPU_COLUMNS, scaleRamRows, scaleVcpuRows, throughputFlatness } from './scale-table.js';
import { withDirtySyncCost } from './dirty-sync-cost.js';
import { CONVERGENCE_COLUMNS, convergenceRows } from './convergence-table.js';
import { htmlReport } from './html-report.js';
import { floorStatements, THREAD_PROFILE_COLUMNS, threadProfileRows } from './thread-profile-table.js';
import { runLivemigColo } from './livemig-colo.js';
import { runLivemigConvergence } from './livemig-convergence.js';
import { runLivemig } from './livemig-migration.js';
import { runLivemigSnapshot } from './livemig-snapshot.js';
import { measureLoopback } from './loopback-limit.js';
import { NotAvailable } from './not-available.js';
import { formatPredictorTable, runPredictorSweep } from './predictor-sweep.js';
import { runQemuConvergence } from './qemu-convergence.js';
import { runQemu } from './qemu-migration.js';
import { runQemuPostcopy } from './qemu-postcopy.js';
import { ensureQemu } from './qemu-setup.js';
import type { BenchResults, RunMetrics } from './results.js';
import { DRIFT_TOLERANCE } from './pair-ratios.js';
import { roundOrder, withDriftProbe } from './round-plan.js';
import { addRatios, findDrift, summarizeScenario } from './scenario-summary.js';
import { allScenarios, selectScenarios, type Scenario } from './scenarios.js';
import { formatColoTable, formatDrift, formatNotes, formatPostcopyTable, formatRows, formatSnapshotTable, formatTable, formatVsQemuTable, runSummary } from './table.js';
import { onTeardown, teardownAll } from './teardown.js';

export interface BenchOptions {
  size: number;
  repeat: number;
  filters: string[];
  qemu: boolean;
  quick: boolean;
  out: string;
}

/** A --scenario that matches nothing: the one usage error the command line (options.ts) cannot see. */
class BenchUsageError extends Error {}

const log = (line: string) => console.log(line);

function runScenario(s: Scenario, dir: string, run: number): Promise<RunMetrics> {
  switch (s.family) {
    case 'loopback':
      return measureLoopback(s.size, s.connections);
    case 'qemu':
      if (s.convergence) return runQemuConvergence(s, dir, run);
      // The downtime sweep's QEMU point is a convergence run with no lever, at its limit.
      if (s.downtimeSweep) return runQemuConvergence({ ...s, convergence: s.downtimeSweep }, dir, run);
      return s.postcopy ? runQemuPostcopy(s, dir, run) : runQemu(s, dir, run);
    case 'livemig':
      if (s.convergence) return runLivemigConvergence(s, dir, run);
      if (s.predictorSweep) return runPredictorSweep(s, s.predictorSweep, dir, run);
      if (s.snapshot) return runLivemigSnapshot(s, s.snapshot, dir, run);
      if (s.scale?.axis === 'ram') return withDirtySyncCost(runLivemig(s, dir, run), s.ram);
      return s.colo ? runLivemigColo(s, s.colo, dir, run) : runLivemig(s, dir, run);
  }
}

/** JSON with the bigint parameters (max-bandwidth) as numbers. */
const jsonReplacer = (_key: string, value: unknown) => (typeof value === 'bigint' ? Number(value) : value);

async function bench(options: BenchOptions): Promise<number> {
  const startedAt = new Date().toISOString();
  const loadBefore = os.loadavg();
  const all = allScenarios(options.size);
  const selected = withDriftProbe(all, selectScenarios(all, options));
  if (selected.length === 0) throw new BenchUsageError(`no scenario matches ${options.filters.map((f) => `'${f}'`).join(', ')}`);
  log(`livemig bench: ${selected.length} scenarios × ${options.repeat} runs, main guest size ${options.size / (1 << 20)} MiB`);
  if (loadBefore[0]! >= 1) log(`note: the machine is busy (load average ${loadBefore[0]!.toFixed(2)}): figures will be noisy`);

  const notAvailable = new Map<string, string>();
  let qemu: string | null = null;
  if (selected.some((s) => s.family === 'qemu')) {
    try {
      qemu = await ensureQemu(log);
      log(`reference: ${qemu}`);
    } catch (err) {
      log(`QEMU is not available: ${(err as Error).message}`);
      for (const s of selected) if (s.family === 'qemu') notAvailable.set(s.name, (err as Error).message);
    }
  }
  const dir = mkdtempSync(join(os.tmpdir(), 'livemig-bench-'));
  onTeardown(() => rmSync(dir, { recursive: true, force: true }));

  const runs = new Map<string, RunMetrics[]>(selected.map((s) => [s.name, []]));
  for (let round = 0; round < options.repeat; round++) {
    // Each livemig scenario beside its references, so that each round gives pairs of runs taken seconds apart.
    for (const s of roundOrder(selected, round)) {
      if (notAvailable.has(s.name)) continue;
      const prefix = `[${round + 1}/${options.repeat}] ${`${s.family} ${s.name}`.padEnd(30)}`;
      try {
        const m = await runScenario(s, dir, round);
        runs.get(s.name)!.push(m);
        log(m.ok ? `${prefix} ${runSummary(m)}` : `${prefix} FAILED: ${m.error?.split('\n')[0]}`);
      } catch (err) {
        if (!(err instanceof NotAvailable)) throw err;
        notAvailable.set(s.name, err.message);
        log(`${prefix} not available: ${err.message}`);
      }
    }
  }

  const scenarios = selected.map((s) => summarizeScenario(s, runs.get(s.name)!, notAvailable.get(s.name)));
  const drift = findDrift(scenarios, selected);
  addRatios(scenarios, selected, drift);
  // Drift needs two rounds at least: one round is its own median.
  const paired = options.repeat >= 2 && scenarios.some((s) => [s.vsQemu, s.vsLimit, s.postcopyVsQemu].some((ratio) => ratio?.pairs));
  const results: BenchResults = {
    startedAt,
    finishedAt: new Date().toISOString(),
    machine: { cpus: os.cpus().length, memoryBytes: os.totalmem(), node: process.version, qemu, loadBefore, loadAfter: os.loadavg() },
    options: { ...options },
    scenarios,
    ...(paired ? { drift: { tolerance: DRIFT_TOLERANCE, rounds: drift } } : {}),
  };
  log(`\n${formatTable(scenarios)}\n`);
  const vsQemu = formatVsQemuTable(scenarios);
  if (vsQemu) log(`Next to QEMU (guest GB/s; CPU s: user + system of each process while it migrated):\n${vsQemu}\n`);
  const compression = compressionRows(scenarios);
  if (compression.length > 0) log(`Multifd compression (CPU s/GiB: source + destination per GiB of guest RAM; ratio: guest RAM ÷ bytes on the wire):\n${formatRows(COMPRESSION_COLUMNS, compression)}\n`);
  const downtime = downtimeRows(scenarios);
  if (downtime.length > 0) log(`Downtime against its promise (expected-downtime: the source's estimate at the dirty sync it switched over on; error: (expected − downtime) ÷ downtime, median and worst):\n${formatRows(DOWNTIME_COLUMNS, downtime)}\n`);
  for (const line of downtimeSweepSummary(scenarios)) log(line);
  for (const overrun of downtimeOverruns(scenarios)) log(`downtime over its limit: ${overrun}`);
  const scaleRam = scaleRamRows(scenarios);
  if (scaleRam.length > 0) {
    log(`Scaling with guest size (÷ QEMU: livemig's GB/s ÷ QEMU's; RSS beyond RAM: peak RSS less guest RAM, '!' from 10 %; ` +
      `dirty sync: one RamSaver.sync() timed in the bench process on a block of that size, nothing / ab's range written since the last, ms and ms per GiB):\n` +
      `${formatRows(SCALE_RAM_COLUMNS, scaleRam)}\n${throughputFlatness(scenarios) ?? ''}\n`);
  }
  const scaleVcpu = scaleVcpuRows(scenarios);
  if (scaleVcpu.length > 0) log(`Scaling with vCPUs (a guest running ab, each vCPU its slice of the range):\n${formatRows(SCALE_VCPU_COLUMNS, scaleVcpu)}\n`);
  const startToDone = startToDoneRows(scenarios);
  if (startToDone.length > 0) log(`Start to done (ms from the destination's start; ÷ QEMU: QEMU's done ÷ livemig's):\n${formatRows(START_TO_DONE_COLUMNS, startToDone)}\n`);
  const postcopy = formatPostcopyTable(scenarios);
  if (postcopy) log(`Postcopy:\n${postcopy}\n`);
  const snapshot = formatSnapshotTable(scenarios);
  if (snapshot) log(`Background snapshot:\n${snapshot}\n`);
  const colo = formatColoTable(scenarios);
  if (colo) log(`COLO (livemig only: QEMU's COLO is not measured):\n${colo}\n`);
  const convergence = convergenceRows(scenarios);
  if (convergence.length > 0) log(`Convergence (a guest dirtying 99 MiB over and over, both engines under the same limits):\n${formatRows(CONVERGENCE_COLUMNS, convergence)}\n`);
  const predictor = formatPredictorTable(scenarios);
  if (predictor) log(`Convergence predictor (query-convergence before migrate, beside what the migration did):\n${predictor}\n`);
  const threadProfile = threadProfileRows(scenarios, results.machine.cpus);
  if (threadProfile.length > 0) {
    log(`Where the CPU goes (medians; CPU s per GiB of guest RAM by thread role, user and system; % of cores × wall: CPU ÷ (cores × total time)):\n${formatRows(THREAD_PROFILE_COLUMNS, threadProfile)}\n`);
  }
  const floor = floorStatements(scenarios, results.machine.cpus);
  if (floor.length > 0) log(`${floor.join('\n')}\n`);
  const notes = formatNotes(scenarios);
  if (notes) log(`${notes}\n`);
  const driftLines = formatDrift(results.drift);
  if (driftLines) log(`${driftLines}\n`);
  const out = resolve(REPO_ROOT, options.out);
  mkdirSync(out, { recursive: true });
  writeFileSync(join(out, 'results.json'), `${JSON.stringify(results, jsonReplacer, 2)}\n`);
  writeFileSync(join(out, 'report.html'), htmlReport(results));
  log(`wrote ${join(out, 'results.json')} and ${join(out, 'report.html')}`);
  return scenarios.some((s) => s.status === 'failed') ? 1 : 0;
}

/** Runs the bench, cleaning up on SIGINT/SIGTERM too; resolves with the exit status (1: a scenario failed, 2: no scenario matches). */
export async function runBench(options: BenchOptions): Promise<number> {
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      log(`\n${signal}: cleaning up`);
      void teardownAll().finally(() => process.exit(130));
    });
  }
  try {
    return await bench(options);
  } catch (err) {
    console.error(`bench: ${(err as Error).message}`);
    return err instanceof BenchUsageError ? 2 : 1;
  } finally {
    await teardownAll();
  }
}
