/**
 * The postcopy-preempt threads on their own, with real worker threads, real
 * sockets on 127.0.0.1 and real guest memory; the test plays the peer.
 *
 * Source (PreemptSender): the hello it opens with; page requests refused
 * before the switch, and bad input after it (a non-request, misaligned, an
 * unknown type, REQ_PAGES with no block named); requested pages served from
 * guest memory and taken out of the migration bitmap, resent or not, zero
 * pages as zero runs; the destination hanging up; finish() and drained();
 * release-ram giving a served page's memory back.
 *
 * Destination (PreemptReceiver): its port; a wrong channel kind and a
 * control message refused; a PAGES frame placed in guest RAM, unless
 * another thread is placing that page; the end of the channel.
 */
import { expect } from 'chai';
import { once } from 'node:events';
import net from 'node:net';
import { TARGET_PAGE_SIZE } from '../actors/guest/constants.js';
import { Guest } from '../actors/guest/guest.js';
import { RamBlock } from '../actors/guest/ram-block.js';
import { releaseUnavailable } from '../actors/guest/release-pages.js';
import { PreemptReceiver } from '../actors/postcopy-preempt/preempt-receiver.js';
import { PreemptSender, type PreemptProgress } from '../actors/postcopy-preempt/preempt-sender.js';
import { MigrationBitmap } from '../actors/ram/migration-bitmap.js';
import { ChannelKind, HELLO_SIZE } from '../protocols/hello/constants.js';
import { decodeHello } from '../protocols/hello/decode.js';
import { encodeHello } from '../protocols/hello/encode.js';
import type { PageSink } from '../protocols/page-runs/types.js';
import { encodeReturnPath } from '../protocols/return-path/encode.js';
import { StreamDecoder } from '../protocols/stream/decode.js';
import { encodeControl, encodePagesHeader } from '../protocols/stream/encode.js';

const PAGE = TARGET_PAGE_SIZE;
const RAM = 8 << 20;
/** A page the source guest wrote, and one it never touched. */
const WRITTEN = 5;
const NEVER_WRITTEN = 9;
const WAIT_MS = 5000;

// ---------------------------------------------------------------- helpers

/** Undone after each test of this file (see the hooks in its describes), last first. */
const cleanups: (() => unknown)[] = [];
async function cleanUp(): Promise<void> {
  for (const undo of cleanups.splice(0).reverse()) await undo();
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function waitFor(what: string, done: () => boolean, ms = WAIT_MS): Promise<void> {
  for (const deadline = Date.now() + ms; !done(); await sleep(10)) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
  }
}

async function within<T>(what: string, promise: Promise<T>, ms = WAIT_MS): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms)));
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Known, non-uniform bytes for `page`. */
function pattern(page: number): Uint8Array {
  return Uint8Array.from({ length: PAGE }, (_, i) => (i * 7 + page * 13 + 1) & 0xff);
}

const isZero = (bytes: Uint8Array) => bytes.every((b) => b === 0);

const preemptHello = () => encodeHello({ kind: ChannelKind.POSTCOPY_PREEMPT, channelId: 0, channelCount: 1 });

/** A REQ_PAGES_ID for `pages` pages of pc.ram from `page`. */
const request = (page: number, pages = 1) => encodeReturnPath({ type: 'req-pages-id', block: 'pc.ram', start: page * PAGE, len: pages * PAGE });

/** Where the fake destination's decoder lands pages: a scratch copy of the block, and what arrived. */
class RecordingSink implements PageSink {
  readonly memory: Uint8Array;
  readonly loaded: { block: number; first: number; count: number }[] = [];
  readonly zero: { block: number; first: number; count: number }[] = [];

  constructor(pageCount: number) {
    this.memory = new Uint8Array(pageCount * PAGE);
  }

  pageView(_block: number, first: number, count: number): Uint8Array {
    return this.memory.subarray(first * PAGE, (first + count) * PAGE);
  }

  pagesLoaded(block: number, first: number, count: number): void {
    this.loaded.push({ block, first, count });
  }

  zeroPages(block: number, first: number, count: number): void {
    this.zero.push({ block, first, count });
  }

  page(page: number): Uint8Array {
    return this.memory.subarray(page * PAGE, (page + 1) * PAGE);
  }
}

