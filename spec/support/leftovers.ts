/**
 * What the suite leaves behind when it ends. Every test cleans up what it
 * starts, but a process or socket a test forgot keeps mocha's event loop
 * alive (and one holding the suite's output keeps CI's pipe open), and CI
 * then waits on a run whose tests all passed until its time runs out, with
 * nothing saying why. After the last test this hook names each process
 * still running under the suite, or holding its output, and ends it; if mocha has
 * not exited a while later it names what keeps it alive and exits with the
 * suite's own result.
 */
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';

/** How long mocha may take to exit by itself after its last test. */
const EXIT_GRACE_MS = 20_000;

/** Processes that belong to the test runner itself: tsx's esbuild service ends with its parent. */
const RUNNER_HELPERS = new Set(['esbuild']);

interface ProcessEntry {
  pid: number;
  ppid: number;
  name: string;
  /** When it started, in clock ticks since boot. */
  started: number;
}

function processes(): ProcessEntry[] {
  const entries: ProcessEntry[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      // The command name sits in parentheses and may hold spaces or parentheses itself.
      const close = stat.lastIndexOf(')');
      // After the name: state, ppid, ... and the start time, the 22nd field of the whole line.
      const fields = stat.slice(close + 2).split(' ');
      entries.push({ pid: Number(name), ppid: Number(fields[1]), name: stat.slice(stat.indexOf('(') + 1, close), started: Number(fields[19]) });
    } catch {
      // It ended while the list was read.
    }
  }
  return entries;
}

function commandLine(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ').trim().slice(0, 300);
  } catch {
    return '(ended)';
  }
}

/** Every process started under this one, children before grandchildren. */
function descendants(): ProcessEntry[] {
  const all = processes();
  const found: ProcessEntry[] = [];
  const parents = new Set([process.pid]);
  for (let grew = true; grew; ) {
    grew = false;
    for (const entry of all) {
      if (parents.has(entry.ppid) && !parents.has(entry.pid)) {
        parents.add(entry.pid);
        found.push(entry);
        grew = true;
      }
    }
  }
  return found;
}

/** This process and those it runs under (npm, its shell): they hold the suite's output by right. */
function ancestors(all: ProcessEntry[]): Set<number> {
  const byPid = new Map(all.map((p) => [p.pid, p]));
  const found = new Set<number>();
  for (let pid: number | undefined = process.pid; pid !== undefined && pid > 1 && !found.has(pid); pid = byPid.get(pid)?.ppid) found.add(pid);
  return found;
}

/** The pipes or files this process writes its output to, as /proc names them (pipe:[N]). */
function outputTargets(): Set<string> {
  const targets = new Set<string>();
  for (const fd of [1, 2]) {
    try {
      targets.add(readlinkSync(`/proc/self/fd/${fd}`));
    } catch {
      // Closed: nothing to hold open.
    }
  }
  return targets;
}

/**
 * Processes started since this one, outside its own line, that hold its
 * output open: a grandchild orphaned when its parent was killed keeps CI's
 * pipe from ever ending, whoever its parent is now. (What CI itself runs
 * beside the suite started before it.)
 */
function outputHolders(all: ProcessEntry[]): ProcessEntry[] {
  const targets = outputTargets();
  const mine = ancestors(all);
  const since = all.find((p) => p.pid === process.pid)?.started ?? Infinity;
  return all.filter((p) => {
    if (mine.has(p.pid) || RUNNER_HELPERS.has(p.name) || p.started < since) return false;
    try {
      return readdirSync(`/proc/${p.pid}/fd`).some((fd) => {
        try {
          return targets.has(readlinkSync(`/proc/${p.pid}/fd/${fd}`)) && openForWriting(p.pid, fd);
        } catch {
          return false;
        }
      });
    } catch {
      return false;
    }
  });
}

/** Whether descriptor `fd` of `pid` writes: a pipe's reader (CI itself, say) names the same pipe. */
function openForWriting(pid: number, fd: string): boolean {
  const flags = /^flags:\s+([0-7]+)$/m.exec(readFileSync(`/proc/${pid}/fdinfo/${fd}`, 'utf8'));
  return flags !== null && (parseInt(flags[1]!, 8) & 3) !== 0;
}

function endLeftoverProcesses(): void {
  const left = new Map(descendants().filter((p) => !RUNNER_HELPERS.has(p.name)).map((p) => [p.pid, p]));
  for (const p of outputHolders(processes())) left.set(p.pid, p);
  for (const p of left.values()) {
    process.stderr.write(`left running after the suite, now killed: pid ${p.pid} ${commandLine(p.pid)}\n`);
    try {
      process.kill(p.pid, 'SIGKILL');
    } catch {
      // It ended on its own meanwhile.
    }
  }
}

function exitIfStillAlive(): void {
  setTimeout(() => {
    const resources = process.getActiveResourcesInfo().filter((r) => r !== 'Timeout');
    process.stderr.write(`mocha had not exited ${EXIT_GRACE_MS} ms after the last test; still open: ${resources.join(', ') || 'nothing named'}\n`);
    // mocha's own 'exit' listener sets the exit code from the failures.
    process.exit();
  }, EXIT_GRACE_MS).unref();
}

export const mochaHooks = {
  afterAll(): void {
    endLeftoverProcesses();
    exitIfStillAlive();
  },
};
