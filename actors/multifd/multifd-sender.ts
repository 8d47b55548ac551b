import { MessageChannel, type MessagePort, type Worker } from 'node:worker_threads';
import type { MultifdSendPool } from './send-pool.js';
import { TARGET_PAGE_SIZE } from '../guest/constants.js';
import type { RamBlock } from '../guest/ram-block.js';
import type { MultifdCompressionStats } from '../ram/ram-stats.js';
import { leastBusy, type ChannelPicker } from './channel-picker.js';
import type { RoleThread } from '../threads/thread-role.js';
import type { CompressionMethod } from '../../protocols/multifd/constants.js';
import type { TlsClient } from '../../protocols/tls/session.js';
import {
  CHANNEL_STATS, STAT_BYTES, STAT_COMPRESSED_BYTES, STAT_COMPRESSED_PAGES, STAT_NORMAL_PAGES, STAT_RAW_PAGES, STAT_ZERO_PAGES, sumStat,
  type ChannelAddress, type FromSendChannel, type SendChannelTask, type ToSendChannel,
} from './messages.js';

export interface MultifdSenderOptions {
  /** Warm workers, one per channel; torn down if the migration is aborted. */
  pool: MultifdSendPool;
  /** Where each channel connects, one address per channel. */
  addresses: ChannelAddress[];
  /** tls-creds set: the channel is TLS (the same settings as the main channel's). */
  tls?: TlsClient;
  uuid: string | undefined;
  blocks: readonly RamBlock[];
  compression: CompressionMethod;
  level: number;
  picker?: ChannelPicker;
}

/** Batches a channel may have queued before the migration waits: keeps every socket busy, bounds memory. */
const MAX_IN_FLIGHT = 4;

interface Channel {
  port: MessagePort;
  /** The worker's OS thread id, once it connected. */
  tid?: number;
  /** The pool thread that hosts the channel, once it connected, and what its exit does (removed when the channels close: the pool's threads outlive the migration). */
  thread?: Worker;
  onExit?: (code: number) => void;
  /** The page bytes of each batch queued on the channel and not yet written, oldest first (their count is its load). */
  queued: number[];
  syncedRound: number;
}

/**
 * The source's multifd channels (QEMU's multifd_send_*): a Piscina pool with
 * one worker per channel, each running one long-lived task that owns its
 * connection. The migration hands out page ranges; the workers do the rest.
 */
export class MultifdSender {
  private readonly channels: Channel[] = [];
  private readonly tasks: Promise<unknown>[] = [];
  private readonly statsBuffer: Float64Array;
  private readonly picker: ChannelPicker;
  private wake: (() => void) | undefined;
  /** Rejects with the first channel failure; every wait races with it. */
  readonly failed: Promise<never>;
  private fail!: (err: Error) => void;
  private closed = false;
  private finished = false;
  /** What progress() has reported so far. */
  private bytesReported = 0;
  private normalPagesReported = 0;
  private charged = 0;

  private constructor(private readonly options: MultifdSenderOptions) {
    this.picker = options.picker ?? leastBusy;
    this.statsBuffer = new Float64Array(new SharedArrayBuffer(options.addresses.length * CHANNEL_STATS * 8));
    this.failed = new Promise<never>((_, reject) => (this.fail = reject));
    this.failed.catch(() => {});
  }

  /** Starts every channel and resolves once all are connected and have sent their hello. */
  static async start(options: MultifdSenderOptions): Promise<MultifdSender> {
    const sender = new MultifdSender(options);
    const connected: Promise<void>[] = [];
    for (let index = 0; index < options.addresses.length; index++) {
      const { port1, port2 } = new MessageChannel();
      const channel: Channel = { port: port1, queued: [], syncedRound: -1 };
      sender.channels.push(channel);
      connected.push(new Promise((resolve) => port1.once('message', () => resolve())));
      port1.on('message', (m: FromSendChannel) => sender.onMessage(channel, m));
      const task: SendChannelTask = {
        index,
        count: options.addresses.length,
        address: options.addresses[index]!,
        tls: options.tls,
        uuid: options.uuid,
        blocks: options.blocks.map((b) => b.shared),
        compression: options.compression,
        level: options.level,
        control: port2,
        stats: sender.statsBuffer.buffer as SharedArrayBuffer,
      };
      const run = options.pool.pool.run(task, { name: 'sendChannel', transferList: [port2] });
      run.catch((err: Error) => sender.fail(err));
      sender.tasks.push(run);
    }
    try {
      await Promise.race([Promise.all(connected), sender.failed]);
    } catch (err) {
      await sender.abort();
      throw err;
    }
    return sender;
  }

  /**
   * Queues a batch of page ranges on the least busy channel, waiting while
   * all are full. `bytes`: what its pages weigh, counted in `queuedBytes`
   * until the channel has written the batch.
   */
  async sendPages(block: number, round: number, ranges: Uint32Array, bytes: number): Promise<void> {
    for (;;) {
      const i = this.picker(this.channels.map((c) => c.queued.length), MAX_IN_FLIGHT);
      if (i !== undefined) {
        const channel = this.channels[i]!;
        channel.queued.push(bytes);
        this.post(channel, { type: 'pages', block, round, ranges });
        return;
      }
      await Promise.race([new Promise<void>((resolve) => (this.wake = resolve)), this.failed]);
    }
  }

