/**
 * CPU time (of the whole process, or of each of its threads), peak memory,
 * children and open descriptors of another process, from /proc (Linux):
 * the bench reads each migrating process before and after the migration,
 * and the tests what a process left behind (and end it).
 */
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';

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

/** The command name of a /proc stat text (it sits in parentheses and may hold either). */
function statName(stat: string): string {
  return stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
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

/** One process, as /proc/PID/stat gives it. */
export interface ProcessEntry {
  pid: number;
  ppid: number;
  /** The command name (at most 15 characters). */
  name: string;
  /** proc(5)'s state letter: 'Z' for a zombie. */
  state: string;
  /** Its process group and session. */
  group: number;
  session: number;
  /** When it started, in clock ticks since boot. */
  started: number;
}

/** Every process of the machine (one that ends while listed is left out). */
export function processTable(): ProcessEntry[] {
  const table: ProcessEntry[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const fields = statFields(stat);
      // Counted from the state (field 3 of proc(5)): the parent pid is field 4, group 5, session 6, start time 22.
      table.push({
        pid: Number(entry),
        ppid: Number(fields[1]),
        name: statName(stat),
        state: fields[0]!,
        group: Number(fields[2]),
        session: Number(fields[3]),
        started: Number(fields[19]),
      });
    } catch {
      // Exited while listed.
    }
  }
  return table;
}

/** The command line of `pid`, cut to 300 characters, or "(ended)". */
export function commandLine(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ').trim().slice(0, 300);
  } catch {
    return '(ended)';
  }
}

/** SIGKILLs each of `processes`, first naming it on stderr after `label` when one is given. */
export function killProcesses(processes: ProcessEntry[], label?: string): void {
  for (const p of processes) {
    if (label) process.stderr.write(`${label}: pid ${p.pid} ${commandLine(p.pid)}\n`);
    try {
      process.kill(p.pid, 'SIGKILL');
    } catch {
      // It ended meanwhile.
    }
  }
}

/** The live (not zombie) child processes of `parent`: pid and command name. */
export function childProcesses(parent: number): { pid: number; name: string }[] {
  return processTable()
    .filter((p) => p.ppid === parent && p.state !== 'Z')
    .map(({ pid, name }) => ({ pid, name }));
}

/** What each open descriptor of `pid` refers to (a path, or pipe:[N], socket:[N]); empty once it has ended. */
export function openDescriptors(pid: number): { fd: string; target: string }[] {
  let fds: string[];
  try {
    fds = readdirSync(`/proc/${pid}/fd`);
  } catch {
    return [];
  }
  const open: { fd: string; target: string }[] = [];
  for (const fd of fds) {
    try {
      open.push({ fd, target: readlinkSync(`/proc/${pid}/fd/${fd}`) });
    } catch {
      // Closed while listed.
    }
  }
  return open;
}

/** One thread of a process, and where it waits: the kernel function (wchan) and the system call it is in. */
export interface ThreadWait {
  tid: number;
  name: string;
  state: string;
  /** The kernel function it sleeps in (pipe_read, futex_wait_queue, do_epoll_wait…), 0 when running. */
  wchan: string;
  /** /proc's syscall line: the call's number and first argument (a descriptor, for read or write), or "running". */
  syscall: string;
}

/** Every live thread of `pid`, and what each waits in. */
export function threadWaits(pid: number): ThreadWait[] {
  const threads: ThreadWait[] = [];
  let tids: string[];
  try {
    tids = readdirSync(`/proc/${pid}/task`);
  } catch {
    return [];
  }
  for (const tid of tids) {
    const task = `/proc/${pid}/task/${tid}`;
    let stat: string;
    try {
      stat = readFileSync(`${task}/stat`, 'utf8');
    } catch {
      continue; // ended while listed
    }
    threads.push({
      tid: Number(tid),
      name: statName(stat),
      state: statFields(stat)[0]!,
      wchan: readOr(`${task}/wchan`, '?'),
      syscall: readOr(`${task}/syscall`, '?').trim().split(' ').slice(0, 2).join(' '),
    });
  }
  return threads;
}

/** A /proc file's text, or `fallback` where it cannot be read (syscall needs the right to trace the process). */
function readOr(path: string, fallback: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return fallback;
  }
}
