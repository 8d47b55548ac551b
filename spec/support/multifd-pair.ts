/**
 * Multifd migrations between real `livemig run` processes: the command-line
 * arguments that turn multifd on (the same on both sides, before incoming
 * starts, as QEMU requires), the end state of a successful migration judged
 * with the ab check, and what a process holds of the migration afterwards
 * (threads and sockets), to show that a failed one left nothing behind.
 */
import { expect } from 'chai';
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import type { CompressionMethod } from '../../protocols/multifd/constants.js';
import type { QmpClient } from '../../protocols/qmp/client.js';
import type { TestInstance } from './instances.js';
import { abCheck, memoryKeepsChanging, queryMigrate, runState, sleep, waitForMigration, type MigrateInfo } from './migration-driver.js';

export const MiB = 1 << 20;
export const PAGE = 4096;

export interface MultifdSetup {
  channels?: number;
  compression?: CompressionMethod;
  zlibLevel?: number;
  zstdLevel?: number;
}

/** `--cap multifd` and its parameters, for either side. */
export function multifdArgs(setup: MultifdSetup = {}): string[] {
  const args = ['--cap', 'multifd'];
  if (setup.channels !== undefined) args.push('--param', `multifd-channels=${setup.channels}`);
  if (setup.compression !== undefined) args.push('--param', `multifd-compression=${setup.compression}`);
  if (setup.zlibLevel !== undefined) args.push('--param', `multifd-zlib-level=${setup.zlibLevel}`);
  if (setup.zstdLevel !== undefined) args.push('--param', `multifd-zstd-level=${setup.zstdLevel}`);
  return args;
}

/**
 * The ab check of a stopped instance, twice over: the product's own
 * `__org.livemig_check-ab` over the whole ab range, and the independent file
 * check over [start, end) of a pmemsave.
 */
export async function expectAbIntact(instance: TestInstance, start: number, end: number, what: string): Promise<void> {
  const own = await instance.qmp.execute<{ ok: boolean; 'bad-pages': number; 'first-bad-pages': number[] }>('__org.livemig_check-ab');
  expect(own, `${what}: __org.livemig_check-ab`).to.deep.equal({ ok: true, 'bad-pages': 0, 'first-bad-pages': [] });
  const report = await abCheck(instance, start, end);
  expect(report.touched, `${what}: the ab range was never written (the guest did not run)`).to.equal(true);
  expect(report.badPages, `${what}: pages off the ab pattern (H=${report.high}, boundary ${report.boundary})`).to.deep.equal([]);
}

/**
 * Both sides completed; the destination runs on and, stopped, holds every
 * page of the ab range; the source is left postmigrate. Returns the source's
 * final query-migrate.
 */
export async function expectMultifdMigrated(
  source: TestInstance,
  destination: TestInstance,
  ab: { start: number; end: number },
  timeoutMs = 30_000,
): Promise<MigrateInfo> {
  const sourceInfo = await waitForMigration(source.qmp, ['completed', 'failed', 'cancelled'], timeoutMs);
  expect(sourceInfo.status, `source: ${sourceInfo['error-desc']}\n${logTail(destination)}`).to.equal('completed');
  const destinationInfo = await waitForMigration(destination.qmp, ['completed', 'failed'], 10_000);
  expect(destinationInfo.status, `destination: ${destinationInfo['error-desc']}`).to.equal('completed');
  expect(await runState(destination.qmp)).to.equal('running');
  expect(await memoryKeepsChanging(destination, ab.start, 64 * 1024), 'the destination guest does not run its workload').to.equal(true);
  await destination.qmp.execute('stop');
  await expectAbIntact(destination, ab.start, ab.end, 'destination');
  expect(await runState(source.qmp)).to.equal('postmigrate');
  return sourceInfo;
}

/** The end of an instance's log, to show with a failed expectation. */
export function logTail(instance: TestInstance, chars = 3000): string {
  return `--- ${instance.name} stderr (tail) ---\n${instance.stderr().slice(-chars)}`;
}

/** What a process holds that a migration adds: threads, open descriptors, sockets among them. */
export interface ProcessHoldings {
  threads: number;
  fds: number;
  sockets: number;
}

