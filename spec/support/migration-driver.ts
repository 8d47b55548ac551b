/**
 * What the precopy integration tests do to a pair of real instances, the way
 * an orchestrator would: find where a destination listens, start a migration
 * and follow it, and judge a guest's bytes (the ab check over pmemsave, the
 * RAM digest).
 */
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import type { QmpClient } from '../../protocols/qmp/client.js';
import { checkAbFile, type AbFileReport } from './ab-file-check.js';
import { waitForStatus, type TestInstance } from './instances.js';

/** QEMU's default 128 MiB/s would make every test slow: lift the limit. */
export const UNLIMITED = ['--param', 'max-bandwidth=100000000000'];
export const EVENTS = ['--cap', 'events'];

export interface MigrateInfo {
  status: string;
  'error-desc'?: string;
  'socket-address'?: { type: string; host?: string; port?: string; path?: string }[];
  'total-time'?: number;
  'setup-time'?: number;
  'expected-downtime'?: number;
  downtime?: number;
  ram?: Record<string, number>;
}

export function queryMigrate(qmp: QmpClient): Promise<MigrateInfo> {
  return qmp.execute<MigrateInfo>('query-migrate');
}

export async function waitForMigration(qmp: QmpClient, statuses: string[], timeoutMs = 30_000): Promise<MigrateInfo> {
  return (await waitForStatus(qmp, statuses, timeoutMs)) as unknown as MigrateInfo;
}

export { boundTcpUri } from '../../tools/instance-process.js';

/** A tcp: URI on loopback where nothing listens (a port bound and released). */
export async function unusedTcpUri(): Promise<string> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return `tcp:127.0.0.1:${port}`;
}

export async function runState(qmp: QmpClient): Promise<string> {
  return (await qmp.execute<{ status: string }>('query-status')).status;
}

/** Polls query-status until the run state is `state`. */
export async function waitForRunState(qmp: QmpClient, state: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const now = await runState(qmp);
    if (now === state) return;
    if (Date.now() > deadline) throw new Error(`run state stayed '${now}', expected '${state}'`);
    await sleep(20);
  }
}

/** sha256 of pc.ram. */
export async function ramDigest(qmp: QmpClient): Promise<string> {
  const digests = await qmp.execute<{ block: string; sha256: string }[]>('__org.livemig_query-digest');
  const ram = digests.find((d) => d.block === 'pc.ram');
  if (!ram) throw new Error(`no pc.ram digest in ${JSON.stringify(digests)}`);
  return ram.sha256;
}

/** All blocks' digests, by name. */
export async function allDigests(qmp: QmpClient): Promise<Record<string, string>> {
  const digests = await qmp.execute<{ block: string; sha256: string }[]>('__org.livemig_query-digest');
  return Object.fromEntries(digests.map((d) => [d.block, d.sha256]));
}

/**
 * The ab check over [start, end) of the instance's pc.ram. The guest must be
 * stopped, or the incrementer would move while the range is copied.
 */
export async function abCheck(instance: TestInstance, start: number, end: number): Promise<AbFileReport> {
  const file = join(instance.dir, `ab-${Date.now()}.bin`);
  await instance.qmp.execute('pmemsave', { val: start, size: end - start, filename: file });
  return checkAbFile(file);
}

/** Stops the guest, runs the ab check, and lets it run again if it was running. */
export async function abCheckStopped(instance: TestInstance, start: number, end: number): Promise<AbFileReport> {
  const wasRunning = (await runState(instance.qmp)) === 'running';
  if (wasRunning) await instance.qmp.execute('stop');
  try {
    return await abCheck(instance, start, end);
  } finally {
    if (wasRunning) await instance.qmp.execute('cont');
  }
}

/**
 * Whether the guest is running its workload: a copy of [start, start+size)
 * differs from the first one taken, within `withinMs`. Polls, so a slow host
 * only makes it take longer; a guest that stays still costs the whole bound.
 */
export async function memoryKeepsChanging(instance: TestInstance, start: number, size: number, withinMs = 5_000): Promise<boolean> {
  const file = join(instance.dir, 'window.bin');
  const copy = async () => {
    await instance.qmp.execute('pmemsave', { val: start, size, filename: file });
    return readFileSync(file);
  };
  const first = await copy();
  const deadline = Date.now() + withinMs;
  while (Date.now() < deadline) {
    await sleep(50);
    if (!first.equals(await copy())) return true;
  }
  return false;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Waits for an instance process to end; its exit code. */
export async function exitCode(instance: TestInstance, timeoutMs = 10_000): Promise<number | null> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`instance '${instance.name}' did not exit within ${timeoutMs} ms`)), timeoutMs);
  });
  try {
    return await Promise.race([instance.exited, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
