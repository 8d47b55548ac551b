/**
 * CPU time (of the whole process, or of each of its threads), peak memory
 * and children of another process, from /proc (Linux): the bench reads
 * each migrating process before and after the migration.
 */
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';

let ticksPerSecond: number | undefined;

function clockTicks(): number {
  if (ticksPerSecond === undefined) {
    const r = spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' });
    ticksPerSecond = Number(r.stdout.trim()) || 100;
  }
  return ticksPerSecond;
}

/** CPU seconds in user space (utime) and in the kernel (stime: system calls, socket copies among them). */
export interface CpuTimes {
  user: number;
  system: number;
}

/** The fields of a /proc stat text after the command name, from the state (field 3 of proc(5)) on. */
function statFields(stat: string): string[] {
  // The command name may hold spaces and parentheses: fields start after the last ')'.
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
}

/** utime and stime of a /proc stat file, in seconds. */
function statTimes(path: string): CpuTimes {
  const fields = statFields(readFileSync(path, 'utf8'));
  // Fields 14 and 15 of proc(5), counted from 3 here.
  return { user: Number(fields[11]) / clockTicks(), system: Number(fields[12]) / clockTicks() };
}

/** utime and stime of every thread of `pid`, ended ones included. */
export function processTimes(pid: number): CpuTimes {
  return statTimes(`/proc/${pid}/stat`);
}

/** utime and stime of each live thread of `pid`, by thread id (a thread that ends while listed is left out). */
export function threadTimes(pid: number): Map<number, CpuTimes> {
  const threads = new Map<number, CpuTimes>();
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      threads.set(Number(tid), statTimes(`/proc/${pid}/task/${tid}/stat`));
    } catch {
      // Ended while listed.
    }
  }
  return threads;
}

/** utime + stime of every thread of `pid`, in seconds. */
export function cpuSeconds(pid: number): number {
  const { user, system } = processTimes(pid);
  return user + system;
}

/** CPU seconds `pid` spent since `before` (a cpuSeconds reading), at the clock tick's precision. */
export function cpuSecondsSince(pid: number, before: number): number {
  return Math.round((cpuSeconds(pid) - before) * clockTicks()) / clockTicks();
}

/** VmHWM: the peak resident set of `pid` so far, in bytes. */
export function peakRssBytes(pid: number): number {
  return statusBytes(pid, 'VmHWM');
}

/** VmRSS: the resident set of `pid` now, in bytes. */
export function rssBytes(pid: number): number {
  return statusBytes(pid, 'VmRSS');
}

function statusBytes(pid: number, field: 'VmHWM' | 'VmRSS'): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const m = new RegExp(`^${field}:\\s+(\\d+) kB$`, 'm').exec(status);
  return m ? Number(m[1]) * 1024 : 0;
}

/** The live (not zombie) child processes of `parent`: pid and command name. */
export function childProcesses(parent: number): { pid: number; name: string }[] {
  const children: { pid: number; name: string }[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const fields = statFields(stat);
      // fields[0] is the state, fields[1] the parent pid.
      if (Number(fields[1]) === parent && fields[0] !== 'Z') {
        children.push({ pid: Number(entry), name: stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')')) });
      }
    } catch {
      // Exited while listed.
    }
  }
  return children;
}
