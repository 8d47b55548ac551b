/**
 * Real `livemig run` processes for integration tests: each gets its own
 * temporary directory and QMP unix socket, and a connected QmpClient.
 * Every instance started is killed by `stopAllInstances()`, which suites
 * call in `afterEach`, so no test leaves a process behind.
 */
import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { QmpClient } from '../../protocols/qmp/client.js';
import { LIVEMIG, REPO_ROOT, spawnInstance } from '../../tools/instance-process.js';

export { LIVEMIG, REPO_ROOT };

export interface TestInstance {
  readonly name: string;
  readonly qmp: QmpClient;
  readonly process: ChildProcess;
  readonly dir: string;
  readonly socket: string;
  /** Everything the process wrote to stderr so far (its JSON log). */
  stderr(): string;
  /** Resolves with the exit code once the process has ended. */
  readonly exited: Promise<number | null>;
  /** Another QMP connection to the same instance. */
  connect(): Promise<QmpClient>;
}

const live = new Set<TestInstance>();

/** Runs `livemig run --qmp unix:… <args>` and connects to its monitor. */
export async function startInstance(
  args: string[],
  options: { name?: string; timeoutMs?: number; nodeArgs?: string[]; wrap?: string[] } = {},
): Promise<TestInstance> {
  const name = options.name ?? 'vm';
  const dir = mkdtempSync(join(tmpdir(), `livemig-${name}-`));
  const socket = join(dir, `${name}.qmp`);
  let started;
  try {
    started = await spawnInstance(args, {
      socket, name, nodeArgs: options.nodeArgs, ...(options.timeoutMs ? { timeoutMs: options.timeoutMs } : {}), ...(options.wrap ? { wrap: options.wrap } : {}),
    });
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  const instance: TestInstance = {
    name,
    qmp: started.qmp,
    process: started.process,
    dir,
    socket,
    stderr: started.stderr,
    exited: started.exited,
    connect: () => QmpClient.connect(`unix:${socket}`, { timeoutMs: 10_000 }),
  };
  live.add(instance);
  return instance;
}

/** Kills every instance still running and removes their directories. */
export async function stopAllInstances(): Promise<void> {
  const all = [...live];
  live.clear();
  await Promise.all(
    all.map(async (i) => {
      await i.qmp.close().catch(() => {});
      if (i.process.exitCode === null && i.process.signalCode === null) {
        i.process.kill('SIGKILL');
        await once(i.process, 'exit').catch(() => {});
      }
      rmSync(i.dir, { recursive: true, force: true });
    }),
  );
}

/** Polls query-migrate until `done(status)` or the bound runs out; returns the last answer. */
export async function waitForStatus(
  qmp: QmpClient,
  statuses: string[],
  timeoutMs = 60_000,
): Promise<Record<string, unknown>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const info = await qmp.execute<Record<string, unknown>>('query-migrate');
    if (statuses.includes(info.status as string)) return info;
    if (Date.now() > deadline) throw new Error(`status stayed '${String(info.status)}', expected one of ${statuses.join(', ')}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Records every event an instance's monitor sends, for comparing sequences. */
export function recordEvents(qmp: QmpClient, names: string[] = ['MIGRATION']): string[] {
  const seen: string[] = [];
  qmp.events.on('event', (e: { event: string; data?: { status?: string; pass?: number } }) => {
    if (names.includes(e.event)) seen.push(e.event === 'MIGRATION' ? e.data!.status! : e.event);
  });
  return seen;
}
