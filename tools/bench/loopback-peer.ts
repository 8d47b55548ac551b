/**
 * One process of the loopback reference ("the machine's limit"): plain
 * Node.js moving a SharedArrayBuffer to a pre-faulted SharedArrayBuffer in
 * another process over loopback TCP, the shape a migration has. The bench
 * starts a receiver, then a sender with the receiver's ports:
 *
 *   loopback-peer.ts receive --size BYTES --connections N --key HEX
 *   loopback-peer.ts send    --size BYTES --ports P1,P2 --key HEX
 *
 * Each prints JSON lines (PeerReport) on stdout, and waits for a line on
 * stdin where the bench reads its threads first: the sender before it
 * sends, the receiver before it verifies; both stay until stopped. One
 * connection runs on the main thread; N connections use a worker thread per
 * connection on each side.
 */
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { Worker } from 'node:worker_threads';
import { listenChannel, sendChannel, type Slice } from './loopback-channel.js';
import type { ChannelWorkerData, ChannelWorkerMessage, PeerReport } from './loopback-messages.js';
import { fillPattern, verifyPattern } from './loopback-pattern.js';

const PAGE = 4096;

const { positionals, values } = parseArgs({
  allowPositionals: true,
  options: {
    size: { type: 'string' },
    connections: { type: 'string', default: '1' },
    ports: { type: 'string', default: '' },
    key: { type: 'string' },
  },
});
const role = positionals[0];
const size = Number(values.size);
const key = Buffer.from(values.key ?? '', 'hex');
if ((role !== 'send' && role !== 'receive') || !Number.isSafeInteger(size) || size <= 0 || key.length !== 16) {
  console.error('usage: loopback-peer.ts receive|send --size BYTES [--connections N | --ports P1,P2] --key HEX16');
  process.exit(2);
}

const report = (r: PeerReport) => process.stdout.write(`${JSON.stringify(r)}\n`);
/** Resolves when the bench writes a line on stdin. */
const told = () => new Promise((resolve) => process.stdin.once('data', resolve));

/** Page-aligned slices, the last one taking the rest. */
function slices(memory: SharedArrayBuffer, n: number): Slice[] {
  const each = Math.floor(memory.byteLength / n / PAGE) * PAGE;
  return Array.from({ length: n }, (_, i) => ({
    memory,
    offset: i * each,
    length: i === n - 1 ? memory.byteLength - i * each : each,
  }));
}

/** A channel worker; the tsx loader is registered inside it, as Node 20 does not pass --import on to workers. */
function startWorker(data: ChannelWorkerData): Worker {
  const entry = new URL('./loopback-worker.ts', import.meta.url).href;
  const bootstrap = `import('tsx/esm/api').then((t) => { t.register(); return import(${JSON.stringify(entry)}); })`;
  return new Worker(bootstrap, { eval: true, workerData: data });
}

function nextMessage<K extends ChannelWorkerMessage['kind']>(worker: Worker, kind: K): Promise<Extract<ChannelWorkerMessage, { kind: K }>> {
  return new Promise((resolve, reject) => {
    const onMessage = (m: ChannelWorkerMessage) => {
      if (m.kind === 'error') return finish(() => reject(new Error(m.message)));
      if (m.kind === kind) finish(() => resolve(m as Extract<ChannelWorkerMessage, { kind: K }>));
    };
    const onError = (err: Error) => finish(() => reject(err));
    const finish = (then: () => void) => {
      worker.off('message', onMessage);
      worker.off('error', onError);
      then();
    };
    worker.on('message', onMessage);
    worker.on('error', onError);
  });
}

const cpuSeconds = (since: NodeJS.CpuUsage) => {
  const d = process.cpuUsage(since);
  return Math.round(d.user + d.system) / 1e6;
};
const maxRssBytes = () => process.resourceUsage().maxRSS * 1024;

async function receive(connections: number): Promise<void> {
  const memory = new SharedArrayBuffer(size);
  // Pre-fault ("warm"): first touches cost up to 5.7 µs a page on this kind of VM.
  new Uint8Array(memory).fill(0xff);
  let received: Promise<unknown>[];
  let ports: number[];
  let channelThreads: number[] = [];
  if (connections === 1) {
    const channel = await listenChannel(slices(memory, 1)[0]!);
    ports = [channel.port];
    received = [channel.received];
  } else {
    const workers = slices(memory, connections).map((slice) => startWorker({ role: 'receive', slice }));
    const done = workers.map((w) => nextMessage(w, 'done'));
    done.forEach((d) => d.catch(() => {}));
    const listening = await Promise.all(workers.map((w) => nextMessage(w, 'port')));
    ports = listening.map((m) => m.port);
    channelThreads = listening.map((m) => m.tid);
    received = done;
  }
  const cpu0 = process.cpuUsage();
  report({ event: 'ready', ports, channelThreads });
  await Promise.all(received);
  const cpu = cpuSeconds(cpu0);
  report({ event: 'done', cpuSeconds: cpu, maxRssBytes: maxRssBytes() });
  await told();
  report({ event: 'verified', verified: verifyPattern(key, memory) });
}

async function send(ports: number[]): Promise<void> {
  const memory = new SharedArrayBuffer(size);
  fillPattern(key, memory);
  const parts = slices(memory, ports.length);
  let go: () => Promise<unknown>;
  let channelThreads: number[] = [];
  if (ports.length === 1) {
    go = () => sendChannel(parts[0]!, ports[0]!);
  } else {
    const workers = parts.map((slice) => startWorker({ role: 'send', slice }));
    channelThreads = (await Promise.all(workers.map((w) => nextMessage(w, 'ready')))).map((m) => m.tid);
    go = () => Promise.all(workers.map((w, i) => {
      const done = nextMessage(w, 'done');
      w.postMessage(ports[i]);
      return done;
    }));
  }
  report({ event: 'armed', channelThreads });
  await told();
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  await go();
  const elapsedMs = performance.now() - t0;
  report({ event: 'done', elapsedMs, cpuSeconds: cpuSeconds(cpu0), maxRssBytes: maxRssBytes() });
}

try {
  if (role === 'receive') await receive(Math.max(1, Number(values.connections)));
  else await send(values.ports.split(',').map(Number));
  // Alive until the bench lets go (SIGTERM, or stdin closed), so that it can read this process's threads after the run.
  process.stdin.on('end', () => process.exit(0)).resume();
} catch (err) {
  report({ event: 'error', message: (err as Error).message });
  process.exit(1);
}
