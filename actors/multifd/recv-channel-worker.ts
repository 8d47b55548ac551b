/**
 * One destination multifd channel in its own worker thread, with its own
 * listener (Node 20 cannot hand an accepted socket to another thread): the
 * kernel reads uncompressed pages straight into guest memory; compressed
 * ones are inflated here, off the main thread.
 *
 * The thread starts idle (MultifdRecvPool warms it ahead of the migration)
 * and becomes channel `index` on its `start` message.
 *
 * At each SYNC it stops reading until the main thread says every channel
 * has reached the same round, so a page of round k+1 on one channel can
 * never land before the same page of round k on another (DESIGN rule 2).
 */
import { parentPort } from 'node:worker_threads';
import { RamBlock } from '../guest/ram-block.js';
import { GuestSink } from '../ram/guest-sink.js';
import { MultifdDecoder } from '../../protocols/multifd/decode.js';
import { ChannelKind, HELLO_SIZE } from '../../protocols/hello/constants.js';
import { decodeHello } from '../../protocols/hello/decode.js';
import { IncomingListener, type ByteConsumer, type IncomingConnection } from '../../protocols/transport/incoming.js';
import { tlsServerFrom } from '../objects/migration-tls.js';
import { CHANNEL_STATS, STAT_BYTES, STAT_NORMAL_PAGES, STAT_ZERO_PAGES, type FromRecvChannel, type RecvChannelData, type ToRecvChannel } from './messages.js';

const port = parentPort!;
const post = (m: FromRecvChannel) => port.postMessage(m);

/** Tells the main thread why channel `index` failed, naming the channel unless the error already does. */
function reportError(index: number, err: unknown): void {
  const message = err instanceof Error ? err.message : String(err);
  post({ type: 'error', message: message.startsWith('multifd') ? message : `multifd channel ${index}: ${message}` });
}

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

  constructor(private readonly data: RecvChannelData) {
    this.name = `multifd channel ${data.index}`;
    this.stats = new Float64Array(data.stats, data.index * CHANNEL_STATS * 8, CHANNEL_STATS);
    this.blocks = data.blocks.map((b) => new RamBlock(b));
    this.decoder = new MultifdDecoder({
      sink: this.sink,
      channelId: data.index,
      compression: data.compression,
      onSync: (round: number) => {
        this.waitingRound = round;
        post({ type: 'synced', round });
      },
    });
  }

  /** Reads the channel's hello, checks it, then hands over to the packet decoder. */
  private readonly consumer: ByteConsumer = {
    want: () => (this.helloFilled < HELLO_SIZE ? this.hello.subarray(this.helloFilled) : this.decoder.want()),
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

  /** Becomes the channel `data` describes: listens, then reports its port. */
  static async start(data: RecvChannelData): Promise<RecvChannel> {
    const channel = new RecvChannel(data);
    await channel.listen();
    return channel;
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
      post({ type: 'connected' });
      this.startReading();
    });
    const address = this.listener.socketAddresses()[0];
    post({ type: 'listening', port: address?.type === 'inet' ? Number(address.port) : undefined });
  }

  onMessage(m: Exclude<ToRecvChannel, { type: 'start' }>): void {
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
        port.close();
        return;
    }
  }

  fail(err: unknown): void {
    if (this.failed) return;
    this.failed = true;
    reportError(this.data.index, err);
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

let channel: RecvChannel | undefined;
let starting = false;
port.on('message', (m: ToRecvChannel) => {
  if (m.type !== 'start') return channel?.onMessage(m);
  if (starting) return;
  starting = true;
  // The main thread sends nothing else before this channel reports its port.
  RecvChannel.start(m.data).then(
    (c) => (channel = c),
    (err: unknown) => reportError(m.data.index, err),
  );
});
