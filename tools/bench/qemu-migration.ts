/**
 * One real-QEMU run, the yardstick: two qemu-system-x86_64 processes (TCG,
 * -S, guest RAM in a shared memory-backend-file under /dev/shm), the
 * source's file filled from /dev/urandom or with livemig's compressible
 * pages, the destination's RAM pre-faulted (prealloc=on: "warm"), migrated
 * over loopback TCP with max-bandwidth raised (with multifd compression,
 * and over TLS with the bench's credentials, if the scenario says so; with
 * compression in a network namespace of their own, whose loopback counts
 * the bytes on the wire); afterwards the two memory files must be equal
 * (cmp). A start-to-done run starts the destination once the source is
 * up, and times it (start-to-done.ts). Postcopy runs, with a running guest,
 * are qemu-postcopy.ts's.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { QmpClient } from '../../protocols/qmp/client.js';
import type { MigrationPlan } from '../orchestrate.js';
import { compressionParameters } from './compression-plan.js';
import { guestMemoryFile, releaseGuestMemoryFile, SHM } from './guest-memory-file.js';
import { createLoopbackNamespace } from './loopback-namespace.js';
import { measureMigration } from './measure-migration.js';
import { StartToDoneClock, withStartToDone } from './start-to-done.js';
import { failedRun, migrationMetrics } from './migration-metrics.js';
import { QEMU_BINARY } from './qemu-setup.js';
import type { RunMetrics } from './results.js';
import type { QemuScenario } from './scenarios.js';
import { UNLIMITED_BANDWIDTH } from './unlimited-bandwidth.js';
import { awaitExit, onTeardown } from './teardown.js';
import { tlsObjectArgs, tlsParameters } from './tls-credentials.js';
import { waitUntil } from './wait-until.js';
import { startTogether } from './start-together.js';

/** Starting QEMU includes pre-allocating the destination's RAM. */
const START_TIMEOUT_MS = 120_000;

export interface QemuProcess {
  process: ChildProcess;
  qmp: QmpClient;
  /** The last 2000 characters QEMU wrote to stderr (its error_report lines). */
  stderr(): string;
}

