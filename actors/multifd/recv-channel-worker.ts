/**
 * Destination multifd channels in a worker thread, each with its own
 * listener (Node 20 cannot hand an accepted socket to another thread): the
 * kernel reads uncompressed pages straight into guest memory (short runs
 * read ahead and copied in); compressed ones are inflated here, off the main
 * thread.
 *
 * The thread starts idle (MultifdRecvPool warms it ahead of the migration)
 * and hosts a channel for each `start` message it is sent: one, or several
 * when there are more channels than cores (channel-threads.ts).
 *
 * At each SYNC a channel stops reading until the main thread says every
 * channel has reached the same round, so a page of round k+1 on one channel
 * can never land before the same page of round k on another (DESIGN rule 2).
 */
import { parentPort, type MessagePort } from 'node:worker_threads';
import { RamBlock } from '../guest/ram-block.js';
import { GuestSink } from '../ram/guest-sink.js';
import { MultifdDecoder } from '../../protocols/multifd/decode.js';
import { ChannelKind, HELLO_SIZE } from '../../protocols/hello/constants.js';
import { decodeHello } from '../../protocols/hello/decode.js';
import { IncomingListener, type ByteConsumer, type IncomingConnection } from '../../protocols/transport/incoming.js';
import { tlsServerFrom } from '../objects/migration-tls.js';
import { osThreadId } from '../threads/os-thread-id.js';
import {
  CHANNEL_STATS, STAT_BYTES, STAT_NORMAL_PAGES, STAT_ZERO_PAGES,
  type FromRecvChannel, type RecvChannelData, type StartRecvChannel, type ToRecvChannel,
} from './messages.js';

class RecvChannel {
  private readonly name: string;
  private readonly stats: Float64Array;
  private readonly blocks: RamBlock[];
  private readonly sink = new GuestSink([]);
  private readonly decoder: MultifdDecoder;
  private readonly hello = new Uint8Array(HELLO_SIZE);
  private helloFilled = 0;
  private listener: IncomingListener | undefined;
  private connection: IncomingConnection | undefined;
  private layoutKnown = false;
  private waitingRound: number | undefined;
  private failed = false;

  constructor(
    private readonly data: RecvChannelData,
    private readonly control: MessagePort,
  ) {
    this.name = `multifd channel ${data.index}`;
    this.stats = new Float64Array(data.stats, data.index * CHANNEL_STATS * 8, CHANNEL_STATS);
    this.blocks = data.blocks.map((b) => new RamBlock(b));
    this.decoder = new MultifdDecoder({
      sink: this.sink,
      channelId: data.index,
      compression: data.compression,
      onSync: (round: number) => {
        this.waitingRound = round;
        this.post({ type: 'synced', round });
      },
    });
  }

  /** Reads the channel's hello, checks it, then hands over to the packet decoder. */
  private readonly consumer: ByteConsumer = {
    want: (readAhead) => (this.helloFilled < HELLO_SIZE ? this.hello.subarray(this.helloFilled) : this.decoder.want(readAhead)),
    commit: (n) => {
      this.stats[STAT_BYTES]! += n;
      if (this.helloFilled < HELLO_SIZE) {
        this.helloFilled += n;
        if (this.helloFilled === HELLO_SIZE) this.checkHello();
        return true;
      }
      this.decoder.commit(n);
      this.stats[STAT_NORMAL_PAGES] = this.sink.pageCount;
      this.stats[STAT_ZERO_PAGES] = this.sink.zeroPageCount;
      // Pause at a SYNC until every channel has reached it.
      return this.waitingRound === undefined;
    },
  };

  /** Becomes the channel `start` describes: listens, then reports its port, and takes the main thread's messages. */
  static async start({ data, control }: StartRecvChannel): Promise<void> {
    const channel = new RecvChannel(data, control);
    try {
      await channel.listen();
    } catch (err) {
      return channel.fail(err);
    }
    control.on('message', (m: ToRecvChannel) => channel.onMessage(m));
  }

  private post(m: FromRecvChannel): void {
    this.control.postMessage(m);
  }

  private async listen(): Promise<void> {
    const data = this.data;
    this.listener = await IncomingListener.listen('path' in data.listen
      ? { scheme: 'unix', path: data.listen.path }
      : { scheme: 'tcp', host: data.listen.host, port: 0 }, { tls: data.tls && tlsServerFrom(data.tls) });
    this.listener.on('rejected', (err) => this.fail(err));
    this.listener.on('connection', (c) => {
      if (this.connection) {
        c.close();
        return this.fail(new Error('a second connection arrived for the same channel'));
      }
      this.connection = c;
      this.listener!.stopListening();
      this.post({ type: 'connected' });
      this.startReading();
    });
    const address = this.listener.socketAddresses()[0];
    this.post({ type: 'listening', port: address?.type === 'inet' ? Number(address.port) : undefined, tid: osThreadId() });
  }

  private onMessage(m: ToRecvChannel): void {
    switch (m.type) {
      case 'layout':
        this.sink.setBlocks(m.order.map((i) => this.blocks[i]!));
        this.decoder.setLayout({ blocks: m.order.map((i) => ({ pageCount: this.blocks[i]!.pageCount })) });
        this.layoutKnown = true;
        this.startReading();
        return;
      case 'proceed':
        if (this.waitingRound === m.round) {
          this.waitingRound = undefined;
          this.connection?.resume();
        }
        return;
      case 'close':
        this.connection?.close();
        this.listener?.close();
        this.control.close();
        return;
    }
  }

  /** Tells the main thread why this channel failed, naming the channel unless the error already does. */
  private fail(err: unknown): void {
    if (this.failed) return;
    this.failed = true;
    const message = err instanceof Error ? err.message : String(err);
    this.post({ type: 'error', message: message.startsWith('multifd') ? message : `${this.name}: ${message}` });
  }

  private checkHello(): void {
    const h = decodeHello(this.hello);
    const { index, count, uuid } = this.data;
    if (h.kind !== ChannelKind.MULTIFD) throw new Error(`${this.name}: expected a multifd channel, got channel kind ${h.kind}`);
    if (h.channelId !== index) throw new Error(`${this.name}: the connection says it is channel ${h.channelId}`);
    if (h.channelCount !== count) {
      throw new Error(`${this.name}: the source uses ${h.channelCount} multifd channels but this destination expects ${count} (set multifd-channels alike on both sides)`);
    }
    if (uuid && h.uuid && h.uuid !== uuid) {
      throw new Error(`multifd: received uuid '${h.uuid}' and expected uuid '${uuid}' for channel ${index}`);
    }
  }

  private startReading(): void {
    if (!this.connection || !this.layoutKnown) return;
    this.connection.read(this.consumer, {
      end: () => {
        try {
          this.decoder.end();
        } catch (err) {
          this.fail(err);
        }
      },
      error: (err) => this.fail(err),
    });
  }
}

parentPort!.on('message', (m: StartRecvChannel) => void RecvChannel.start(m));
