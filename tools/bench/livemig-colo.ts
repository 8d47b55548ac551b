/**
 * One COLO run (a LivemigScenario with a ColoPlan): a net-out peer, a
 * primary running `ab` and a secondary, both sending their output to that
 * peer; the primary's guest speed over ~1 s, then `migrate` into COLO. One
 * pair serves every x-checkpoint-delay of the plan in turn: each new delay
 * takes a checkpoint at once and its window starts at that checkpoint's
 * end, so a window owes nothing to the delay before it, and the start and
 * the first migration are paid once. Then x-colo-lost-heartbeat on the
 * primary ends COLO (completed), and the peer must have seen the pair's
 * output whole and in order.
 */
import { join } from 'node:path';
import { TARGET_PAGE_SIZE } from '../../actors/guest/constants.js';
import type { QmpClient } from '../../protocols/qmp/client.js';
import { EXTENSION_PREFIX } from '../../protocols/qmp/livemig-extensions.js';
import { boundTcpUri, spawnInstance, type InstanceProcess } from '../instance-process.js';
import { NetSink } from '../net-sink.js';
import { measureDelay, queryColo } from './colo-plan.js';
import { firstLap, measureThroughput } from './guest-throughput.js';
import { quitAll } from './livemig-migration.js';
import { failedRunWithLogs, migrationMetrics } from './migration-metrics.js';
import { sampleMigration } from './migration-sampler.js';
import { cpuSeconds, cpuSecondsSince, peakRssBytes } from './process-usage.js';
import type { ColoDelayMetrics, RunMetrics } from './results.js';
import { COLO_AB_RANGE, type ColoPlan, type LivemigScenario } from './scenarios.js';
import { UNLIMITED_BANDWIDTH } from './unlimited-bandwidth.js';
import { onTeardown } from './teardown.js';
import { waitUntil } from './wait-until.js';

const START_TIMEOUT_MS = 60_000;
/** The window of the primary guest's throughput before `migrate`. */
const BEFORE_WINDOW_MS = 1000;
/** The first migration, into COLO, or the failover out of it. */
const STATUS_TIMEOUT_MS = 60_000;

export async function runLivemigColo(scenario: LivemigScenario, plan: ColoPlan, dir: string, run: number): Promise<RunMetrics> {
  const tag = `${scenario.name}-${run}`;
  const net = `unix:${join(dir, `${tag}-net.sock`)}`;
  const guest = [
    '--ram', String(scenario.ram), '--smp', '1',
    '--workload', 'ab', '--ab-start', String(COLO_AB_RANGE.start), '--ab-end', String(COLO_AB_RANGE.end),
    '--cap', 'x-colo', '--net-out', net,
  ];
  const started: InstanceProcess[] = [];
  let sink: NetSink | undefined;
  const undo = onTeardown(async () => {
    await quitAll(started);
    await sink?.close();
  });
  try {
    sink = await NetSink.listen(net);
    // No --colo-digests: it lengthens every checkpoint. QEMU's default max-bandwidth would never bring this guest into COLO.
    const primary = await spawnInstance(
      [...guest, '--cap', 'events', '--param', `max-bandwidth=${UNLIMITED_BANDWIDTH}`, '--param', `x-checkpoint-delay=${plan.delaysMs[0]}`],
      { socket: join(dir, `${tag}-pri.qmp`), name: 'primary', timeoutMs: START_TIMEOUT_MS },
    );
    started.push(primary);
    const secondary = await spawnInstance([...guest, '--incoming', 'tcp:127.0.0.1:0'], { socket: join(dir, `${tag}-sec.qmp`), name: 'secondary', timeoutMs: START_TIMEOUT_MS });
    started.push(secondary);

    // The secondary pre-faults its RAM as it starts: not while the primary's speed is measured.
    await waitUntil(START_TIMEOUT_MS, 'the secondary to pre-fault its RAM', async () =>
      (await secondary.qmp.execute<{ prefaulted: boolean }>(`${EXTENSION_PREFIX}query-guest`)).prefaulted);
    await firstLap(primary.qmp, (COLO_AB_RANGE.end - COLO_AB_RANGE.start) / TARGET_PAGE_SIZE);
    const before = await measureThroughput(primary.qmp, BEFORE_WINDOW_MS);
    const pids = [primary.process.pid!, secondary.process.pid!];
    const cpuBefore = pids.map(cpuSeconds);
    const sampler = sampleMigration(primary.qmp);
    await primary.qmp.execute('migrate', { uri: await boundTcpUri(secondary.qmp) });
    const entered = await Promise.all([settledStatus(primary.qmp, 'primary', ['colo', 'failed']), settledStatus(secondary.qmp, 'secondary', ['colo', 'failed'])]);
    const series = await sampler.stop();
    if (entered.some((status) => status !== 'colo')) throw new Error(`COLO did not start: primary ${entered[0]}, secondary ${entered[1]}`);

    const delays: ColoDelayMetrics[] = [];
    for (const delayMs of plan.delaysMs) delays.push(await measureDelay(primary.qmp, delayMs, plan));
    const { compare } = await queryColo(primary.qmp);
    await primary.qmp.execute('x-colo-lost-heartbeat');
    await settledStatus(primary.qmp, 'primary', ['completed', 'failed']);
    const final = await primary.qmp.execute<Record<string, unknown>>('query-migrate');
    const usage = pids.map((pid, i) => ({ cpuSeconds: cpuSecondsSince(pid, cpuBefore[i]!), peakRssBytes: peakRssBytes(pid) }));
    // Everything either side sent is with the peer once both have ended.
    await quitAll(started.splice(0));

    const verified = sink.violations.length === 0;
    const metrics = migrationMetrics(final, { source: usage[0]!, destination: usage[1]! }, verified, series);
    const colo = { guestPagesPerSecondBefore: before, delays, compare: compare!, packetsReceived: sink.received.length };
    if (!verified) return { ...metrics, error: `the net-out peer saw ${sink.violations.length} violations, the first: ${sink.violations[0]}`, colo };
    return { ...metrics, colo };
  } catch (err) {
    return failedRunWithLogs(err, started);
  } finally {
    await undo();
  }
}

/** Waits for the side's migration status to be one of `statuses`, and returns it. */
async function settledStatus(qmp: QmpClient, side: string, statuses: string[]): Promise<string> {
  let status = '';
  await waitUntil(STATUS_TIMEOUT_MS, `${statuses.join(' or ')} on the ${side}`, async () => {
    status = (await qmp.execute<{ status: string }>('query-migrate')).status;
    return statuses.includes(status);
  });
  return status;
}