/** The destination end of the source's preempt connection: decodes what arrives as a stream (hello, then PAGES frames). */
class FakeDestination {
  readonly sink: RecordingSink;
  readonly decoder: StreamDecoder;
  readonly received: Buffer[] = [];
  ended = false;
  decodeError: unknown;
  private readonly sockets: net.Socket[] = [];
  private constructor(
    readonly server: net.Server,
    pageCount: number,
  ) {
    this.sink = new RecordingSink(pageCount);
    this.decoder = new StreamDecoder({
      sink: this.sink,
      expectHello: true,
      onMessage: (m) => {
        throw new Error(`unexpected '${m.type}' on the preempt channel`);
      },
    });
    this.decoder.setLayout({ blocks: [{ pageCount }] });
  }

  /** allowHalfOpen: the end after the source's is the test's to send. */
  static async listen(pageCount: number): Promise<FakeDestination> {
    const server = net.createServer({ allowHalfOpen: true });
    const destination = new FakeDestination(server, pageCount);
    server.on('connection', (socket) => destination.accept(socket));
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    cleanups.push(() => destination.close());
    return destination;
  }

  get port(): number {
    return (this.server.address() as net.AddressInfo).port;
  }

  /** The accepted connection (the first). */
  async socket(): Promise<net.Socket> {
    await waitFor('the source to connect', () => this.sockets.length > 0);
    return this.sockets[0]!;
  }

  get bytes(): Buffer {
    return Buffer.concat(this.received);
  }

  get frames(): number {
    return this.decoder.framesDecoded;
  }

  private accept(socket: net.Socket): void {
    this.sockets.push(socket);
    socket.on('data', (chunk: Buffer) => {
      this.received.push(chunk);
      try {
        this.decoder.push(chunk);
      } catch (err) {
        this.decodeError ??= err;
      }
    });
    socket.on('end', () => (this.ended = true));
    socket.on('error', () => {});
  }

