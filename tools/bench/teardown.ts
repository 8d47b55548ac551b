/**
 * Everything the bench starts (processes, sockets, memory files) registers
 * how to undo it here, so an error, a Ctrl-C or a normal end leaves nothing
 * behind.
 */
import type { ChildProcess } from 'node:child_process';
import { childProcesses } from './process-usage.js';

type Undo = () => void | Promise<void>;

const pending = new Set<Undo>();

/** Registers `undo`; the returned function runs it now (once) and forgets it. */
export function onTeardown(undo: Undo): () => Promise<void> {
  pending.add(undo);
  return async () => {
    if (!pending.delete(undo)) return;
    await undo();
  };
}

/**
 * Runs every registered undo, newest first (errors are ignored: best effort
 * at the end), then ends any child process still running, such as one
 * interrupted while it started and so not registered yet.
 */
export async function teardownAll(): Promise<void> {
  const undos = [...pending].reverse();
  pending.clear();
  for (const undo of undos) {
    try {
      await undo();
    } catch {
      // Already gone.
    }
  }
  await endChildren();
}

/** The bench's own children. */
function childPids(): number[] {
  return childProcesses(process.pid).map((c) => c.pid);
}

async function endChildren(): Promise<void> {
  const signal = (pids: number[], sig: NodeJS.Signals) => {
    for (const pid of pids) {
      try {
        process.kill(pid, sig);
      } catch {
        // Already gone.
      }
    }
  };
  signal(childPids(), 'SIGTERM');
  for (let waited = 0; waited < 3000 && childPids().length > 0; waited += 100) await new Promise((r) => setTimeout(r, 100));
  signal(childPids(), 'SIGKILL');
}

/** Ends `child` (SIGTERM, then SIGKILL after `graceMs`) and waits for its exit. */
export async function stopProcess(child: ChildProcess, graceMs = 5000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(timer);
}

/** Waits up to `ms` for `child` to exit by itself; kills it past that. */
export async function awaitExit(child: ChildProcess, ms: number): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const timer = setTimeout(() => child.kill('SIGKILL'), ms);
  await exited;
  clearTimeout(timer);
}
