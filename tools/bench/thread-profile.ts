/**
 * Where a process's CPU goes while it migrates, by thread role, user and
 * kernel time apart (/proc/PID/task/TID/stat). Node names every thread
 * "node", so roles come from the thread ids a process reports: a livemig
 * instance in its log (actors/threads/thread-role.ts), a loopback peer in
 * its reports. The main thread is the one whose id is the pid.
 *
 * Threads are read every POLL_MS, not only at the end: a destination ends
 * its multifd channel threads as its migration completes, before the bench
 * reads it. An ended thread keeps its last reading; what it spent after
 * that goes to 'other', which is the process's total less every named role.
 */
import { THREAD_ROLE_MSG } from '../../actors/threads/thread-role.js';
import { processTimes, threadTimes, type CpuTimes } from './process-usage.js';
import type { RoleCpu } from './results.js';

/** Reading ~20 stat files of each process 20 times a second costs the bench well under 1 % of a core. */
const POLL_MS = 50;

const NONE: CpuTimes = { user: 0, system: 0 };

export class ThreadProfile {
  private readonly processBefore: CpuTimes;
  private readonly before: Map<number, CpuTimes>;
  /** Each thread's latest reading, ended threads included. */
  private readonly latest = new Map<number, CpuTimes>();
  private readonly timer: NodeJS.Timeout;

  /** Starts profiling `pid` now. */
  constructor(readonly pid: number) {
    this.processBefore = processTimes(pid);
    this.before = threadTimes(pid);
    this.timer = setInterval(() => this.poll(), POLL_MS).unref();
  }

  /**
   * The CPU each role spent since the start, given `roles` (thread id →
   * role; the main thread needs none), largest first; undefined if the
   * process is gone.
   */
  finish(roles: ReadonlyMap<number, string>): RoleCpu[] | undefined {
    clearInterval(this.timer);
    let total: CpuTimes;
    try {
      total = minus(processTimes(this.pid), this.processBefore);
      this.read();
    } catch {
      return undefined;
    }
    const byRole = new Map<string, RoleCpu>();
    for (const [tid, now] of this.latest) {
      const role = tid === this.pid ? 'main' : roles.get(tid) ?? 'other';
      const spent = minus(now, this.before.get(tid) ?? NONE);
      const sum = byRole.get(role) ?? { role, threads: 0, user: 0, system: 0 };
      byRole.set(role, { role, threads: sum.threads + 1, user: sum.user + spent.user, system: sum.system + spent.system });
    }
    // 'other' is what is left of the whole: it takes in threads that ended unread.
    const named = [...byRole.values()].filter((r) => r.role !== 'other');
    const rest = named.reduce((left, r) => minus(left, r), total);
    const others = byRole.get('other')?.threads ?? 0;
    return [...named, { role: 'other', threads: others, user: Math.max(0, rest.user), system: Math.max(0, rest.system) }]
      .map((r) => ({ ...r, user: ms(r.user), system: ms(r.system) }))
      .sort((a, b) => b.user + b.system - (a.user + a.system));
  }

  /** Stops polling without a result (a run that failed). */
  stop(): void {
    clearInterval(this.timer);
  }

  private poll(): void {
    try {
      this.read();
    } catch {
      // The process is gone: nothing more to read.
      this.stop();
    }
  }

  private read(): void {
    for (const [tid, times] of threadTimes(this.pid)) this.latest.set(tid, times);
  }
}

/** Seconds to the ms: the kernel counts in clock ticks (10 ms), so finer digits are float noise. */
const ms = (seconds: number) => Math.round(seconds * 1000) / 1000;

function minus(a: CpuTimes, b: CpuTimes): CpuTimes {
  return { user: a.user - b.user, system: a.system - b.system };
}

/** Thread id → role, from the 'thread role' lines of a livemig instance's log. */
export function threadRolesFromLog(log: string): Map<number, string> {
  const roles = new Map<number, string>();
  for (const line of log.split('\n')) {
    if (!line.includes(THREAD_ROLE_MSG)) continue;
    try {
      const entry = JSON.parse(line) as { msg?: string; role?: string; tid?: number };
      if (entry.msg === THREAD_ROLE_MSG && entry.role && entry.tid) roles.set(entry.tid, entry.role);
    } catch {
      // Not a log line of ours.
    }
  }
  return roles;
}
