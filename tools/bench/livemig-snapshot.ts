/**
 * One background-snapshot run (a LivemigScenario with a snapshot sink): a
 * livemig instance whose two vCPUs run `ab` over most of its RAM, its
 * throughput measured over ~1 s, then `migrate` with background-snapshot to
 * the sink, the guest's throughput followed until the snapshot completed.
 * The snapshot is then checked as the guest it saved: a new instance loads
 * it (`--incoming file:`), runs, since the guest ran at that instant, and
 * once stopped passes QEMU's `ab` check.
 */
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { TARGET_PAGE_SIZE } from '../../actors/guest/constants.js';
import { spawnInstance, type InstanceProcess } from '../instance-process.js';
import { firstLap, measureThroughput } from './guest-throughput.js';
import { abHolds, probeSupport, quitAll } from './livemig-migration.js';
import { withDeadline } from './migration-deadline.js';
import { failedRunWithLogs, migrationMetrics } from './migration-metrics.js';
import { NotAvailable } from './not-available.js';
import { cpuSeconds, cpuSecondsSince, peakRssBytes } from './process-usage.js';
import type { ProcessUsage, RunMetrics, Sample, SnapshotMetrics } from './results.js';
import { SNAPSHOT_AB_START, SNAPSHOT_SMP, type LivemigScenario, type SnapshotSink } from './scenarios.js';
import { faultedPages, followSnapshot, sinkUri } from './snapshot-plan.js';
import { onTeardown } from './teardown.js';
import { waitUntil } from './wait-until.js';

/** tmpfs, as the QEMU runs' memory files: the file sink then measures livemig, not a disk. */
const SHM = '/dev/shm';
const START_TIMEOUT_MS = 60_000;
/** The window of the guest's throughput before the snapshot. */
const BEFORE_WINDOW_MS = 1000;
/** The source logs its figures just after query-migrate says completed. */
const LOG_LINE_TIMEOUT_MS = 5000;
const LOAD_TIMEOUT_MS = 120_000;
const NO_USAGE: ProcessUsage = { cpuSeconds: 0, peakRssBytes: 0 };

export async function runLivemigSnapshot(scenario: LivemigScenario, sink: SnapshotSink, dir: string, run: number): Promise<RunMetrics> {
  const tag = `${scenario.name}-${run}`;
  const file = join(SHM, `livemig-bench-${process.pid}-${tag}.snapshot`);
  const guest = ['--ram', String(scenario.ram), '--smp', String(SNAPSHOT_SMP)];
  const started: InstanceProcess[] = [];
  const undo = onTeardown(async () => {
    await quitAll(started);
    rmSync(file, { force: true });
  });
  try {
    const source = await spawnInstance(
      [...guest, '--workload', 'ab', '--ab-start', String(SNAPSHOT_AB_START), '--ab-end', String(scenario.ram)],
      { socket: join(dir, `${tag}-src.qmp`), name: 'source', timeoutMs: START_TIMEOUT_MS },
    );
    started.push(source);
    const uri = sinkUri(sink, file);
    // events: the MIGRATION event marks the snapshot's end for the guest's figure.
    await probeSupport(source, { uri, caps: [{ capability: 'events', state: true }, { capability: 'background-snapshot', state: true }], params: [] });
    await firstLap(source.qmp, (scenario.ram - SNAPSHOT_AB_START) / TARGET_PAGE_SIZE);
    const taken = await takeSnapshot(source, uri);
    if (!taken.figures) return migrationMetrics(taken.final, { source: taken.usage, destination: NO_USAGE }, null, taken.series);
    // The source is done: its cores and memory go to the instance that loads the snapshot.
    await quitAll(started.splice(0));

    const loader = await spawnInstance([...guest, '--incoming', `file:${file}`], { socket: join(dir, `${tag}-load.qmp`), name: 'loader', timeoutMs: START_TIMEOUT_MS });
    started.push(loader);
    const loaded = await loadAndCheck(loader);
    const metrics = migrationMetrics(taken.final, { source: taken.usage, destination: loaded.usage }, loaded.check.ok, taken.series);
    return { ...metrics, ...(loaded.check.error ? { error: loaded.check.error } : {}), snapshot: taken.figures };
  } catch (err) {
    if (err instanceof NotAvailable) throw err;
    return failedRunWithLogs(err, started);
  } finally {
    await undo();
  }
}

/** A snapshot as the source saw it; `figures` once it completed. */
interface TakenSnapshot {
  final: Record<string, unknown>;
  series: Sample[];
  usage: ProcessUsage;
  figures?: SnapshotMetrics;
}

/** The guest's throughput over ~1 s, then the snapshot followed to its end, with the source's CPU over it. */
async function takeSnapshot(source: InstanceProcess, uri: string): Promise<TakenSnapshot> {
  const before = await measureThroughput(source.qmp, BEFORE_WINDOW_MS);
  const pid = source.process.pid!;
  const cpuBefore = cpuSeconds(pid);
  const { final, series, guestPagesPerSecond } = await withDeadline(followSnapshot(source.qmp, uri), () => source.qmp.execute('migrate_cancel'));
  const usage = { cpuSeconds: cpuSecondsSince(pid, cpuBefore), peakRssBytes: peakRssBytes(pid) };
  if (final.status !== 'completed') return { final, series, usage };
  await waitUntil(LOG_LINE_TIMEOUT_MS, 'the source\'s "background snapshot written" log line', () => faultedPages(source.stderr()) !== undefined);
  const figures = {
    faultedPages: faultedPages(source.stderr())!,
    guestPagesPerSecondBefore: before,
    ...(guestPagesPerSecond !== undefined ? { guestPagesPerSecondDuring: guestPagesPerSecond } : {}),
  };
  return { final, series, usage, figures };
}

/**
 * Waits for the loader to load the snapshot, then checks it: the loaded
 * guest is running (it ran at the snapshot's instant) and passes the `ab`
 * check once stopped. The loader's usage is taken at the end of the load,
 * startup included: its guest runs from then on.
 */
async function loadAndCheck(loader: InstanceProcess): Promise<{ usage: ProcessUsage; check: { ok: boolean; error?: string } }> {
  let info: Record<string, unknown> = {};
  await waitUntil(LOAD_TIMEOUT_MS, 'the snapshot to load', async () => {
    info = await loader.qmp.execute<Record<string, unknown>>('query-migrate');
    return info.status === 'completed' || info.status === 'failed';
  });
  const pid = loader.process.pid!;
  const usage = { cpuSeconds: cpuSeconds(pid), peakRssBytes: peakRssBytes(pid) };
  if (info.status !== 'completed') return { usage, check: { ok: false, error: `the snapshot did not load: ${String(info['error-desc'] ?? info.status)}` } };
  const { status } = await loader.qmp.execute<{ status: string }>('query-status');
  if (status !== 'running') return { usage, check: { ok: false, error: `the loaded guest is ${status}, where it ran at the snapshot's instant` } };
  return { usage, check: await abHolds(loader) };
}
