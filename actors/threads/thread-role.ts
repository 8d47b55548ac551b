/**
 * The log lines that say what each worker thread is for, with its OS
 * thread id: Node names every thread "node", so a profiler (the bench's
 * thread-profile.ts) tells a process's threads apart only by these lines.
 * Workers have no logger: they report their ids, and the migration logs
 * them.
 */

/** The log line's `msg`. */
export const THREAD_ROLE_MSG = 'thread role';

/** A channel thread carries multifd channels; a vCPU thread runs the guest. */
export type ThreadRole = 'channel' | 'vcpu';

/** One thread of a role: the channel or vCPU index, and the thread's OS id. */
export interface RoleThread {
  index: number;
  tid: number;
}

export function logThreadRoles(log: (message: string, fields: Record<string, unknown>) => void, role: ThreadRole, threads: readonly RoleThread[]): void {
  for (const { index, tid } of threads) log(THREAD_ROLE_MSG, { role, index, tid });
}
