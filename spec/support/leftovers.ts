/**
 * What the suite leaves behind when it ends. Every test cleans up what it
 * starts, but a process or socket a test forgot keeps mocha's event loop
 * alive (and one holding the suite's output keeps CI's pipe open), and CI
 * then waits on a run whose tests all passed until its time runs out, with
 * nothing saying why. After the last test this hook names each process
 * still running under the suite, or holding its output, and ends it; if
 * mocha has not exited a while later it names what keeps it alive and exits
 * with the suite's own result. (What even process.exit() cannot end, npm
 * test's runner, run-suite.ts, names and kills.)
 */
import { readFileSync } from 'node:fs';
import { killProcesses, openDescriptors, processTable, type ProcessEntry } from '../../tools/bench/process-usage.js';

/** How long mocha may take to exit by itself after its last test. */
const EXIT_GRACE_MS = 20_000;

/** Processes that belong to the test runner itself: tsx's esbuild service ends with its parent. */
const RUNNER_HELPERS = new Set(['esbuild']);

/** Every process started under this one, children before grandchildren. */
function descendants(all: ProcessEntry[]): ProcessEntry[] {
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

/**
 * Processes started since this one, outside its own line, that hold its
 * output (the pipes or files of its stdout and stderr) open: a grandchild
 * orphaned when its parent was killed keeps CI's pipe from ever ending,
 * whoever its parent is now. (What CI itself runs beside the suite
 * started before it.)
 */
function outputHolders(all: ProcessEntry[]): ProcessEntry[] {
  const mine = openDescriptors(process.pid);
  const targets = new Set(mine.filter((d) => d.fd === '1' || d.fd === '2').map((d) => d.target));
  const line = ancestors(all);
  const since = all.find((p) => p.pid === process.pid)?.started ?? Infinity;
  return all.filter((p) => !line.has(p.pid) && p.started >= since &&
    openDescriptors(p.pid).some((d) => targets.has(d.target) && openForWriting(p.pid, d.fd)));
}

/** Whether descriptor `fd` of `pid` writes: a pipe's reader (CI itself, say) names the same pipe. */
function openForWriting(pid: number, fd: string): boolean {
  try {
    const flags = /^flags:\s+([0-7]+)$/m.exec(readFileSync(`/proc/${pid}/fdinfo/${fd}`, 'utf8'));
    return flags !== null && (parseInt(flags[1]!, 8) & 3) !== 0;
  } catch {
    return false; // closed, or the process ended, meanwhile
  }
}

function endLeftoverProcesses(): void {
  const all = processTable().filter((p) => p.state !== 'Z' && !RUNNER_HELPERS.has(p.name));
  const left = new Map([...descendants(all), ...outputHolders(all)].map((p) => [p.pid, p]));
  killProcesses([...left.values()], 'left running after the suite, now killed');
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
