/**
 * The machine's limit, measured in the same run: two plain Node.js
 * processes (loopback-peer.ts) moving the same bytes a migration moves,
 * SharedArrayBuffer to pre-faulted SharedArrayBuffer over loopback TCP,
 * every byte verified; each peer's CPU by thread role (thread-profile.ts)
 * from the moment the sender is told to send.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { REPO_ROOT } from '../instance-process.js';
import type { PeerReport } from './loopback-messages.js';
import { failedRun } from './migration-metrics.js';
import { ThreadProfile } from './thread-profile.js';
import type { RunMetrics } from './results.js';
import { onTeardown, stopProcess } from './teardown.js';

const PEER = fileURLToPath(new URL('./loopback-peer.ts', import.meta.url));
/** Filling, pre-faulting and moving a few GiB on a busy 2-core machine stays well inside this. */
const PEER_TIMEOUT_MS = 120_000;

/** One measurement of `size` bytes over `connections` connections. */
export async function measureLoopback(size: number, connections: number): Promise<RunMetrics> {
  const key = randomBytes(16).toString('hex');
  const receiver = startPeer(['receive', '--size', String(size), '--connections', String(connections), '--key', key]);
  let sender: ReturnType<typeof startPeer> | undefined;
  let profiles: ThreadProfile[] = [];
  try {
    const ready = await receiver.next();
    if (ready.event !== 'ready') throw new Error(`receiver: ${describe(ready)}`);
    sender = startPeer(['send', '--size', String(size), '--ports', ready.ports.join(','), '--key', key]);
    const armed = await sender.next();
    if (armed.event !== 'armed') throw new Error(`sender: ${describe(armed)}`);
    profiles = [new ThreadProfile(sender.pid), new ThreadProfile(receiver.pid)];
    sender.go();
    const [sent, received] = await Promise.all([sender.next(), receiver.next()]);
    const [sendThreads, receiveThreads] = [armed, ready].map((r, i) => profiles[i]!.finish(new Map(r.channelThreads.map((tid) => [tid, 'channel']))));
    if (sent.event !== 'done' || sent.elapsedMs === undefined) throw new Error(`sender: ${describe(sent)}`);
    if (received.event !== 'done') throw new Error(`receiver: ${describe(received)}`);
    receiver.go();
    const checked = await receiver.next();
    if (checked.event !== 'verified') throw new Error(`receiver: ${describe(checked)}`);
    const seconds = sent.elapsedMs / 1000;
    return {
      ok: checked.verified,
      ...(checked.verified ? {} : { error: 'the receiver does not hold the bytes sent' }),
      totalTimeMs: sent.elapsedMs,
      ramBytes: size,
      wireBytes: size,
      guestGBps: size / 1e9 / seconds,
      wireGBps: size / 1e9 / seconds,
      source: { cpuSeconds: sent.cpuSeconds, peakRssBytes: sent.maxRssBytes, ...(sendThreads ? { threads: sendThreads } : {}) },
      destination: { cpuSeconds: received.cpuSeconds, peakRssBytes: received.maxRssBytes, ...(receiveThreads ? { threads: receiveThreads } : {}) },
      verified: checked.verified,
      series: [],
    };
  } catch (err) {
    return failedRun((err as Error).message);
  } finally {
    for (const p of profiles) p.stop();
    await sender?.stop();
    await receiver.stop();
  }
}

function describe(report: PeerReport): string {
  return report.event === 'error' ? report.message : `unexpected ${JSON.stringify(report)}`;
}

/** A peer process whose stdout JSON lines are read one at a time; `go` tells it to take its next step (PeerReport). */
function startPeer(args: string[]): { pid: number; next(): Promise<PeerReport>; go(): void; stop(): Promise<void> } {
  const child: ChildProcess = spawn(process.execPath, ['--import', 'tsx', PEER, ...args], {
    cwd: REPO_ROOT,
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  const stop = onTeardown(() => stopProcess(child));
  const lines: PeerReport[] = [];
  const waiting: ((r: PeerReport) => void)[] = [];
  let buffered = '';
  let stderr = '';
  const deliver = (report: PeerReport) => {
    const w = waiting.shift();
    if (w) w(report);
    else lines.push(report);
  };
  child.stdout!.on('data', (chunk: Buffer) => {
    buffered += chunk.toString();
    for (let nl = buffered.indexOf('\n'); nl !== -1; nl = buffered.indexOf('\n')) {
      const line = buffered.slice(0, nl);
      buffered = buffered.slice(nl + 1);
      if (line.trim()) deliver(JSON.parse(line) as PeerReport);
    }
  });
  child.stderr!.on('data', (chunk: Buffer) => (stderr = (stderr + chunk.toString()).slice(-2000)));
  // A peer that exited before `go` says why in its reports.
  child.stdin!.on('error', () => {});
  child.once('exit', (code) => {
    // Whoever still waits learns why the peer went away.
    const message = `loopback peer ${args[0]} exited with ${code}${stderr ? `: ${stderr.trim()}` : ''}`;
    while (waiting.length > 0) waiting.shift()!({ event: 'error', message });
  });
  return {
    pid: child.pid!,
    go: () => child.stdin!.write('go\n'),
    next() {
      const queued = lines.shift();
      if (queued) return Promise.resolve(queued);
      if (child.exitCode !== null) return Promise.resolve({ event: 'error', message: `loopback peer ${args[0]} already exited: ${stderr.trim()}` });
      return new Promise((resolve) => {
        const timer = setTimeout(() => resolve({ event: 'error', message: `loopback peer ${args[0]} gave no answer in ${PEER_TIMEOUT_MS / 1000} s` }), PEER_TIMEOUT_MS);
        waiting.push((r) => {
          clearTimeout(timer);
          resolve(r);
        });
      });
    },
    stop,
  };
}
