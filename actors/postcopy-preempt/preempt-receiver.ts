/**
 * The destination's postcopy-preempt channel, seen from the incoming
 * migration: its thread (preempt-recv-worker.ts) listens, takes the guest's
 * faults from POSTCOPY_LISTEN on, and reads and places the requested pages.
 * This is the fault handler postcopy uses when preempt is on.
 */
import type { Worker } from 'node:worker_threads';
import type { Guest } from '../guest/guest.js';
import type { TlsServerData } from '../objects/migration-tls.js';
import type { FaultHandler } from '../return-path/page-requester.js';
import { startTsWorker } from '../threads/ts-worker.js';
import {
  PREEMPT_STATS, STAT_BYTES, STAT_NORMAL_PAGES, STAT_REQUESTS, STAT_ZERO_PAGES,
  type FromPreemptRecv, type PreemptRecvData, type ToPreemptRecv,
} from './messages.js';

const ENTRY = new URL('./preempt-recv-worker.ts', import.meta.url);
/** How long a closed thread gets to close its sockets before it is ended. */
const CLOSE_GRACE_MS = 1000;

/** The unix socket path of the preempt channel for a main channel at `base`. */
export function preemptPath(base: string): string {
  return `${base}.preempt`;
}

export interface PreemptReceiverOptions {
  guest: Guest;
  /** The main listener's host, or its unix path. */
  listen: { host: string } | { unixBase: string };
  /** tls-creds set: the channel is TLS, its client checked as the main channel's is. */
  tls?: TlsServerData;
  uuid: string | undefined;
  /** The channel failed: its error, naming it. */
  onError(message: string): void;
  /** For the visualizer: a message between two actors. */
  trace(from: string, to: string, event: string): void;
}

export class PreemptReceiver implements FaultHandler {
  /** The tcp port the source connects to (undefined for unix). */
  port: number | undefined;
  /** The source ended the channel and every page on it is placed. */
  ended = false;
  private onEnded: (() => void) | undefined;
  private closed = false;

  private constructor(
    private readonly worker: Worker,
    private readonly options: PreemptReceiverOptions,
    private readonly stats: Float64Array,
  ) {}

  /** Starts the thread; resolves once it listens. */
  static start(options: PreemptReceiverOptions): Promise<PreemptReceiver> {
    const { guest, listen, uuid, tls } = options;
    const stats = new SharedArrayBuffer(PREEMPT_STATS * 8);
    const data: PreemptRecvData = {
      listen: 'host' in listen ? { host: listen.host } : { path: preemptPath(listen.unixBase) },
      tls,
      blocks: guest.blocks.map((b) => b.shared),
      ...guest.faultQueueShared(),
      uuid,
      stats,
    };
    const worker = startTsWorker(ENTRY, { workerData: data, name: 'postcopy-preempt' });
    const receiver = new PreemptReceiver(worker, options, new Float64Array(stats));
    return new Promise((resolve, reject) => {
      let listening = false;
      // A thread that never listened is of no use: it goes with the refusal.
      const refused = (err: Error) => {
        receiver.close();
        reject(err);
      };
      worker.on('message', (m: FromPreemptRecv) => {
        if (m.type === 'listening') {
          listening = true;
          receiver.port = m.port;
          resolve(receiver);
        } else if (m.type === 'error' && !listening) refused(new Error(m.message));
        else receiver.onMessage(m);
      });
      const died = (err: Error) => {
        if (!listening) refused(err);
        else receiver.fail(`postcopy-preempt thread failed: ${err.message}`);
      };
      worker.on('error', died);
      worker.on('exit', (code) => {
        if (!receiver.closed) died(new Error(`it exited with code ${code}`));
      });
    });
  }

  /** Page requests sent. */
  get requests(): number {
    return this.stats[STAT_REQUESTS]!;
  }

  /** Bytes read, pages placed, zero pages, for the destination's counters. */
  get counters(): { bytes: number; pages: number; zeroPages: number } {
    return { bytes: this.stats[STAT_BYTES]!, pages: this.stats[STAT_NORMAL_PAGES]!, zeroPages: this.stats[STAT_ZERO_PAGES]! };
  }

  /** The stream header's block order, as indexes of the guest's blocks. */
  setLayout(order: number[]): void {
    this.post({ type: 'layout', order });
  }

  start(): void {
    this.post({ type: 'listen' });
  }

  stop(): void {
    this.post({ type: 'stop' });
  }

  /** Faults are the thread's: nothing to look at here. */
  poll(): void {}

  /** Runs `then` once the channel has ended (at once if it has). */
  whenEnded(then: () => void): void {
    if (this.ended) then();
    else this.onEnded = then;
  }

  close(): void {
    if (this.closed) return;
    this.post({ type: 'close' });
    this.closed = true;
    setTimeout(() => void this.worker.terminate(), CLOSE_GRACE_MS).unref();
  }

  private onMessage(m: FromPreemptRecv): void {
    switch (m.type) {
      case 'connected':
        this.options.trace('postcopy-preempt', 'incoming', 'connected');
        return;
      case 'requested':
        this.options.trace('incoming', 'postcopy-preempt', m.message);
        return;
      case 'ended':
        this.ended = true;
        this.onEnded?.();
        return;
      case 'error':
        this.fail(m.message);
        return;
    }
  }

  private fail(message: string): void {
    if (this.closed) return;
    this.options.onError(message);
  }

  private post(m: ToPreemptRecv): void {
    if (!this.closed) this.worker.postMessage(m);
  }
}
