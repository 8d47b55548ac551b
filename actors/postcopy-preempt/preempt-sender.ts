/**
 * The source's postcopy-preempt channel, seen from the migration thread:
 * its thread (preempt-send-worker.ts) connects at setup, and from the
 * switch on serves the destination's page requests by itself. The
 * migration thread opens the gate at the switch, counts what the thread
 * sent, and ends the channel once every page is out.
 */
import type { Worker } from 'node:worker_threads';
import type { RamBlock } from '../guest/ram-block.js';
import type { ChannelAddress } from '../multifd/messages.js';
import type { TlsClient } from '../../protocols/tls/session.js';
import type { MigrationBitmap } from '../ram/migration-bitmap.js';
import { startTsWorker } from '../threads/ts-worker.js';
import {
  CTRL_POSTCOPY, PREEMPT_CTRL, PREEMPT_STATS, STAT_BYTES, STAT_NORMAL_PAGES, STAT_RELEASED_BYTES, STAT_REQUESTS, STAT_ZERO_PAGES,
  type FromPreemptSend, type PreemptSendData, type ToPreemptSend,
} from './messages.js';

const ENTRY = new URL('./preempt-send-worker.ts', import.meta.url);

export interface PreemptSenderOptions {
  address: ChannelAddress;
  /** tls-creds set: the channel is TLS (the same settings as the main channel's). */
  tls?: TlsClient;
  uuid: string | undefined;
  /** The guest's blocks in stream order. */
  blocks: readonly RamBlock[];
  bitmap: MigrationBitmap;
  resendSentPages: boolean;
  releaseRam: boolean;
  /** The channel failed after it connected. */
  onError(err: Error): void;
  /** For the visualizer: a message between two actors. */
  trace(from: string, to: string, event: string): void;
}

/** What the thread did since the last look. */
export interface PreemptProgress {
  bytes: number;
  normalPages: number;
  zeroPages: number;
  requests: number;
  releasedBytes: number;
}

export class PreemptSender {
  private readonly reported = new Float64Array(PREEMPT_STATS);
  private finished: (() => void) | undefined;
  private peerClosed = false;
  private onPeerClosed: (() => void) | undefined;
  private closed = false;

  private constructor(
    private readonly worker: Worker,
    private readonly options: PreemptSenderOptions,
    private readonly ctrl: Int32Array,
    private readonly stats: Float64Array,
  ) {}

  /** Starts the thread; resolves once it has connected and sent its hello. */
  static start(options: PreemptSenderOptions): Promise<PreemptSender> {
    const stats = new SharedArrayBuffer(PREEMPT_STATS * 8);
    const ctrl = new SharedArrayBuffer(PREEMPT_CTRL * 4);
    const data: PreemptSendData = {
      address: options.address,
      tls: options.tls,
      uuid: options.uuid,
      blocks: options.blocks.map((b) => b.shared),
      stats,
      bitmap: options.bitmap.shared,
      resendSentPages: options.resendSentPages,
      releaseRam: options.releaseRam,
      ctrl,
    };
    const worker = startTsWorker(ENTRY, { workerData: data, name: 'postcopy-preempt' });
    const sender = new PreemptSender(worker, options, new Int32Array(ctrl), new Float64Array(stats));
    return new Promise((resolve, reject) => {
      let connected = false;
      const failed = (err: Error) => {
        if (connected) return sender.fail(err);
        // A thread that never connected is of no use: it goes with the refusal.
        sender.close();
        reject(err);
      };
      worker.on('message', (m: FromPreemptSend) => {
        switch (m.type) {
          case 'connected':
            connected = true;
            options.trace('migration', 'postcopy-preempt', 'connected');
            return resolve(sender);
          case 'served':
            return options.trace('postcopy-preempt', 'migration', m.message);
          case 'finished':
            return sender.finished?.();
          case 'peer-closed':
            sender.peerClosed = true;
            return sender.onPeerClosed?.();
          case 'error':
            return failed(new Error(m.message));
        }
      });
      worker.on('error', (err) => failed(new Error(`postcopy-preempt thread failed: ${err.message}`)));
      worker.on('exit', (code) => {
        if (!sender.closed) failed(new Error(`postcopy-preempt thread exited with code ${code}`));
      });
    });
  }

  /** The switch: page requests are served from now on (before it, one is a confused destination). */
  openRequests(): void {
    Atomics.store(this.ctrl, CTRL_POSTCOPY, 1);
  }

  /** What the thread sent since the last call. */
  progress(): PreemptProgress {
    const delta = (cell: number) => {
      const now = this.stats[cell]!;
      const d = now - this.reported[cell]!;
      this.reported[cell] = now;
      return d;
    };
    return {
      bytes: delta(STAT_BYTES),
      normalPages: delta(STAT_NORMAL_PAGES),
      zeroPages: delta(STAT_ZERO_PAGES),
      requests: delta(STAT_REQUESTS),
      releasedBytes: delta(STAT_RELEASED_BYTES),
    };
  }

  /** Every page is out: the thread writes what it has queued and ends the connection. */
  finish(): Promise<void> {
    return new Promise((resolve) => {
      this.finished = resolve;
      this.post({ type: 'finish' });
    });
  }

  /**
   * Resolves once the destination has closed its end (after its SHUT), when
   * every request it made has been read: the request count is final.
   */
  drained(): Promise<void> {
    if (this.peerClosed) return Promise.resolve();
    return new Promise((resolve) => (this.onPeerClosed = resolve));
  }

  close(): void {
    if (this.closed) return;
    this.post({ type: 'close' });
    this.closed = true;
    void this.worker.terminate();
  }

  private fail(err: Error): void {
    if (!this.closed) this.options.onError(err);
  }

  private post(m: ToPreemptSend): void {
    if (!this.closed) this.worker.postMessage(m);
  }
}
