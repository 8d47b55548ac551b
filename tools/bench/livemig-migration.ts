/**
 * One livemig scenario run: a source and a destination instance (`livemig
 * run`, real processes, with the bench's TLS credentials if the scenario
 * says so; with multifd compression in a network namespace of their own,
 * whose loopback counts the bytes on the wire as for QEMU), the source's
 * RAM prepared as the scenario says, the
 * destination's RAM pre-faulted, then a migration driven as an orchestrator
 * drives QEMU, sampled every ~50 ms (a start-to-done run starts the
 * destination once the source is ready, and times it: start-to-done.ts),
 * and the destination checked: its memory
 * against the source's (digests; the destination is started with -S so it
 * holds still), or after postcopy, where the guest runs on at the
 * destination, QEMU's `ab` check once it is stopped.
 */
import { join } from 'node:path';
import { QmpError } from '../../protocols/qmp/errors.js';
import { spawnInstance, type InstanceProcess } from '../instance-process.js';
import type { MigrationPlan } from '../orchestrate.js';
import { compressionParameters } from './compression-plan.js';
import { createLoopbackNamespace } from './loopback-namespace.js';
import { livemigEndpoint, measureMigration } from './measure-migration.js';
import { StartToDoneClock, withStartToDone } from './start-to-done.js';
import { failedRunWithLogs, migrationMetrics } from './migration-metrics.js';
import { postcopyFigures, postcopyMigrationPlan } from './postcopy-plan.js';
import type { RunMetrics } from './results.js';
import { POSTCOPY_DIRTY_RANGE, type LivemigScenario } from './scenarios.js';
import { UNLIMITED_BANDWIDTH } from './unlimited-bandwidth.js';
import { NotAvailable } from './not-available.js';
import { awaitExit, onTeardown } from './teardown.js';
import { tlsObjectArgs, tlsParameters } from './tls-credentials.js';
import { waitUntil } from './wait-until.js';
import { startTogether } from './start-together.js';

/** Pre-faulting a few GiB on a busy machine. */
const PREFAULT_TIMEOUT_MS = 120_000;
/**
 * Lets a running workload settle into its pace, and the channel threads
 * that configuring multifd started come up (~0.15 s each here), before the
 * migration starts: a destination that pre-faults in 0.5 s would otherwise
 * be migrated into before its threads are, which start-to-done measures.
 */
const WARMUP_MS = 500;

export async function runLivemig(scenario: LivemigScenario, dir: string, run: number): Promise<RunMetrics> {
  const tag = `${scenario.name}-${run}`;
  const base = ['--ram', String(scenario.ram), '--smp', String(scenario.smp ?? 1)];
  const started: InstanceProcess[] = [];
  const compressed = scenario.multifd !== undefined && scenario.multifd.compression !== 'none';
  const namespace = compressed ? createLoopbackNamespace(tag) : undefined;
  const undo = onTeardown(async () => {
    await quitAll(started);
    await namespace?.remove();
  });
  try {
    const [srcTls, dstTls] = await Promise.all([tlsObjectArgs(scenario.tls, 'source', '--object'), tlsObjectArgs(scenario.tls, 'destination', '--object')]);
    const wrap = namespace ? { wrap: namespace.wrap } : {};
    const startSource = () => spawnInstance([...base, ...sourceArgs(scenario), ...srcTls], { socket: join(dir, `${tag}-src.qmp`), name: 'source', timeoutMs: 60_000, ...wrap });
    // After postcopy the guest runs on at the destination, as it does in QEMU.
    const startDestination = () => spawnInstance([...base, '--incoming', 'defer', ...(scenario.postcopy ? [] : ['--paused']), ...dstTls], { socket: join(dir, `${tag}-dst.qmp`), name: 'destination', timeoutMs: 60_000, ...wrap });
    const uri = scenario.transport === 'tcp' ? 'tcp:127.0.0.1:0' : `unix:${join(dir, `${tag}-mig.sock`)}`;
    const plan: MigrationPlan = scenario.postcopy ? postcopyMigrationPlan(uri, scenario.postcopy) : {
      uri,
      caps: scenario.multifd ? [{ capability: 'multifd', state: true }] : [],
      params: [parameters(scenario)],
    };
    let clock: StartToDoneClock | undefined;
    if (scenario.startToDone) {
      // The running source is prepared; the clock starts with the destination, which the migration's own commands configure.
      const source = await startSource();
      started.push(source);
      await probeSupport(source, plan);
      clock = new StartToDoneClock();
      started.push(await startDestination());
      clock.monitorAnswered();
      plan.beforeMigrate = clock.migrateSent;
    } else {
      await startTogether([startSource(), startDestination()], started);
    }
    const [source, destination] = started as [InstanceProcess, InstanceProcess];
    if (!clock) {
      // Both sides are configured before the measured migration, as an orchestrator prepares one: multifd's channel threads start then.
      await Promise.all([probeSupport(destination, plan), probeSupport(source, plan)]);
      await new Promise((r) => setTimeout(r, WARMUP_MS));
    }
    if (scenario.startToDone?.plan !== 'at-once') {
      await waitUntil(PREFAULT_TIMEOUT_MS, 'the destination to pre-fault its RAM', async () =>
        (await destination.qmp.execute<{ prefaulted: boolean }>('__org.livemig_query-guest')).prefaulted);
    }

    const wireBefore = namespace?.bytes(source.process.pid!);
    const run = await measureMigration(
      livemigEndpoint(source),
      livemigEndpoint(destination),
      plan,
      scenario.postcopy !== undefined,
      scenario.downtimeSweep?.boundMs,
    );
    const loopbackBytes = wireBefore === undefined ? undefined : namespace!.bytes(source.process.pid!) - wireBefore;
    const completed = run.source.status === 'completed' && run.destination.status === 'completed';
    const check = !completed ? null : scenario.postcopy ? await abHolds(destination) : { ok: await sameMemory(source, destination) };
    const measured = { ...migrationMetrics(run.source, run.usage, check && check.ok, run.series), ...(loopbackBytes !== undefined ? { loopbackBytes } : {}) };
    const metrics = clock ? withStartToDone(measured, clock, run.source) : measured;
    if (metrics.ok && run.destination.status !== 'completed') {
      return { ...metrics, ok: false, error: `destination ${String(run.destination.status)}: ${String(run.destination['error-desc'] ?? '')}` };
    }
    if (check?.error) return { ...metrics, error: check.error };
    if (scenario.postcopy && metrics.ok) {
      const figures = postcopyFigures(run.source, run.destination, run.switchover ?? {});
      if ('error' in figures) return { ...metrics, ok: false, error: figures.error };
      return { ...metrics, postcopy: figures };
    }
    return metrics;
  } catch (err) {
    if (err instanceof NotAvailable) throw err;
    return failedRunWithLogs(err, started);
  } finally {
    await undo();
  }
}

