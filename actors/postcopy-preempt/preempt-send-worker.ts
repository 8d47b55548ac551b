/**
 * The source's postcopy-preempt thread: it owns the preempt connection,
 * reads the destination's page requests from its way back, checks each as
 * the return path would, and writes the requested pages at once, read
 * straight from guest memory and taken out of the shared migration bitmap
 * so the migration thread's background does not send them again. The
 * migration thread, busy with bulk pages, is never on a request's path.
 */
import { once } from 'node:events';
import type { Socket } from 'node:net';
import { parentPort, workerData } from 'node:worker_threads';
import { ChannelKind } from '../../protocols/hello/constants.js';
import { encodeHello } from '../../protocols/hello/encode.js';
import { ReturnPathDecoder } from '../../protocols/return-path/decode.js';
import type { ReturnPathMessage } from '../../protocols/return-path/messages.js';
import { encodePagesHeader } from '../../protocols/stream/encode.js';
import { CONNECT_TIMEOUT_MS, connectChannel } from '../../protocols/transport/outgoing.js';
import { TARGET_PAGE_SIZE } from '../guest/constants.js';
import { RamBlock } from '../guest/ram-block.js';
import { releasePages } from '../guest/release-pages.js';
import { MigrationBitmap } from '../ram/migration-bitmap.js';
import { ZeroPageCheck } from '../ram/page-runs.js';
import type { PageBatch } from '../ram/page-runs.js';
import { requestedBatches } from '../ram/requested-pages.js';
import { PageRequestCheck } from '../return-path/page-request-check.js';
import {
  CTRL_POSTCOPY, PREEMPT_CTRL, PREEMPT_STATS, STAT_BYTES, STAT_NORMAL_PAGES, STAT_RELEASED_BYTES, STAT_REQUESTS, STAT_ZERO_PAGES,
  type FromPreemptSend, type PreemptSendData, type ToPreemptSend,
} from './messages.js';

const port = parentPort!;
const post = (m: FromPreemptSend) => port.postMessage(m);

class PreemptSendThread {
  private readonly blocks: RamBlock[];
  private readonly zero: ZeroPageCheck[];
  private readonly bitmap: MigrationBitmap;
  private readonly ctrl: Int32Array;
  private readonly stats: Float64Array;
  private readonly requests: PageRequestCheck;
  private readonly decoder = new ReturnPathDecoder({ onMessage: (m) => this.onRequest(m) });
  private socket: Socket | undefined;
  private finishing = false;
  private failed = false;

  constructor(private readonly data: PreemptSendData) {
    this.blocks = data.blocks.map((b) => new RamBlock(b));
    this.zero = this.blocks.map((b) => new ZeroPageCheck(b));
    this.bitmap = new MigrationBitmap(data.bitmap);
    this.ctrl = new Int32Array(data.ctrl, 0, PREEMPT_CTRL);
    this.stats = new Float64Array(data.stats, 0, PREEMPT_STATS);
    this.requests = new PageRequestCheck(this.blocks, TARGET_PAGE_SIZE);
  }

  async connect(): Promise<void> {
    const a = this.data.address;
    const socket = await connectChannel('path' in a ? { scheme: 'unix', path: a.path } : { scheme: 'tcp', host: a.host, port: a.port }, CONNECT_TIMEOUT_MS, this.data.tls);
    this.socket = socket;
    socket.on('data', (chunk: Buffer) => {
      if (this.failed) return;
      try {
        this.decoder.push(chunk);
      } catch (err) {
        this.fail(err);
      }
    });
    socket.on('end', () => {
      if (!this.finishing) this.fail(new Error('the destination closed the postcopy-preempt channel'));
    });
    socket.on('error', (err) => this.fail(new Error(`postcopy-preempt channel: ${err.message}`)));
    socket.on('close', () => {
      if (!this.finishing) return this.fail(new Error('the postcopy-preempt channel was closed'));
      post({ type: 'peer-closed' });
    });
    const { uuid } = this.data;
    const hello = encodeHello({ kind: ChannelKind.POSTCOPY_PREEMPT, channelId: 0, channelCount: 1, ...(uuid ? { uuid } : {}) });
    socket.write(hello);
    this.stats[STAT_BYTES]! += hello.length;
    post({ type: 'connected' });
  }

  async onMessage(m: ToPreemptSend): Promise<void> {
    switch (m.type) {
      case 'finish': {
        this.finishing = true;
        const socket = this.socket!;
        socket.end();
        if (!socket.writableFinished) await once(socket, 'finish').catch(() => {});
        post({ type: 'finished' });
        return;
      }
      case 'close':
        this.finishing = true;
        this.socket?.destroy();
        port.close();
        return;
    }
  }

  /** One message from the destination: only page requests travel this way. */
  private onRequest(message: ReturnPathMessage): void {
    if (message.type !== 'req-pages-id' && message.type !== 'req-pages') {
      return this.fail(new Error(`Received '${message.type}' on the postcopy-preempt channel, which carries page requests only`));
    }
    const request = this.requests.check(message);
    if (request instanceof Error) return this.fail(request);
    if (Atomics.load(this.ctrl, CTRL_POSTCOPY) === 0) return this.fail(new Error('The destination asked for pages before postcopy started'));
    this.stats[STAT_REQUESTS]!++;
    // Once every page has gone out, a request names a page already on its way.
    if (this.finishing) return;
    const { resendSentPages } = this.data;
    for (const batch of requestedBatches(this.bitmap, this.blocks[request.block]!, this.zero[request.block]!, request, resendSentPages)) this.send(batch);
    post({ type: 'served', message: message.type });
  }

  /** One PAGES frame in one writev; with release-ram its memory goes once the kernel has it. */
  private send(batch: PageBatch): void {
    const socket = this.socket!;
    const header = encodePagesHeader(batch.block, batch.runs);
    const written = this.data.releaseRam && batch.data.length > 0 ? () => this.release(batch) : undefined;
    socket.cork();
    socket.write(header);
    let bytes = header.length;
    batch.data.forEach((view, i) => {
      socket.write(view, i === batch.data.length - 1 ? written : undefined);
      bytes += view.length;
    });
    socket.uncork();
    this.stats[STAT_BYTES]! += bytes;
    this.stats[STAT_NORMAL_PAGES]! += batch.normalPages;
    this.stats[STAT_ZERO_PAGES]! += batch.zeroPages;
  }

  private release(batch: PageBatch): void {
    for (const view of batch.data) this.stats[STAT_RELEASED_BYTES]! += releasePages(view);
  }

  fail(err: unknown): void {
    if (this.failed) return;
    this.failed = true;
    const message = err instanceof Error ? err.message : String(err);
    post({ type: 'error', message });
  }
}

const thread = new PreemptSendThread(workerData as PreemptSendData);
port.on('message', (m: ToPreemptSend) => void thread.onMessage(m));
thread.connect().catch((err: Error) => thread.fail(new Error(`postcopy-preempt channel: ${err.message}`)));
