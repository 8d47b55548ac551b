import { MessageChannel, type MessagePort, type Worker } from 'node:worker_threads';
import type { RamBlock } from '../guest/ram-block.js';
import type { CompressionMethod } from '../../protocols/multifd/constants.js';
import type { TlsServerData } from '../objects/migration-tls.js';
import type { RoleThread } from '../threads/thread-role.js';
import {
  CHANNEL_STATS, STAT_BYTES, STAT_NORMAL_PAGES, STAT_ZERO_PAGES, sumStat,
  type FromRecvChannel, type RecvChannelData, type StartRecvChannel, type ToRecvChannel,
} from './messages.js';

export interface MultifdReceiverOptions {
  /** How many channels the source opens. */
  channels: number;
  /** Idle channel threads (MultifdRecvPool), channel i on thread i mod their count; the receiver owns them from here. */
  workers: Worker[];
  /** Channels listen on this host (the main listener's), or on unix paths derived from this one. */
  listen: { host: string } | { unixBase: string };
  /** tls-creds set: the channel is TLS, its client checked as the main channel's is. */
  tls?: TlsServerData;
  blocks: readonly RamBlock[];
  compression: CompressionMethod;
  uuid: string | undefined;
  /** A channel failed: the incoming migration fails with this message. */
  onError(message: string): void;
}

interface Channel {
  /** Main ↔ channel messages (the thread may host other channels). */
  control: MessagePort;
  /** The tcp port the channel listens on (none for unix). */
  port: number | undefined;
  /** The OS id of the thread the channel runs on. */
  tid: number;
  connected: boolean;
  syncedRound: number;
}

/** The unix socket path of channel `index` for a main channel at `base`. */
export function channelPath(base: string, index: number): string {
  return `${base}.multifd${index}`;
}

/**
 * The destination's multifd channels (QEMU's multifd_recv_*): channels run
 * on worker threads (one each, up to the core count), each with its own
 * listener, chosen over reading every channel on the main thread because it
 * measured faster here (5.1 against 3.5 GB/s for two connections,
 * performance-notes.md). The destination tells the source
 * each channel's port on the return path.
 *
 * It also runs the round barrier: a channel that reached the SYNC of round k
 * waits until every channel has, then all read on.
 */
export class MultifdReceiver {
  private readonly channels: Channel[] = [];
  private readonly stats: Float64Array;
  private roundWaiters: { round: number; resolve: () => void }[] = [];
  private closed = false;

  private constructor(private readonly options: MultifdReceiverOptions) {
    this.stats = new Float64Array(new SharedArrayBuffer(options.channels * CHANNEL_STATS * 8));
  }

  static async start(options: MultifdReceiverOptions): Promise<MultifdReceiver> {
    const receiver = new MultifdReceiver(options);
    const listening: Promise<void>[] = [];
    const { channels: count, workers } = options;
    for (let index = 0; index < count; index++) {
      const data: RecvChannelData = {
        index,
        count,
        listen: 'host' in options.listen ? { host: options.listen.host } : { path: channelPath(options.listen.unixBase, index) },
        tls: options.tls,
        blocks: options.blocks.map((b) => b.shared),
        compression: options.compression,
        uuid: options.uuid,
        stats: receiver.stats.buffer as SharedArrayBuffer,
      };
      const { port1, port2 } = new MessageChannel();
      const channel: Channel = { control: port1, port: undefined, tid: 0, connected: false, syncedRound: -1 };
      receiver.channels.push(channel);
      listening.push(new Promise((resolve, reject) => {
        let listened = false;
        port1.on('message', (m: FromRecvChannel) => {
          if (m.type === 'listening') {
            listened = true;
            channel.port = m.port;
            channel.tid = m.tid;
            resolve();
          } else if (m.type === 'error' && !listened) {
            reject(new Error(m.message));
          } else receiver.onMessage(channel, m);
        });
      }));
      const start: StartRecvChannel = { type: 'start', data, control: port2 };
      workers[index % workers.length]!.postMessage(start, [port2]);
    }
    // A thread that dies (an uncaught error, or ended from outside) takes every channel it hosts with it.
    const died = workers.map((worker, w) => new Promise<never>((_, reject) => {
      const hosted = () => receiver.channels.flatMap((_c, i) => (i % workers.length === w ? [i] : [])).join(', ');
      let dead = false;
      const die = (why: string) => {
        if (dead) return;
        dead = true;
        const message = `multifd channel ${hosted()}: ${why}`;
        reject(new Error(message));
        receiver.fail(message);
      };
      worker.once('error', (err) => die(err.message));
      worker.once('exit', (code) => die(`its thread ended (exit code ${code})`));
    }));
    for (const d of died) d.catch(() => {});
    try {
      await Promise.race([Promise.all(listening), ...died]);
    } catch (err) {
      receiver.close();
      throw err;
    }
    return receiver;
  }

  /** The tcp port of every channel, in channel order (unix channels have none). */
  ports(): number[] {
    return this.channels.map((c) => c.port ?? 0);
  }

  /** Each channel's thread (several channels may share one). */
  threads(): RoleThread[] {
    return this.channels.map((c, index) => ({ index, tid: c.tid }));
  }

  /** Ends the thread that hosts channel `index` at once, as a crash would (fault injection). */
  killThread(index: number): void {
    if (index >= this.channels.length) throw new RangeError(`there is no multifd channel ${index} (${this.channels.length} channels)`);
    void this.options.workers[index % this.options.workers.length]!.terminate();
  }

  /** Channels that have not connected yet. */
  missing(): number[] {
    return this.channels.flatMap((c, i) => (c.connected ? [] : [i]));
  }

  /** The stream header's block order: channels may now read pages. */
  setLayout(order: number[]): void {
    for (const c of this.channels) this.post(c, { type: 'layout', order });
  }

  /** Resolves once every channel has placed every page of `round` (its SYNC). */
  roundDone(round: number): Promise<void> {
    if (this.channels.every((c) => c.syncedRound >= round)) return Promise.resolve();
    return new Promise((resolve) => this.roundWaiters.push({ round, resolve }));
  }

  get bytes(): number {
    return sumStat(this.stats, STAT_BYTES);
  }

  get pages(): number {
    return sumStat(this.stats, STAT_NORMAL_PAGES);
  }

  get zeroPages(): number {
    return sumStat(this.stats, STAT_ZERO_PAGES);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const c of this.channels) {
      c.control.postMessage({ type: 'close' } satisfies ToRecvChannel);
      c.control.close();
    }
    for (const w of this.options.workers) void w.terminate();
  }

  private onMessage(channel: Channel, m: FromRecvChannel): void {
    switch (m.type) {
      case 'connected':
        channel.connected = true;
        return;
      case 'synced': {
        channel.syncedRound = m.round;
        const low = Math.min(...this.channels.map((c) => c.syncedRound));
        if (low === m.round) {
          // Every channel has reached this round's SYNC: all read on.
          for (const c of this.channels) this.post(c, { type: 'proceed', round: m.round });
        }
        this.roundWaiters = this.roundWaiters.filter((w) => (w.round <= low ? (w.resolve(), false) : true));
        return;
      }
      case 'error':
        this.fail(m.message);
        return;
    }
  }

  private fail(message: string): void {
    if (this.closed) return;
    this.options.onError(message);
  }

  private post(channel: Channel, message: ToRecvChannel): void {
    if (!this.closed) channel.control.postMessage(message);
  }
}
