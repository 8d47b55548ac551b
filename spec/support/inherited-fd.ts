/**
 * Instances started with a descriptor inherited from the test (fd 3), for the
 * `fd:` transport. The descriptor is the child's end of a unix socketpair
 * (what Node gives a 'pipe' stdio slot); the test holds the other end and
 * relays bytes between two instances, so each sees a real socket on fd 3.
 * These have their own registry: suites call `stopFdInstances()` in
 * `afterEach`.
 */
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import type { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { QmpClient } from '../../protocols/qmp/client.js';
import { spawnInstance } from '../../tools/instance-process.js';
import type { TestInstance } from './instances.js';

/** The descriptor number the instance sees. */
export const INHERITED_FD = 3;

export interface FdInstance extends TestInstance {
  /** The test's end of the socketpair whose other end is the instance's fd 3. */
  readonly peer: Socket;
}

const live = new Set<FdInstance>();

/** Runs `livemig run` with a socketpair end as fd 3 and connects to its monitor. */
export async function startFdInstance(args: string[], name: string): Promise<FdInstance> {
  const dir = mkdtempSync(join(tmpdir(), `livemig-${name}-`));
  const socket = join(dir, `${name}.qmp`);
  const started = await spawnInstance(args, { socket, name, extraStdio: ['pipe'] });
  const peer = started.process.stdio[INHERITED_FD] as Socket;
  // Nothing is read from the peer until the test relays it.
  peer.pause();
  const instance: FdInstance = {
    name,
    qmp: started.qmp,
    process: started.process,
    dir,
    socket,
    peer,
    stderr: started.stderr,
    exited: started.exited,
    connect: () => QmpClient.connect(`unix:${socket}`, { timeoutMs: 10_000 }),
  };
  live.add(instance);
  return instance;
}

/** Joins two instances' fd 3 through the test: what one writes, the other reads, both ways. */
export function relay(a: FdInstance, b: FdInstance): void {
  // The source ends its direction before the destination answers on the
  // other: keep each direction open until its own writer ends it.
  a.peer.allowHalfOpen = true;
  b.peer.allowHalfOpen = true;
  a.peer.pipe(b.peer);
  b.peer.pipe(a.peer);
  a.peer.on('error', () => b.peer.destroy());
  b.peer.on('error', () => a.peer.destroy());
}

export async function stopFdInstances(): Promise<void> {
  const all = [...live];
  live.clear();
  await Promise.all(
    all.map(async (i) => {
      i.peer.destroy();
      await i.qmp.close().catch(() => {});
      if (i.process.exitCode === null && i.process.signalCode === null) {
        i.process.kill('SIGKILL');
        await once(i.process, 'exit').catch(() => {});
      }
      rmSync(i.dir, { recursive: true, force: true });
    }),
  );
}