export async function runQemu(scenario: QemuScenario, dir: string, run: number): Promise<RunMetrics> {
  const tag = `${scenario.name}-${run}`;
  const started: QemuProcess[] = [];
  const dstFile = join(SHM, `livemig-bench-${process.pid}-${tag}.mem`);
  const namespace = scenario.multifdCompression ? createLoopbackNamespace(tag) : undefined;
  const undo = onTeardown(async () => {
    await quitAll(started);
    await namespace?.remove();
    rmSync(dstFile, { force: true });
    // The guest-size series reaches 8 GiB: its source file must not sit in RAM beside the next pair.
    if (scenario.scale && scenario.memory === 'random') releaseGuestMemoryFile(scenario.ram, 'random');
  });
  try {
    const size = String(scenario.ram);
    const memory = (path: string, prealloc: boolean) => [
      '-machine', 'pc,memory-backend=mem0',
      '-object', `memory-backend-file,id=mem0,size=${size},mem-path=${path},share=on${prealloc ? ',prealloc=on' : ''}`,
    ];
    // Never-touched RAM is anonymous memory, as in a plain `-m` guest: shared
    // files would allocate a page on every read of a hole.
    const fill = scenario.memory === 'random' || scenario.memory === 'compressible' ? scenario.memory : undefined;
    const srcFile = fill ? await guestMemoryFile(scenario.ram, fill) : undefined;
    const srcMemory = srcFile ? memory(srcFile, false) : [];
    const dstMemory = srcFile ? memory(dstFile, true) : ['-mem-prealloc'];
    const [srcTls, dstTls] = await Promise.all([tlsObjectArgs(scenario.tls, 'source', '-object'), tlsObjectArgs(scenario.tls, 'destination', '-object')]);
    const startSource = () => startQemu([...srcMemory, ...srcTls], join(dir, `${tag}-src.qmp`), scenario.ram, true, namespace?.wrap);
    const startDestination = () => startQemu([...dstMemory, ...dstTls, '-incoming', 'defer'], join(dir, `${tag}-dst.qmp`), scenario.ram, true, namespace?.wrap);
    let clock: StartToDoneClock | undefined;
    if (scenario.startToDone) {
      // The source runs first; the clock starts with the destination, whose monitor answers once its RAM is pre-allocated.
      started.push(await startSource());
      clock = new StartToDoneClock();
      started.push(await startDestination());
      clock.monitorAnswered();
    } else {
      await startTogether([startSource(), startDestination()], started);
    }
    const [source, destination] = started as [QemuProcess, QemuProcess];

    const plan: MigrationPlan = {
      uri: 'tcp:127.0.0.1:0',
      caps: scenario.multifdChannels ? [{ capability: 'multifd', state: true }] : [],
      params: [{
        'max-bandwidth': UNLIMITED_BANDWIDTH,
        ...(scenario.multifdChannels ? { 'multifd-channels': scenario.multifdChannels } : {}),
        ...(scenario.multifdCompression ? compressionParameters(scenario.multifdCompression) : {}),
        ...tlsParameters(scenario.tls),
      }],
      ...(clock ? { beforeMigrate: clock.migrateSent } : {}),
    };
    const wireBefore = namespace?.bytes(source.process.pid!);
    const run = await measureMigration({ qmp: source.qmp, pid: source.process.pid! }, { qmp: destination.qmp, pid: destination.process.pid! }, plan);
    const loopbackBytes = wireBefore === undefined ? undefined : namespace!.bytes(source.process.pid!) - wireBefore;
    const verified = run.source.status === 'completed' && srcFile ? spawnSync('cmp', ['-s', srcFile, dstFile]).status === 0 : null;
    const metrics = { ...migrationMetrics(run.source, run.usage, verified, run.series), ...(loopbackBytes !== undefined ? { loopbackBytes } : {}) };
    return clock ? withStartToDone(metrics, clock, run.source) : metrics;
  } catch (err) {
    return failedRun((err as Error).message);
  } finally {
    await undo();
  }
}

/**
 * Starts QEMU (TCG, `ram` bytes) with its QMP monitor on `socket`; paused
 * (-S) unless told otherwise; through `wrap` if given (a command that execs
 * it, e.g. into a network namespace).
 */
export async function startQemu(args: string[], socket: string, ram: number, paused = true, wrap: string[] = []): Promise<QemuProcess> {
  const [file, ...rest] = [...wrap, QEMU_BINARY,
    '-nographic', '-nodefaults', ...(paused ? ['-S'] : []), '-accel', 'tcg', '-m', String(ram / (1 << 20)),
    ...args,
    '-qmp', `unix:${socket},server=on,wait=off`,
  ];
  const child = spawn(file!, rest, { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => (stderr = (stderr + chunk.toString()).slice(-2000)));
  try {
    let qmp: QmpClient | undefined;
    await waitUntil(START_TIMEOUT_MS, 'QEMU to open its monitor', async () => {
      if (child.exitCode !== null) throw new Error(`QEMU exited with ${child.exitCode}: ${stderr.trim()}`);
      if (!existsSync(socket)) return false;
      qmp = await QmpClient.connect(`unix:${socket}`, { timeoutMs: START_TIMEOUT_MS }).catch(() => undefined);
      return qmp !== undefined;
    });
    return { process: child, qmp: qmp!, stderr: () => stderr };
  } catch (err) {
    child.kill('SIGKILL');
    throw err;
  }
}

export async function quitAll(instances: QemuProcess[]): Promise<void> {
  await Promise.all(instances.map(async (q) => {
    await q.qmp.execute('quit', undefined, { timeoutMs: 5000 }).catch(() => {});
    await q.qmp.close().catch(() => {});
    await awaitExit(q.process, 10_000);
  }));
}
