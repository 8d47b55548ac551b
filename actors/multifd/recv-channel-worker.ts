/**
 * One destination multifd channel in its own worker thread, with its own
 * listener (Node 20 cannot hand an accepted socket to another thread): the
 * kernel reads uncompressed pages straight into guest memory; compressed
 * ones are inflated here, off the main thread.
 *
 * At each SYNC it stops reading until the main thread says every channel
 * has reached the same round, so a page of round k+1 on one channel can
 * never land before the same page of round k on another (DESIGN rule 2).
 */
import { parentPort, workerData } from 'node:worker_threads';
import { RamBlock } from '../guest/ram-block.js';
import { GuestSink } from '../migration/guest-sink.js';
import { MultifdDecoder } from '../../protocols/multifd/decode.js';
import { ready } from '../../protocols/multifd/compression.js';
import { ChannelKind, HELLO_SIZE } from '../../protocols/stream/constants.js';
import { decodeHello } from '../../protocols/stream/decode.js';
import { IncomingListener, type ByteConsumer, type IncomingConnection } from '../../protocols/transport/incoming.js';
import { CHANNEL_STATS, STAT_BYTES, STAT_NORMAL_PAGES, STAT_ZERO_PAGES, type FromRecvChannel, type RecvChannelData, type ToRecvChannel } from './messages.js';

const data = workerData as RecvChannelData;
const port = parentPort!;
const name = `multifd channel ${data.index}`;
const post = (m: FromRecvChannel) => port.postMessage(m);
const stats = new Float64Array(data.stats, data.index * CHANNEL_STATS * 8, CHANNEL_STATS);
const blocks = data.blocks.map((b) => new RamBlock(b));
const sink = new GuestSink([]);
// zstd's WASM loads once per thread, before any decoder is made.
await ready();

let listener: IncomingListener | undefined;
let connection: IncomingConnection | undefined;
let layoutKnown = false;
let waitingRound: number | undefined;
let failed = false;

const decoder = new MultifdDecoder({
  sink,
  channelId: data.index,
  compression: data.compression,
  onSync: (round: number) => {
    waitingRound = round;
    post({ type: 'synced', round });
  },
});

/** Reads the channel's hello, checks it, then hands over to the packet decoder. */
const hello = new Uint8Array(HELLO_SIZE);
let helloFilled = 0;
const consumer: ByteConsumer = {
  want: () => (helloFilled < HELLO_SIZE ? hello.subarray(helloFilled) : decoder.want()),
  commit: (n) => {
    stats[STAT_BYTES]! += n;
    if (helloFilled < HELLO_SIZE) {
      helloFilled += n;
      if (helloFilled === HELLO_SIZE) checkHello();
      return true;
    }
    decoder.commit(n);
    stats[STAT_NORMAL_PAGES] = sink.pageCount;
    stats[STAT_ZERO_PAGES] = sink.zeroPageCount;
    // Pause at a SYNC until every channel has reached it.
    return waitingRound === undefined;
  },
};

function checkHello(): void {
  const h = decodeHello(hello);
  if (h.kind !== ChannelKind.MULTIFD) throw new Error(`${name}: expected a multifd channel, got channel kind ${h.kind}`);
  if (h.channelId !== data.index) throw new Error(`${name}: the connection says it is channel ${h.channelId}`);
  if (h.channelCount !== data.count) {
    throw new Error(`${name}: the source uses ${h.channelCount} multifd channels but this destination expects ${data.count} (set multifd-channels alike on both sides)`);
  }
  if (data.uuid && h.uuid && h.uuid !== data.uuid) {
    throw new Error(`multifd: received uuid '${h.uuid}' and expected uuid '${data.uuid}' for channel ${data.index}`);
  }
}

function fail(err: unknown): void {
  if (failed) return;
  failed = true;
  const message = err instanceof Error ? err.message : String(err);
  post({ type: 'error', message: message.startsWith('multifd') ? message : `${name}: ${message}` });
}

function startReading(): void {
  if (!connection || !layoutKnown) return;
  connection.read(consumer, {
    end: () => {
      try {
        decoder.end();
      } catch (err) {
        fail(err);
      }
    },
    error: fail,
  });
}

port.on('message', (m: ToRecvChannel) => {
  switch (m.type) {
    case 'layout':
      sink.setBlocks(m.order.map((i) => blocks[i]!));
      decoder.setLayout({ blocks: m.order.map((i) => ({ pageCount: blocks[i]!.pageCount })) });
      layoutKnown = true;
      startReading();
      return;
    case 'proceed':
      if (waitingRound === m.round) {
        waitingRound = undefined;
        connection?.resume();
      }
      return;
    case 'close':
      connection?.close();
      listener?.close();
      port.close();
      return;
  }
});

listener = await IncomingListener.listen('path' in data.listen
  ? { scheme: 'unix', path: data.listen.path }
  : { scheme: 'tcp', host: data.listen.host, port: 0 });
listener.on('connection', (c) => {
  if (connection) {
    c.close();
    return fail(new Error('a second connection arrived for the same channel'));
  }
  connection = c;
  listener!.stopListening();
  post({ type: 'connected' });
  startReading();
});
const address = listener.socketAddresses()[0];
post({ type: 'listening', port: address?.type === 'inet' ? Number(address.port) : undefined });
