/**
 * A destination's multifd channel worker threads, found and slowed from
 * outside the process. One channel worker put under SCHED_IDLE (chrt; any
 * user may do that to their own threads) runs only when no other thread on
 * the host wants a CPU; with busy loops keeping both CPUs wanted, its
 * channel lags the others by rounds unless the round barrier holds them
 * back — which is what makes a stale page land, were the barrier missing.
 * Or a test freezes one outright (thread-freeze.ts).
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { cpus } from 'node:os';
import { readdirSync } from 'node:fs';
import type { QmpClient } from '../../protocols/qmp/client.js';

/** The ids of a process's threads. */
function threadIds(pid: number): Set<number> {
  return new Set(readdirSync(`/proc/${pid}/task`).map(Number));
}

/**
 * Turns multifd on in a destination started without it and returns its
 * channel worker threads, in channel order: the destination starts (warms)
 * its `channels` channel workers in one go as multifd is turned on, so they
 * hold the lowest new thread ids.
 */
export async function enableMultifdChannels(qmp: QmpClient, pid: number, channels: number): Promise<number[]> {
  const before = threadIds(pid);
  await qmp.execute('migrate-set-parameters', { 'multifd-channels': channels });
  await qmp.execute('migrate-set-capabilities', { capabilities: [{ capability: 'multifd', state: true }] });
  const deadline = Date.now() + 5000;
  for (;;) {
    const started = [...threadIds(pid)].filter((tid) => !before.has(tid)).sort((a, b) => a - b);
    if (started.length >= channels) return started.slice(0, channels);
    if (Date.now() > deadline) throw new Error(`turning multifd on started ${started.length} threads, not ${channels}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Puts one thread under SCHED_IDLE: it runs only when a CPU would otherwise be idle. */
export function starveThread(tid: number): void {
  execFileSync('chrt', ['--idle', '-p', '0', String(tid)]);
}

/** One busy loop per CPU, so no CPU is ever idle; `stop` ends them. */
export function busyLoops(): { stop(): Promise<void> } {
  const loops: ChildProcess[] = cpus().map(() => spawn(process.execPath, ['-e', 'for (;;) {}'], { stdio: 'ignore' }));
  return {
    async stop() {
      await Promise.all(loops.map(async (loop) => {
        if (loop.exitCode !== null || loop.signalCode !== null) return;
        const exited = once(loop, 'exit');
        loop.kill('SIGKILL');
        await exited;
      }));
    },
  };
}