  /**
   * Ends `round` on every channel (SYNC packets) and resolves once every
   * channel has written its SYNC: no page of the next round leaves before
   * (DESIGN rule 2).
   */
  async sync(round: number): Promise<void> {
    for (const c of this.channels) this.post(c, { type: 'sync', round });
    while (this.channels.some((c) => c.syncedRound < round)) {
      await Promise.race([new Promise<void>((resolve) => (this.wake = resolve)), this.failed]);
    }
  }

  /** The weight of the batches handed to the channels and not yet written. */
  private get queuedBytes(): number {
    let sum = 0;
    for (const c of this.channels) for (const b of c.queued) sum += b;
    return sum;
  }

  /** multifd-bytes, and the page counts the channels sent. */
  get bytes(): number {
    return sumStat(this.statsBuffer, STAT_BYTES);
  }

  get normalPages(): number {
    return sumStat(this.statsBuffer, STAT_NORMAL_PAGES);
  }

  get zeroPages(): number {
    return sumStat(this.statsBuffer, STAT_ZERO_PAGES);
  }

  /** What went through the compressors and what was sent raw; undefined when the channels do not compress. */
  get compression(): MultifdCompressionStats | undefined {
    if (this.options.compression === 'none') return undefined;
    return {
      compressedPages: sumStat(this.statsBuffer, STAT_COMPRESSED_PAGES),
      compressedBytes: sumStat(this.statsBuffer, STAT_COMPRESSED_BYTES),
      rawPages: sumStat(this.statsBuffer, STAT_RAW_PAGES),
    };
  }

  /**
   * What the channels moved since the last call, for the migration's
   * accounting: bytes written, the page bytes they cleared, and what
   * max-bandwidth is to be charged.
   *
   * The channels write at full speed once they hold a batch, so
   * max-bandwidth is charged as batches are handed out (by their page
   * bytes) and trued up to what was written once they are; charged only as
   * written, the batches queued on every channel would leave in one burst.
   * Compressed, the wire carries far fewer bytes than the pages it clears,
   * and the switchover threshold weighs pages, so it counts page bytes.
   */
  progress(): { wireBytes: number; clearedBytes: number; charge: number } {
    const total = this.bytes;
    const normalPages = this.normalPages;
    const wireBytes = total - this.bytesReported;
    const pageBytes = (normalPages - this.normalPagesReported) * TARGET_PAGE_SIZE;
    this.bytesReported = total;
    this.normalPagesReported = normalPages;
    const due = total + this.queuedBytes;
    const charge = due - this.charged;
    this.charged = due;
    return { wireBytes, clearedBytes: this.options.compression === 'none' ? wireBytes : pageBytes, charge };
  }

  /** Ends every channel cleanly; the warm workers stay for the next migration. */
  async finish(): Promise<void> {
    for (const c of this.channels) this.post(c, { type: 'end' });
    await Promise.race([Promise.all(this.tasks), this.failed]);
    this.finished = true;
    this.closePorts();
  }

  /**
   * Tears everything down at once (cancel, failure): the workers and their
   * sockets go. After a clean finish there is nothing to tear down.
   */
  async abort(): Promise<void> {
    if (this.finished) return;
    this.closePorts();
    await this.options.pool.destroy();
  }

  private closePorts(): void {
    if (this.closed) return;
    this.closed = true;
    for (const c of this.channels) {
      c.port.close();
      if (c.onExit) c.thread?.off('exit', c.onExit);
    }
  }

  private post(channel: Channel, message: ToSendChannel): void {
    channel.port.postMessage(message);
  }

  /** Each channel's thread, as query-migrationthreads lists it (QEMU names them multifdsend_N). */
  threads(): { name: string; tid: number }[] {
    return this.channelThreads().map(({ index, tid }) => ({ name: `multifdsend_${index}`, tid }));
  }

  /** Each connected channel's thread (several channels may share one). */
  channelThreads(): RoleThread[] {
    return this.channels.flatMap((c, index) => (c.tid === undefined ? [] : [{ index, tid: c.tid }]));
  }

  /**
   * Notes the channel's thread. A thread that ends under a migration takes
   * its channels with it: the migration fails saying so (Piscina would
   * only say a worker exited), unless the channels were being closed.
   */
  private connected(channel: Channel, tid: number, threadId: number): void {
    channel.tid = tid;
    channel.thread = this.options.pool.pool.threads.find((t) => t.threadId === threadId);
    channel.onExit = (code: number) => {
      const hosted = this.channels.flatMap((c, i) => (c.thread === channel.thread ? [i] : [])).join(', ');
      this.fail(new Error(`multifd channel ${hosted}: its thread ended (exit code ${code})`));
    };
    channel.thread?.once('exit', channel.onExit);
  }

  /** Ends the thread that hosts channel `index` at once, as a crash would (fault injection). */
  killThread(index: number): void {
    const thread = this.channels[index]?.thread;
    if (thread === undefined) throw new RangeError(`there is no connected multifd channel ${index} (${this.channels.length} channels)`);
    void thread.terminate();
  }

  private onMessage(channel: Channel, m: FromSendChannel): void {
    if (m.type === 'connected') return this.connected(channel, m.tid, m.threadId);
    if (m.type === 'sent') channel.queued.shift();
    else if (m.type === 'synced') channel.syncedRound = m.round;
    else return;
    const wake = this.wake;
    this.wake = undefined;
    wake?.();
  }
}