function sourceArgs(s: LivemigScenario): string[] {
  const w = s.workload;
  switch (w.kind) {
    case 'random-filled':
      // Every page holds data, as in QEMU's urandom-filled memory file: zero-page detection must not flatter livemig.
      return ['--fill', 'random', '--paused'];
    case 'compressible-filled':
      // The pages of QEMU's compressible memory file (guest-memory-file.ts), none of them zero.
      return ['--fill', 'compressible', '--paused'];
    case 'zero':
      return ['--paused'];
    case 'ab': {
      // Postcopy: the range QEMU's dirtying guest increments (also ab's default).
      const range = w.range ?? (s.postcopy ? POSTCOPY_DIRTY_RANGE : undefined);
      return ['--workload', 'ab', ...(range ? ['--ab-start', String(range.start), '--ab-end', String(range.end)] : [])];
    }
    case 'dirty':
      return ['--workload', 'random', '--dirty-rate', String(w.rate), '--working-set', String(w.workingSet)];
  }
}

function parameters(s: LivemigScenario): Record<string, unknown> {
  return {
    'max-bandwidth': s.maxBandwidth ?? UNLIMITED_BANDWIDTH,
    ...(s.downtimeLimit !== undefined ? { 'downtime-limit': s.downtimeLimit } : {}),
    ...(s.multifd ? { 'multifd-channels': s.multifd.channels, ...compressionParameters(s.multifd.compression) } : {}),
    ...tlsParameters(s.tls),
  };
}

/**
 * Sets the plan's capabilities and parameters on one instance. Those it
 * refuses (multifd before it is built, a compression it lacks) make the
 * scenario "not available" rather than failed.
 */
export async function probeSupport(instance: InstanceProcess, plan: MigrationPlan): Promise<void> {
  try {
    if (plan.caps.length > 0) await instance.qmp.execute('migrate-set-capabilities', { capabilities: plan.caps });
    for (const p of plan.params) await instance.qmp.execute('migrate-set-parameters', p);
  } catch (err) {
    if (err instanceof QmpError) throw new NotAvailable(err.message);
    throw err;
  }
}

/** QEMU's `ab` check on the destination, stopped first: the guest ran on there (after postcopy, or a snapshot of a running guest). */
export async function abHolds(destination: InstanceProcess): Promise<{ ok: boolean; error?: string }> {
  await destination.qmp.execute('stop');
  const ab = await destination.qmp.execute<{ ok: boolean; 'bad-pages': number; 'first-bad-pages': number[] }>('__org.livemig_check-ab');
  return ab.ok ? { ok: true } : { ok: false, error: `the destination's ab check failed: ${ab['bad-pages']} bad pages (first: ${ab['first-bad-pages'].join(', ')})` };
}

export async function sameMemory(source: InstanceProcess, destination: InstanceProcess): Promise<boolean> {
  type Digest = { block: string; sha256: string };
  const opts = { timeoutMs: 120_000 };
  const [a, b] = await Promise.all([
    source.qmp.execute<Digest[]>('__org.livemig_query-digest', undefined, opts),
    destination.qmp.execute<Digest[]>('__org.livemig_query-digest', undefined, opts),
  ]);
  return JSON.stringify(a) === JSON.stringify(b);
}

export async function quitAll(instances: InstanceProcess[]): Promise<void> {
  await Promise.all(instances.map(async (i) => {
    await i.qmp.execute('quit', undefined, { timeoutMs: 5000 }).catch(() => {});
    await i.qmp.close().catch(() => {});
    await awaitExit(i.process, 10_000);
  }));
}
