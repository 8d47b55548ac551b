/**
 * What the suite leaves behind when it ends. Every test cleans up what it
 * starts, but a process or socket a test forgot keeps mocha's event loop
 * alive, and CI then waits on a run whose tests all passed until its time
 * runs out, with nothing saying why. After the last test this hook names
 * each process still running under the suite and ends it, and if mocha has
 * not exited a while later it names what keeps it alive and exits with the
 * suite's own result.
 */
import { readdirSync, readFileSync } from 'node:fs';

/** How long mocha may take to exit by itself after its last test. */
const EXIT_GRACE_MS = 20_000;

/** Processes that belong to the test runner itself: tsx's esbuild service ends with its parent. */
const RUNNER_HELPERS = new Set(['esbuild']);

interface ProcessEntry {
  pid: number;
  ppid: number;
  name: string;
}

function processes(): ProcessEntry[] {
  const entries: ProcessEntry[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      // The command name sits in parentheses and may hold spaces or parentheses itself.
      const close = stat.lastIndexOf(')');
      const [, ppid] = stat.slice(close + 2).split(' ');
      entries.push({ pid: Number(name), ppid: Number(ppid), name: stat.slice(stat.indexOf('(') + 1, close) });
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

function endLeftoverProcesses(): void {
  const left = descendants().filter((p) => !RUNNER_HELPERS.has(p.name));
  for (const p of left) {
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
