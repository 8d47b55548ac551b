/**
 * A slow multifd channel on the destination, made from outside the process:
 * one channel worker thread put under SCHED_IDLE (chrt; any user may do
 * that to their own threads) runs only when nothing else on the host wants
 * a CPU, so on a busy host its channel lags the others by rounds unless the
 * round barrier holds them back — which is what makes a stale page land,
 * were the barrier missing.
 */
import { execFileSync } from 'node:child_process';
import { readdirSync } from 'node:fs';

/** The ids of a process's threads. */
export function threadIds(pid: number): Set<number> {
  return new Set(readdirSync(`/proc/${pid}/task`).map(Number));
}

/**
 * The channel worker threads `migrate-incoming` started, given the threads
 * from before it: the destination creates its `count` channel workers in one
 * go, so they hold the lowest new thread ids; the threads each worker then
 * starts for itself (its module loader hooks) come after.
 */
export function channelWorkerThreads(pid: number, before: ReadonlySet<number>, count: number): number[] {
  return [...threadIds(pid)].filter((tid) => !before.has(tid)).sort((a, b) => a - b).slice(0, count);
}

/** Puts one thread under SCHED_IDLE: it runs only when a CPU would otherwise be idle. */
export function starveThread(tid: number): void {
  execFileSync('chrt', ['--idle', '-p', '0', String(tid)]);
}