  private close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

interface Source {
  block: RamBlock;
  bitmap: MigrationBitmap;
  destination: FakeDestination;
  socket: net.Socket;
  sender: PreemptSender;
  errors: string[];
  events: string[];
}

/** A source block with page WRITTEN written (and touched), a full bitmap, and a preempt thread connected to a fake destination. */
async function startSource(options: { resendSentPages?: boolean; releaseRam?: boolean } = {}): Promise<Source> {
  const block = RamBlock.allocate('pc.ram', RAM);
  block.pagesView(WRITTEN, 1).set(pattern(WRITTEN));
  block.touched.set(WRITTEN);
  const bitmap = MigrationBitmap.full([block.pageCount]);
  const destination = await FakeDestination.listen(block.pageCount);
  const errors: string[] = [];
  const events: string[] = [];
  const sender = await within(
    'the preempt thread to connect',
    PreemptSender.start({
      address: { host: '127.0.0.1', port: destination.port },
      uuid: undefined,
      blocks: [block],
      bitmap,
      resendSentPages: options.resendSentPages ?? true,
      releaseRam: options.releaseRam ?? false,
      onError: (err) => errors.push(err.message),
      trace: (_from, _to, event) => events.push(event),
    }),
  );
  cleanups.push(() => sender.close());
  const socket = await destination.socket();
  return { block, bitmap, destination, socket, sender, errors, events };
}

/** The first error the source reports, which must be its only one. */
async function onlyError(source: Source): Promise<string> {
  await waitFor('the preempt thread to report an error', () => source.errors.length > 0);
  await sleep(50);
  expect(source.errors).to.have.length(1);
  return source.errors[0]!;
}

/**
 * Waits until `n` requests have been served: the thread counts a frame's
 * bytes and pages just after writing it, so the destination may hold the
 * frame before progress() shows it; the 'served' trace comes after both.
 */
async function served(source: Source, n: number): Promise<void> {
  await waitFor(`${n} request(s) served`, () => source.events.filter((e) => e === 'req-pages-id').length >= n);
}

function bitmapHas(bitmap: MigrationBitmap, page: number): boolean {
  return (Atomics.load(bitmap.words[0]!, page >>> 5) & (1 << (page & 31))) !== 0;
}

/** Adds up progress() deltas while polling. */
function progressTotal(sender: PreemptSender): { add(): PreemptProgress } {
  const total: PreemptProgress = { bytes: 0, normalPages: 0, zeroPages: 0, requests: 0, releasedBytes: 0 };
  return {
    add() {
      const delta = sender.progress();
      for (const key of Object.keys(total) as (keyof PreemptProgress)[]) total[key] += delta[key];
      return total;
    },
  };
}

interface Destination {
  guest: Guest;
  block: RamBlock;
  receiver: PreemptReceiver;
  socket: net.Socket;
  errors: string[];
}

/** A paused destination guest, its preempt thread (layout: pc.ram) and the test's connection to it, playing the source. */
async function startDestination(): Promise<Destination> {
  const guest = await Guest.create({ ram: RAM, smp: 1, workload: { kind: 'idle' }, runState: 'paused' });
  cleanups.push(() => guest.destroy());
  const errors: string[] = [];
  const receiver = await within(
    'the preempt thread to listen',
    PreemptReceiver.start({ guest, listen: { host: '127.0.0.1' }, uuid: undefined, onError: (m) => errors.push(m), trace: () => {} }),
  );
  cleanups.push(() => receiver.close());
  expect(receiver.port, 'tcp port').to.be.a('number').greaterThan(0);
  receiver.setLayout([0]);
  const socket = net.connect({ host: '127.0.0.1', port: receiver.port! });
  socket.on('error', () => {});
  cleanups.push(() => socket.destroy());
  await within('the connection to the preempt thread', once(socket, 'connect'));
  return { guest, block: guest.blocks[0]!, receiver, socket, errors };
}

/** A PAGES frame carrying `bytes` as page `page` of block 0. */
const pagesFrame = (page: number, bytes: Uint8Array) => Buffer.concat([encodePagesHeader(0, [{ first: page, count: 1, zero: false }]), bytes]);

// ------------------------------------------------------------------ tests

describe('postcopy-preempt threads', () => {
  afterEach(cleanUp);
  describe("the source's thread (PreemptSender)", () => {
    it('connects and opens with a postcopy-preempt hello', async () => {
      const source = await startSource();
      await waitFor('the hello', () => source.destination.bytes.length >= HELLO_SIZE);
      const bytes = source.destination.bytes;
      expect(bytes.length).to.equal(HELLO_SIZE);
      const hello = decodeHello(bytes);
      expect(hello).to.deep.include({ kind: ChannelKind.POSTCOPY_PREEMPT, channelId: 0, channelCount: 1 });
      expect(hello.uuid).to.equal(undefined);
      expect(source.events).to.include('connected');
      expect(source.errors).to.deep.equal([]);
    });

    it('refuses a page request before postcopy started', async () => {
      const source = await startSource();
      source.socket.write(request(WRITTEN));
      expect(await onlyError(source)).to.equal('The destination asked for pages before postcopy started');
      expect(bitmapHas(source.bitmap, WRITTEN), 'page still to send').to.equal(true);
      expect(source.destination.frames).to.equal(0);
    });

    const badInput: { what: string; bytes: () => Buffer; why: string }[] = [
      {
        what: 'a PONG',
        bytes: () => encodeReturnPath({ type: 'pong', value: 1 }),
        why: "Received 'pong' on the postcopy-preempt channel, which carries page requests only",
      },
      {
        what: 'a misaligned request',
        bytes: () => encodeReturnPath({ type: 'req-pages-id', block: 'pc.ram', start: PAGE + 1, len: PAGE }),
        why: 'Misaligned page request, start: 0x1001 len: 4096 (pages are 4096 bytes)',
      },
      {
        what: 'a message of an unknown type',
        bytes: () => Buffer.from([0x00, 0xff, 0x00, 0x01, 0x80]),
        why: 'Received invalid message 0x00ff length 0x0001',
      },
      {
        what: 'REQ_PAGES with no REQ_PAGES_ID before it',
        bytes: () => encodeReturnPath({ type: 'req-pages', start: 0, len: PAGE }),
        why: 'Page request (REQ_PAGES) before any REQ_PAGES_ID named its RAM block',
      },
    ];
    for (const { what, bytes, why } of badInput) {
      it(`fails on ${what} after the switch`, async () => {
        const source = await startSource();
        source.sender.openRequests();
        source.socket.write(bytes());
        expect(await onlyError(source)).to.equal(why);
        expect(source.destination.frames).to.equal(0);
      });
    }

    it('serves a requested page from guest memory and takes it out of the bitmap', async () => {
      const source = await startSource();
      const before = source.bitmap.remaining;
      source.sender.openRequests();
      source.socket.write(request(WRITTEN));
      const { destination } = source;
      await waitFor('a PAGES frame', () => destination.frames >= 1);
      expect(destination.decodeError).to.equal(undefined);
      expect(destination.sink.loaded).to.deep.equal([{ block: 0, first: WRITTEN, count: 1 }]);
      expect(destination.sink.zero).to.deep.equal([]);
      expect(Buffer.from(destination.sink.page(WRITTEN)).equals(Buffer.from(source.block.pagesView(WRITTEN, 1)))).to.equal(true);
      expect(Buffer.from(destination.sink.page(WRITTEN)).equals(Buffer.from(pattern(WRITTEN)))).to.equal(true);
      expect(bitmapHas(source.bitmap, WRITTEN), 'bit of the served page').to.equal(false);
      expect(source.bitmap.remaining).to.equal(before - 1);
      await served(source, 1);
      const progress = source.sender.progress();
      expect(progress).to.deep.include({ requests: 1, normalPages: 1, zeroPages: 0 });
      expect(progress.bytes).to.be.greaterThan(PAGE);
      expect(source.errors).to.deep.equal([]);
    });

    it('sends a page requested again when resendSentPages is on', async () => {
      const source = await startSource({ resendSentPages: true });
      source.sender.openRequests();
      source.socket.write(request(WRITTEN));
      await waitFor('the first PAGES frame', () => source.destination.frames >= 1);
      source.destination.sink.memory.fill(0);
      source.socket.write(request(WRITTEN));
      await waitFor('the second PAGES frame', () => source.destination.frames >= 2);
      expect(source.destination.sink.loaded).to.have.length(2);
      expect(Buffer.from(source.destination.sink.page(WRITTEN)).equals(Buffer.from(pattern(WRITTEN)))).to.equal(true);
      await served(source, 2);
      expect(source.sender.progress()).to.deep.include({ requests: 2, normalPages: 2 });
      expect(source.errors).to.deep.equal([]);
    });

    it('does not send a page requested again when resendSentPages is off', async () => {
      const source = await startSource({ resendSentPages: false });
      source.sender.openRequests();
      source.socket.write(request(WRITTEN));
      await waitFor('the first PAGES frame', () => source.destination.frames >= 1);
      source.socket.write(request(WRITTEN));
      await served(source, 2);
      await sleep(200);
      expect(source.destination.frames).to.equal(1);
      expect(source.sender.progress()).to.deep.include({ requests: 2, normalPages: 1 });
      expect(source.errors).to.deep.equal([]);
    });

    it('sends a never-written page as a zero page', async () => {
      const source = await startSource();
      source.sender.openRequests();
      source.socket.write(request(NEVER_WRITTEN));
      await waitFor('a PAGES frame', () => source.destination.frames >= 1);
      expect(source.destination.decodeError).to.equal(undefined);
      expect(source.destination.sink.zero).to.deep.equal([{ block: 0, first: NEVER_WRITTEN, count: 1 }]);
      expect(source.destination.sink.loaded).to.deep.equal([]);
      expect(bitmapHas(source.bitmap, NEVER_WRITTEN)).to.equal(false);
      await served(source, 1);
      expect(source.sender.progress()).to.deep.include({ requests: 1, normalPages: 0, zeroPages: 1 });
      expect(source.errors).to.deep.equal([]);
    });

    it('fails when the destination closes the channel before finish()', async () => {
      const source = await startSource();
      await waitFor('the hello', () => source.destination.bytes.length >= HELLO_SIZE);
      source.socket.end();
      expect(await onlyError(source)).to.equal('the destination closed the postcopy-preempt channel');
    });

    it('finish() ends the connection; drained() waits for the destination to close its end', async () => {
      const source = await startSource();
      await within('finish()', source.sender.finish());
      await waitFor("the destination to see 'end'", () => source.destination.ended);
      let drained = false;
      const draining = source.sender.drained().then(() => (drained = true));
      await sleep(100);
      expect(drained, 'drained before the destination closed its end').to.equal(false);
      source.socket.end();
      await within('drained()', draining);
      expect(source.errors).to.deep.equal([]);
    });

    it('with release-ram, gives a served page back: it then reads as zeros', async function () {
      if (releaseUnavailable() !== undefined) this.skip();
      const source = await startSource({ releaseRam: true, resendSentPages: false });
      source.sender.openRequests();
      source.socket.write(request(WRITTEN));
      await waitFor('a PAGES frame', () => source.destination.frames >= 1);
      expect(Buffer.from(source.destination.sink.page(WRITTEN)).equals(Buffer.from(pattern(WRITTEN)))).to.equal(true);
      const total = progressTotal(source.sender);
      await waitFor('the page to be released', () => total.add().releasedBytes >= PAGE);
      await waitFor('the page to read as zeros', () => isZero(source.block.pagesView(WRITTEN, 1)));
      expect(isZero(source.block.pagesView(WRITTEN + 1, 1)), 'the page after it was zero all along').to.equal(true);
      expect(source.errors).to.deep.equal([]);
    });
  });

  describe("the destination's thread (PreemptReceiver)", () => {
    it('refuses a connection whose hello is not a postcopy-preempt one', async () => {
      const destination = await startDestination();
      destination.socket.write(encodeHello({ kind: ChannelKind.MAIN, channelId: 0, channelCount: 1 }));
      await waitFor('an error', () => destination.errors.length > 0);
      expect(destination.errors).to.deep.equal(['postcopy-preempt channel: expected the postcopy-preempt channel, got channel kind 0']);
    });

    it('refuses a control message', async () => {
      const destination = await startDestination();
      destination.socket.write(Buffer.concat([preemptHello(), encodeControl({ type: 'ping', value: 1 })]));
      await waitFor('an error', () => destination.errors.length > 0);
      expect(destination.errors).to.deep.equal(["postcopy-preempt channel: unexpected 'ping' message on the postcopy-preempt channel"]);
    });

    it('places the pages of a PAGES frame in guest RAM', async () => {
      const { block, receiver, socket, errors } = await startDestination();
      expect(block.received.test(WRITTEN)).to.equal(false);
      socket.write(Buffer.concat([preemptHello(), pagesFrame(WRITTEN, pattern(WRITTEN))]));
      await waitFor('the page to be received', () => block.received.test(WRITTEN));
      expect(Buffer.from(block.pagesView(WRITTEN, 1)).equals(Buffer.from(pattern(WRITTEN)))).to.equal(true);
      await waitFor('the counters', () => receiver.counters.pages === 1);
      expect(receiver.counters.zeroPages).to.equal(0);
      expect(receiver.counters.bytes).to.be.greaterThan(PAGE);
      expect(errors).to.deep.equal([]);
    });

    it('drops a page another thread is placing', async () => {
      const { block, socket, errors } = await startDestination();
      block.placing.set(WRITTEN);
      // The frame for NEVER_WRITTEN after it says when the first one has been handled.
      socket.write(Buffer.concat([preemptHello(), pagesFrame(WRITTEN, pattern(WRITTEN)), pagesFrame(NEVER_WRITTEN, pattern(NEVER_WRITTEN))]));
      await waitFor('the second page to be received', () => block.received.test(NEVER_WRITTEN));
      expect(block.received.test(WRITTEN), 'received bit of the page being placed elsewhere').to.equal(false);
      expect(isZero(block.pagesView(WRITTEN, 1)), 'RAM of the page being placed elsewhere').to.equal(true);
      expect(Buffer.from(block.pagesView(NEVER_WRITTEN, 1)).equals(Buffer.from(pattern(NEVER_WRITTEN)))).to.equal(true);
      expect(errors).to.deep.equal([]);
    });

    it('runs the whenEnded callback once the source ends the channel', async () => {
      const { receiver, socket, errors } = await startDestination();
      let ended = false;
      receiver.whenEnded(() => (ended = true));
      socket.end(preemptHello());
      await waitFor('whenEnded', () => ended);
      expect(receiver.ended).to.equal(true);
      expect(errors).to.deep.equal([]);
    });
  });
});
