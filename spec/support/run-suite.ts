/**
 * What `npm test` runs: mocha, as a child in a session of its own with
 * output pipes of its own, so that no process a test starts can hold CI's
 * output open, and the run ends once mocha has printed its closing line. A
 * mocha that does not exit after it (a read of a pipe blocked in a libuv
 * thread keeps even process.exit() from returning) is named with what each
 * of its threads waits in, then killed with everything left in its session;
 * the run's status is then the closing line's. (A mocha that hangs before
 * its closing line is left to its own test timeouts.) Arguments are
 * mocha's (`npm test -- --grep cancel`).
 */
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { constants } from 'node:os';
import { commandLine, killProcesses, openDescriptors, processTable, threadWaits, type ProcessEntry } from '../../tools/bench/process-usage.js';

/** How long mocha may take to exit after its closing line; the suite-end hook needs 20 s of it. */
const EXIT_GRACE_MS = Number(process.env.LIVEMIG_SUITE_EXIT_GRACE_MS ?? 45_000);
/** How long output still in the pipes may take to arrive once mocha has exited. */
const DRAIN_MS = 2_000;
/** The summary reporter's closing line: the last thing on mocha's stdout. */
const CLOSING_LINE = /(?:^|\n)(\d+) passed, (\d+) failed, (\d+) skipped\n?$/;
/** Where a thread with nothing to do sleeps: an event loop's epoll, an idle worker's futex. */
const IDLE_WAITS = /^(do_epoll_wait|ep_poll|futex_\w+)$/;

const mochaBin = createRequire(import.meta.url).resolve('mocha/bin/mocha.js');
// mocha's colours follow its stdout, a pipe now: keep them for a terminal.
const colour = process.stdout.isTTY ? ['--color'] : [];
// A session and process group of its own (detached), so that what is left in them can be ended together.
const mocha = spawn(process.execPath, [mochaBin, ...colour, ...process.argv.slice(2)], { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
const group = mocha.pid!;
const drained = Promise.all([mocha.stdout, mocha.stderr].map((s) => new Promise((resolve) => s.once('end', resolve))));

let failed: number | undefined;
let stuckTimer: NodeJS.Timeout | undefined;
let tail = '';
mocha.stdout.pipe(process.stdout, { end: false });
mocha.stderr.pipe(process.stderr, { end: false });
mocha.stdout.on('data', (chunk: Buffer) => {
  tail = (tail + chunk.toString('utf8')).slice(-512);
  // Counted from the last output: what a test printed that looked like the closing line is followed by more.
  clearTimeout(stuckTimer);
  const closing = CLOSING_LINE.exec(tail);
  failed = closing ? Number(closing[2]) : undefined;
  if (closing) stuckTimer = setTimeout(stuckAfterClosingLine, EXIT_GRACE_MS).unref();
});
// A reader that went away (`npm test | head`) ends the run, not the runner with an error.
for (const stream of [process.stdout, process.stderr]) stream.on('error', () => finish(1));

// Out of the terminal's process group, mocha no longer hears Ctrl-C: pass it on. mocha's wrapper (bin/mocha.js, which
// runs the tests in a child of its own) then exits 0, so the run's status says it was interrupted. A second one ends it.
let interrupted: NodeJS.Signals | undefined;
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.on(signal, () => {
    if (interrupted) finish(128 + constants.signals[interrupted]);
    interrupted = signal;
    killGroup(signal);
  });
}
// However the runner ends, nothing of the run outlives it (being in a session of its own, nothing else would end it).
process.on('exit', () => killSession());

mocha.on('exit', (code, signal) => {
  clearTimeout(stuckTimer);
  killSession('left running after mocha exited, now killed');
  const ended = interrupted ?? signal;
  const status = ended ? 128 + constants.signals[ended] : code ?? 1;
  const timer = setTimeout(() => finish(status), DRAIN_MS);
  void drained.then(() => {
    clearTimeout(timer);
    finish(status);
  });
});

function stuckAfterClosingLine(): void {
  const lines = [`mocha printed its closing line ${EXIT_GRACE_MS / 1000} s ago and has not exited; what is left of it:`];
  for (const p of leftInSession()) {
    lines.push(`  pid ${p.pid} (${p.name}, state ${p.state}): ${commandLine(p.pid)}`);
    const threads = threadWaits(p.pid);
    const busy = threads.filter((t) => !IDLE_WAITS.test(t.wchan));
    for (const t of busy) lines.push(`    thread ${t.tid} (${t.name}): state ${t.state}, waits in ${t.wchan}, ${syscallText(p.pid, t.syscall)}`);
    lines.push(`    ${threads.length - busy.length} ${busy.length > 0 ? 'other ' : ''}threads wait for events (epoll) or for work (futex)`);
  }
  lines.push(`killed; the run's status is its closing line's (${failed} failed)`);
  process.stderr.write(`${lines.join('\n')}\n`);
  killSession();
  finish(failed === 0 ? 0 : 1);
}

/** A system call and, where its first argument is one of the process's descriptors, what that descriptor is. */
function syscallText(pid: number, syscall: string): string {
  const [call, first] = syscall.split(' ');
  if (first === undefined) return syscall;
  // /proc writes the arguments in hex (0x12): as a descriptor, fd 18.
  const fd = openDescriptors(pid).find((d) => d.fd === String(Number(first)));
  return `system call ${call}${fd ? ` on descriptor ${fd.fd} (${fd.target})` : ''}`;
}

/** What still runs in mocha's session: mocha, and whatever the tests started that did not start a session of its own. */
function leftInSession(): ProcessEntry[] {
  return processTable().filter((p) => p.session === group && p.state !== 'Z');
}

/** Kills what is left in mocha's session (naming each after `label` when given), and its group with it. */
function killSession(label?: string): void {
  killProcesses(leftInSession(), label);
  killGroup('SIGKILL');
}

function killGroup(signal: NodeJS.Signals): void {
  try {
    process.kill(-group, signal);
  } catch {
    // The group has ended.
  }
}

let finishing = false;

/** Exits with `status` once both output streams have taken what was written to them (or a reader gone, soon after). */
function finish(status: number): void {
  if (finishing) return;
  finishing = true;
  process.exitCode = Math.min(status, 255);
  const flushed = (stream: NodeJS.WriteStream) => new Promise((resolve) => stream.write('', resolve));
  void Promise.all([flushed(process.stdout), flushed(process.stderr)]).then(() => process.exit());
  setTimeout(() => process.exit(), DRAIN_MS);
}