export function holdings(pid: number): ProcessHoldings {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const threads = Number(/^Threads:\s+(\d+)$/m.exec(status)?.[1]);
  let fds = 0;
  let sockets = 0;
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    let target: string;
    try {
      target = readlinkSync(`/proc/${pid}/fd/${fd}`);
    } catch {
      continue; // closed while we looked
    }
    fds++;
    if (target.startsWith('socket:')) sockets++;
  }
  return { threads, fds, sockets };
}

/**
 * What the process holds once it has settled (an instance just started may
 * still be ending start-up threads): two readings
 * 200 ms apart that agree, or the last one after the bound.
 */
export async function steadyHoldings(pid: number, withinMs = 5_000): Promise<ProcessHoldings> {
  const deadline = Date.now() + withinMs;
  let last = holdings(pid);
  for (;;) {
    await sleep(200);
    const now = holdings(pid);
    if ((now.threads === last.threads && now.fds === last.fds && now.sockets === last.sockets) || Date.now() > deadline) return now;
    last = now;
  }
}

/**
 * Waits until the process holds no more than at `baseline` (threads and
 * sockets, descriptors within 2) and returns what it holds then; after the
 * bound it returns what it holds anyway, for the caller to assert.
 */
export async function settledHoldings(pid: number, baseline: ProcessHoldings, withinMs = 5_000): Promise<ProcessHoldings> {
  const deadline = Date.now() + withinMs;
  for (;;) {
    const now = holdings(pid);
    const settled = now.threads <= baseline.threads && now.sockets <= baseline.sockets && now.fds <= baseline.fds + 2;
    if (settled || Date.now() > deadline) return now;
    await sleep(100);
  }
}

/** Asserts that a process holds no more threads or sockets than at `baseline`, nor more than 2 extra descriptors. */
export async function expectNothingLeftBehind(instance: TestInstance, baseline: ProcessHoldings): Promise<void> {
  const now = await settledHoldings(instance.process.pid!, baseline);
  expect(now.threads, `${instance.name}: threads (a multifd worker left behind?)`).to.be.at.most(baseline.threads);
  expect(now.sockets, `${instance.name}: sockets (a channel connection left open?)`).to.be.at.most(baseline.sockets);
  expect(now.fds, `${instance.name}: descriptors, against ${baseline.fds} before`).to.be.at.most(baseline.fds + 2);
}

/** How many tcp sockets the process has listening (its /proc/PID/fd sockets in LISTEN in /proc/net/tcp{,6}). */
export function listeningTcpSockets(pid: number): number {
  const inodes = new Set<string>();
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
      if (m) inodes.add(m[1]!);
    } catch {
      // closed while we looked
    }
  }
  let listening = 0;
  for (const table of ['tcp', 'tcp6']) {
    for (const line of readFileSync(`/proc/${pid}/net/${table}`, 'utf8').split('\n').slice(1)) {
      const fields = line.trim().split(/\s+/);
      // st 0A is LISTEN; field 9 is the inode.
      if (fields[3] === '0A' && inodes.has(fields[9]!)) listening++;
    }
  }
  return listening;
}

/**
 * Waits until a tcp destination has its main listener and one listener per
 * multifd channel up. Each channel's worker takes a while to start on a
 * loaded host; a test that must not time out on that waits for them first.
 */
export async function channelListenersUp(destination: TestInstance, channels: number, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const listening = listeningTcpSockets(destination.process.pid!);
    if (listening >= channels + 1) return;
    if (Date.now() > deadline) throw new Error(`only ${listening} tcp listeners up on ${destination.name}, expected ${channels + 1}`);
    await sleep(100);
  }
}

/** Waits until the source is `active` with at least `bytes` of multifd data sent. */
export async function activeWithMultifdBytes(qmp: QmpClient, bytes: number, timeoutMs = 15_000): Promise<MigrateInfo> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const info = await queryMigrate(qmp);
    if (info.status === 'active' && (info.ram?.['multifd-bytes'] ?? 0) >= bytes) return info;
    if (info.status !== 'setup' && info.status !== 'active') throw new Error(`migration is ${info.status}: ${info['error-desc']}`);
    if (Date.now() > deadline) throw new Error(`only ${info.ram?.['multifd-bytes']} multifd bytes sent (status ${info.status})`);
    await sleep(20);
  }
}

/** Stack lines Node prints when a process (or a worker) dies of an uncaught exception. */
export function uncaughtTrace(stderr: string): string[] {
  return stderr.split('\n').filter((line) => /^\s+at .+:\d+:\d+\)?$/.test(line));
}
