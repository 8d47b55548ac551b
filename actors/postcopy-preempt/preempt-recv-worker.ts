/**
 * The destination's postcopy-preempt thread (QEMU's postcopy fault thread
 * and preempt receive thread in one): from POSTCOPY_LISTEN on it takes the
 * guest's page faults, writes each request on the preempt connection, reads
 * the requested pages back from it and places them in guest RAM, waking the
 * vCPU. The main thread, busy with bulk pages, is never on this path, so a
 * fault waits for this thread's event loop only, which has little else to do.
 *
 * It listens on its own port, as multifd channels do (Node 20 cannot hand
 * an accepted socket to another thread); the return path tells the source
 * where.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { ChannelKind } from '../../protocols/hello/constants.js';
import { encodeReturnPath } from '../../protocols/return-path/encode.js';
import type { ReqPagesIdMessage, ReqPagesMessage } from '../../protocols/return-path/messages.js';
import { StreamDecoder } from '../../protocols/stream/decode.js';
import { IncomingListener, type IncomingConnection } from '../../protocols/transport/incoming.js';
import { tlsServerFrom } from '../objects/migration-tls.js';
import { FaultQueue } from '../guest/fault-queue.js';
import { RamBlock } from '../guest/ram-block.js';
import { PageRequester } from '../return-path/page-requester.js';
import { GuestSink } from '../ram/guest-sink.js';
import {
  PREEMPT_STATS, STAT_BYTES, STAT_NORMAL_PAGES, STAT_REQUESTS, STAT_ZERO_PAGES,
  type FromPreemptRecv, type PreemptRecvData, type ToPreemptRecv,
} from './messages.js';

const port = parentPort!;
const post = (m: FromPreemptRecv) => port.postMessage(m);

class PreemptRecvThread {
  private readonly blocks: RamBlock[];
  private readonly stats: Float64Array;
  private readonly sink = new GuestSink([]);
  private readonly decoder: StreamDecoder;
  private readonly requester: PageRequester;
  private listener: IncomingListener | undefined;
  private connection: IncomingConnection | undefined;
  private layoutKnown = false;
  private failed = false;

  constructor(private readonly data: PreemptRecvData) {
    this.blocks = data.blocks.map((b) => new RamBlock(b));
    this.stats = new Float64Array(data.stats, 0, PREEMPT_STATS);
    this.requester = new PageRequester(new FaultQueue(new Int32Array(data.ctrl), data.smp), this.blocks, (m) => this.sendRequest(m));
    // Pages on this connection are requested ones: placed whole, and after each the faults are looked at again.
    this.sink.startPostcopy(() => this.requester.poll());
    this.decoder = new StreamDecoder({
      sink: this.sink,
      onHello: (hello) => {
        if (hello.kind !== ChannelKind.POSTCOPY_PREEMPT) throw new Error(`expected the postcopy-preempt channel, got channel kind ${hello.kind}`);
        if (data.uuid && hello.uuid && hello.uuid !== data.uuid) {
          throw new Error(`postcopy-preempt: received uuid '${hello.uuid}' and expected uuid '${data.uuid}'`);
        }
      },
      onMessage: (m) => {
        throw new Error(`unexpected '${m.type}' message on the postcopy-preempt channel`);
      },
    });
  }

  async listen(): Promise<void> {
    const where = this.data.listen;
    const tls = this.data.tls && tlsServerFrom(this.data.tls);
    this.listener = await IncomingListener.listen('path' in where ? { scheme: 'unix', path: where.path } : { scheme: 'tcp', host: where.host, port: 0 }, { tls });
    this.listener.on('rejected', (err) => this.fail(new Error(`postcopy-preempt channel: ${err.message}`)));
    this.listener.on('connection', (c) => {
      if (this.connection) {
        c.close();
        return this.fail(new Error('postcopy-preempt: a second connection arrived'));
      }
      this.connection = c;
      this.listener!.stopListening();
      post({ type: 'connected' });
      this.startReading();
    });
    this.listener.on('error', (err) => this.fail(err));
    const address = this.listener.socketAddresses()[0];
    post({ type: 'listening', port: address?.type === 'inet' ? Number(address.port) : undefined });
  }

  onMessage(m: ToPreemptRecv): void {
    switch (m.type) {
      case 'layout': {
        const order = m.order.map((i) => this.blocks[i]!);
        this.sink.setBlocks(order);
        this.decoder.setLayout({ blocks: order.map((b) => ({ pageCount: b.pageCount })) });
        this.layoutKnown = true;
        this.startReading();
        return;
      }
      case 'listen':
        this.requester.start();
        return;
      case 'stop':
        this.requester.stop();
        return;
      case 'close':
        this.requester.stop();
        this.connection?.close();
        this.listener?.close();
        port.close();
        return;
    }
  }

  /** A request on the preempt connection's way back; false while there is no connection to take it. */
  private sendRequest(message: ReqPagesIdMessage | ReqPagesMessage): boolean {
    const reverse = this.connection?.reverse;
    if (!reverse || reverse.destroyed) return false;
    reverse.write(encodeReturnPath(message));
    this.stats[STAT_REQUESTS]!++;
    post({ type: 'requested', message: message.type });
    return true;
  }

  private startReading(): void {
    const connection = this.connection;
    if (!connection || !this.layoutKnown) return;
    connection.read(
      {
        want: (readAhead) => this.decoder.want(readAhead),
        commit: (n) => {
          this.decoder.commit(n);
          this.stats[STAT_BYTES] = this.decoder.bytesDecoded;
          this.stats[STAT_NORMAL_PAGES] = this.sink.pageCount;
          this.stats[STAT_ZERO_PAGES] = this.sink.zeroPageCount;
        },
      },
      {
        end: () => {
          try {
            this.decoder.end();
          } catch (err) {
            return this.fail(err);
          }
          post({ type: 'ended' });
        },
        error: (err) => this.fail(err),
      },
    );
  }

  fail(err: unknown): void {
    if (this.failed) return;
    this.failed = true;
    this.requester.stop();
    const message = err instanceof Error ? err.message : String(err);
    post({ type: 'error', message: message.startsWith('postcopy-preempt') ? message : `postcopy-preempt channel: ${message}` });
  }
}

const thread = new PreemptRecvThread(workerData as PreemptRecvData);
port.on('message', (m: ToPreemptRecv) => thread.onMessage(m));
thread.listen().catch((err: unknown) => thread.fail(err));
