import { expect } from 'chai';
import { ChannelKind } from '../protocols/hello/constants.js';
import { StreamDecoder } from '../protocols/stream/decode.js';
import { encodeControl, encodePagesHeader } from '../protocols/stream/encode.js';
import { encodeHello } from '../protocols/hello/encode.js';
import { FRAME_HEADER_SIZE } from '../protocols/stream/constants.js';
import { StreamError } from '../protocols/stream/errors.js';
import type { StreamMessage } from '../protocols/stream/messages.js';
import type { PageRun } from '../protocols/page-runs/types.js';
import { SeededRandom } from './fuzz/seeded-random.js';
import { readThroughOnread } from './support/onread-socket.js';
import { FakeGuest, PAGE, expectedRam, pagesFrame, sourceRam } from './stream-fake-guest.js';

const PAGE_COUNTS = [40, 9, 1];
const BEFORE = 0x77;

const frames: [number, PageRun[]][] = [
  [
    0,
    [
      { first: 0, count: 3, zero: false },
      { first: 5, count: 2, zero: true },
      { first: 10, count: 12, zero: false },
      { first: 30, count: 1, zero: false },
    ],
  ],
  [1, [{ first: 0, count: 9, zero: true }]],
  [2, [{ first: 0, count: 1, zero: false }]],
  [
    0,
    [
      { first: 22, count: 8, zero: false },
      { first: 39, count: 1, zero: true },
    ],
  ],
];

const source = sourceRam(PAGE_COUNTS, 3);
const header: StreamMessage = {
  type: 'header',
  pageSize: PAGE,
  blocks: PAGE_COUNTS.map((pages, i) => ({ name: `block${i}`, size: pages * PAGE })),
  vcpus: 1,
  devices: [],
  runState: 'running',
  capabilities: [],
};
const stream = Buffer.concat([
  encodeHello({ kind: ChannelKind.MAIN, channelId: 0, channelCount: 1 }),
  encodeControl(header),
  ...frames.map(([block, runs]) => pagesFrame(source, block, runs)),
  encodeControl({ type: 'round-end', round: 1 }),
  encodeControl({ type: 'eof' }),
]);

interface Destination {
  guest: FakeGuest;
  decoder: StreamDecoder;
  messages: StreamMessage[];
}

function destination(slabPages: number): Destination {
  const guest = new FakeGuest(PAGE_COUNTS, { slabPages, fill: BEFORE });
  const messages: StreamMessage[] = [];
  const decoder = new StreamDecoder({
    sink: guest,
    onMessage: (m) => {
      messages.push(m);
      if (m.type === 'header') decoder.setLayout(guest.layout);
    },
  });
  return { guest, decoder, messages };
}

/** Feeds `chunks` the way a socket with `onread` does: each read fills at most the wanted view. */
function feedLikeSocket(decoder: StreamDecoder, chunks: Uint8Array[]): void {
  for (const chunk of chunks) {
    let at = 0;
    while (at < chunk.length) {
      const view = decoder.want();
      expect(view.length).to.be.greaterThan(0);
      const n = Math.min(view.length, chunk.length - at);
      view.set(chunk.subarray(at, at + n));
      decoder.commit(n);
      at += n;
    }
  }
}

/** A decoder of PAGES frames alone (no hello, no header) into `guest`. */
function framesOf(guest: FakeGuest): StreamDecoder {
  const decoder = new StreamDecoder({ sink: guest, onMessage: () => {}, expectHello: false });
  decoder.setLayout(guest.layout);
  return decoder;
}

function checkLanded({ guest, decoder, messages }: Destination): void {
  const expected = expectedRam(PAGE_COUNTS, BEFORE, source, frames.map(([block, runs]) => ({ block, runs })));
  for (let block = 0; block < PAGE_COUNTS.length; block++) {
    expect(Buffer.from(guest.ram[block] as Uint8Array).equals(expected[block] as Uint8Array), `block ${block}`).to.equal(true);
  }
  expect(guest.guardsIntact()).to.equal(true);
  expect(messages.map((m) => m.type)).to.deep.equal(['header', 'round-end', 'eof']);
  expect(decoder.bytesDecoded).to.equal(stream.length);
  expect(decoder.pagesReceived).to.equal(3 + 12 + 1 + 1 + 8);
  expect(decoder.zeroPagesReceived).to.equal(2 + 9 + 1);
  expect(decoder.framesDecoded).to.equal(3 + frames.length);
  const loaded = guest.events.filter((e) => e.call === 'pagesLoaded').map((e) => [e.block, e.first, e.count]);
  expect(loaded).to.deep.equal([
    [0, 0, 3],
    [0, 10, 12],
    [0, 30, 1],
    [2, 0, 1],
    [0, 22, 8],
  ]);
  decoder.end();
}

describe('stream pages landing in guest memory', () => {
  for (const slabPages of [Infinity, 1, 3, 7]) {
    describe(`with views split every ${slabPages} pages`, () => {
      it('lands byte-exact from one whole chunk', () => {
        const d = destination(slabPages);
        d.decoder.push(stream);
        checkLanded(d);
      });

      it('lands byte-exact one byte at a time', () => {
        const d = destination(slabPages);
        for (let i = 0; i < stream.length; i++) d.decoder.push(stream.subarray(i, i + 1));
        checkLanded(d);
      });

      it('lands byte-exact under random splits', () => {
        const random = new SeededRandom(slabPages === Infinity ? 99 : slabPages);
        for (const maxChunk of [2, 13, 100, 4095, 4097, 20000, 70000]) {
          const d = destination(slabPages);
          for (const chunk of random.chunks(stream, maxChunk)) d.decoder.push(chunk);
          checkLanded(d);
        }
      });

      it('lands byte-exact through want/commit with short reads', () => {
        const random = new SeededRandom(7);
        const d = destination(slabPages);
        feedLikeSocket(d.decoder, random.chunks(stream, 5000));
        checkLanded(d);
      });
    });
  }

  it('asks the sink for views run by run, again at each slab boundary, and reports each run once', () => {
    const guest = new FakeGuest([12], { slabPages: 3 });
    const decoder = framesOf(guest);
    decoder.push(
      pagesFrame(sourceRam([12], 1), 0, [
        { first: 1, count: 4, zero: false },
        { first: 6, count: 2, zero: true },
        { first: 8, count: 1, zero: false },
      ]),
    );
    expect(guest.events).to.deep.equal([
      { call: 'pageView', block: 0, first: 1, count: 4, given: 2 },
      { call: 'pageView', block: 0, first: 3, count: 2, given: 2 },
      { call: 'pagesLoaded', block: 0, first: 1, count: 4 },
      { call: 'zeroPages', block: 0, first: 6, count: 2 },
      { call: 'pageView', block: 0, first: 8, count: 1, given: 1 },
      { call: 'pagesLoaded', block: 0, first: 8, count: 1 },
    ]);
  });

  it('hands out the sink view itself for the page bytes of a long run, sized to what that view still holds', () => {
    const guest = new FakeGuest([64], { slabPages: 32 });
    const decoder = framesOf(guest);
    decoder.push(encodePagesHeader(0, [{ first: 2, count: 40, zero: false }]));
    const view = decoder.want();
    expect(view.buffer).to.equal((guest.ram[0] as Uint8Array).buffer);
    expect(view.byteOffset).to.equal((guest.ram[0] as Uint8Array).byteOffset + 2 * PAGE);
    expect(view.length).to.equal(30 * PAGE);
    view.fill(1, 0, 100);
    decoder.commit(100);
    const rest = decoder.want();
    expect(rest.byteOffset).to.equal(view.byteOffset + 100);
    expect(rest.length).to.equal(30 * PAGE - 100);
  });

  it('reads short runs ahead into a buffer of its own, no further than the frame\'s page bytes, and copies each into place', () => {
    const guest = new FakeGuest([8], { slabPages: 2, fill: BEFORE });
    const ram = sourceRam([8], 5);
    const decoder = framesOf(guest);
    const runs: PageRun[] = [
      { first: 1, count: 2, zero: false },
      { first: 4, count: 1, zero: true },
      { first: 6, count: 1, zero: false },
    ];
    const frame = pagesFrame(ram, 0, runs);
    const header = encodePagesHeader(0, runs);
    decoder.push(header);
    const data = frame.subarray(header.length);
    const view = decoder.want();
    expect(view.buffer).not.to.equal((guest.ram[0] as Uint8Array).buffer);
    expect(view.length).to.equal(3 * PAGE);
    // A short read: what it brought is in place, and the rest is read ahead again.
    view.set(data.subarray(0, PAGE + 10));
    decoder.commit(PAGE + 10);
    expect(Buffer.from(guest.page(0, 1, 1)).equals((ram[0] as Uint8Array).subarray(PAGE, 2 * PAGE))).to.equal(true);
    expect(Buffer.from(guest.page(0, 2, 1).subarray(0, 10)).equals((ram[0] as Uint8Array).subarray(2 * PAGE, 2 * PAGE + 10))).to.equal(true);
    expect(() => decoder.commit(1), 'a second commit without want()').to.throw(RangeError);
    const rest = decoder.want();
    expect(rest.length).to.equal(2 * PAGE - 10);
    rest.set(data.subarray(PAGE + 10));
    decoder.commit(2 * PAGE - 10);
    expect(Buffer.from(guest.ram[0] as Uint8Array).equals(expectedRam([8], BEFORE, ram, [{ block: 0, runs }])[0] as Uint8Array)).to.equal(true);
    expect(guest.guardsIntact()).to.equal(true);
    expect(guest.events).to.deep.equal([
      { call: 'pageView', block: 0, first: 1, count: 2, given: 1 },
      { call: 'pageView', block: 0, first: 2, count: 1, given: 1 },
      { call: 'pagesLoaded', block: 0, first: 1, count: 2 },
      { call: 'zeroPages', block: 0, first: 4, count: 1 },
      { call: 'pageView', block: 0, first: 6, count: 1, given: 1 },
      { call: 'pagesLoaded', block: 0, first: 6, count: 1 },
    ]);
    // The next frame's header is read on its own: what follows it decides where later bytes go.
    expect(decoder.want().length).to.equal(FRAME_HEADER_SIZE);
    expect(decoder.framesDecoded).to.equal(1);
  });

  it('after a short read ahead, a stream that ends says exactly how far into the frame it got', () => {
    const guest = new FakeGuest([8]);
    const ram = sourceRam([8], 6);
    const decoder = framesOf(guest);
    const runs: PageRun[] = [{ first: 1, count: 1, zero: false }, { first: 3, count: 2, zero: false }];
    const frame = pagesFrame(ram, 0, runs);
    decoder.push(frame.subarray(0, frame.length - 3 * PAGE));
    const view = decoder.want();
    expect(view.length).to.equal(3 * PAGE);
    view.set(frame.subarray(frame.length - 3 * PAGE, frame.length - PAGE - 7));
    decoder.commit(2 * PAGE - 7);
    const body = frame.length - FRAME_HEADER_SIZE;
    expect(() => decoder.end()).to.throw(StreamError, `in a PAGES frame for block 0 (${body - PAGE - 7} of ${body} body bytes)`);
  });

  it('reads ahead at most 256 KiB at a time, reads a view of 64 KiB or more into place, and a short last run too', () => {
    const guest = new FakeGuest([256]);
    const decoder = framesOf(guest);
    const direct = (view: Uint8Array) => view.buffer === (guest.ram[0] as Uint8Array).buffer;
    // 100 one-page runs: 64 pages read ahead, then the other 36.
    const single: PageRun[] = Array.from({ length: 100 }, (_, i) => ({ first: 2 * i, count: 1, zero: false }));
    decoder.push(encodePagesHeader(0, single));
    const first = decoder.want();
    expect(direct(first)).to.equal(false);
    expect(first.length).to.equal(64 * PAGE);
    decoder.commit(64 * PAGE);
    const second = decoder.want();
    expect(second.length).to.equal(36 * PAGE);
    decoder.commit(36 * PAGE);
    // A 16-page run (64 KiB) is read into place; a 15-page one is read ahead with the run after it, and that
    // last run, with nothing after it, into place.
    decoder.push(encodePagesHeader(0, [{ first: 200, count: 16, zero: false }, { first: 217, count: 15, zero: false }, { first: 233, count: 2, zero: false }]));
    const long = decoder.want();
    expect(direct(long)).to.equal(true);
    expect(long.length).to.equal(16 * PAGE);
    decoder.commit(16 * PAGE);
    const short = decoder.want();
    expect(direct(short)).to.equal(false);
    expect(short.length).to.equal(17 * PAGE);
    decoder.commit(15 * PAGE);
    const last = decoder.want();
    expect(direct(last)).to.equal(true);
    expect(last.length).to.equal(2 * PAGE);
    decoder.commit(2 * PAGE);
    expect(decoder.framesDecoded).to.equal(2);
    expect(decoder.pagesReceived).to.equal(100 + 16 + 15 + 2);
  });

  it('takes a frame of zero runs only, which carries no page bytes', () => {
    const guest = new FakeGuest([4], { fill: 9 });
    const decoder = framesOf(guest);
    const frame = encodePagesHeader(0, [{ first: 0, count: 4, zero: true }]);
    expect(frame.readUInt32BE(4)).to.equal(16);
    decoder.push(frame);
    expect(guest.events).to.deep.equal([{ call: 'zeroPages', block: 0, first: 0, count: 4 }]);
    expect((guest.ram[0] as Uint8Array).every((b) => b === 0)).to.equal(true);
    expect(decoder.want().length).to.equal(8);
  });

  it('decodes page bytes at a non-default page size', () => {
    const pageSize = 512;
    const guest = new FakeGuest([10], { pageSize, slabPages: 3 });
    const decoder = new StreamDecoder({ sink: guest, onMessage: () => {}, expectHello: false, pageSize });
    decoder.setLayout(guest.layout);
    const src = sourceRam([10], 5, pageSize);
    decoder.push(pagesFrame(src, 0, [{ first: 2, count: 7, zero: false }], pageSize));
    expect(Buffer.from(guest.page(0, 2, 7)).equals((src[0] as Uint8Array).subarray(2 * pageSize, 9 * pageSize))).to.equal(true);
  });

  it('over a net.Socket with onread, reads a long run into guest memory and the short runs after it ahead, byte-exact', async () => {
    const guest = new FakeGuest([64], { fill: BEFORE });
    const ram = sourceRam([64], 9);
    const decoder = framesOf(guest);
    const runs: PageRun[] = [
      { first: 0, count: 40, zero: false },
      { first: 41, count: 1, zero: false },
      { first: 43, count: 2, zero: true },
      { first: 46, count: 3, zero: false },
    ];
    const bytes = Buffer.concat([pagesFrame(ram, 0, runs), pagesFrame(ram, 0, [{ first: 60, count: 1, zero: false }])]);
    const wants = { direct: 0, ahead: 0 };
    const want = () => {
      const view = decoder.want();
      wants[view.buffer === (guest.ram[0] as Uint8Array).buffer ? 'direct' : 'ahead']++;
      return view;
    };
    expect(await readThroughOnread([bytes], want, (n) => decoder.commit(n))).to.equal(undefined);
    const expected = expectedRam([64], BEFORE, ram, [{ block: 0, runs }, { block: 0, runs: [{ first: 60, count: 1, zero: false }] }]);
    expect(Buffer.from(guest.ram[0] as Uint8Array).equals(expected[0] as Uint8Array)).to.equal(true);
    expect(guest.guardsIntact()).to.equal(true);
    expect(decoder.framesDecoded).to.equal(2);
    expect(wants.direct, 'reads into guest memory').to.be.greaterThan(0);
    expect(wants.ahead, 'reads ahead').to.be.greaterThan(0);
  });

  it('lands pages read by a net.Socket with onread byte-exact (short runs read ahead)', async () => {
    const d = destination(5);
    const chunks = new SeededRandom(3).chunks(stream, 65536);
    expect(await readThroughOnread(chunks, () => d.decoder.want(), (n) => d.decoder.commit(n))).to.equal(undefined);
    checkLanded(d);
  });
});

describe('stream pages encoder', () => {
  it('writes frame header, sub-header and run descriptors as documented', () => {
    const bytes = encodePagesHeader(3, [
      { first: 16, count: 2, zero: false },
      { first: 40, count: 8, zero: true },
    ]);
    expect(bytes.toString('hex')).to.equal(
      '02000000' + (8 + 16 + 2 * PAGE).toString(16).padStart(8, '0') +
        '0003' + '0002' + '00000000' +
        '00000010' + '00000002' +
        '00000028' + '80000008',
    );
  });

  const refused: [string, () => Buffer, string, string][] = [
    ['no runs', () => encodePagesHeader(0, []), 'BAD_PAGES', 'A PAGES frame holds 1 to 1024 runs, not 0'],
    [
      'more than 1024 runs',
      () => encodePagesHeader(0, Array.from({ length: 1025 }, (_, i) => ({ first: i, count: 1, zero: true }))),
      'BAD_PAGES',
      'A PAGES frame holds 1 to 1024 runs, not 1025',
    ],
    ['a run of no pages', () => encodePagesHeader(0, [{ first: 0, count: 0, zero: false }]), 'BAD_PAGES', 'Bad page run: first 0, count 0 of block 0'],
    ['more than 2048 pages', () => encodePagesHeader(0, [{ first: 0, count: 2049, zero: true }]), 'BAD_PAGES', 'A PAGES frame holds at most 2048 pages, not 2049'],
    ['a block index over 16 bits', () => encodePagesHeader(65536, [{ first: 0, count: 1, zero: true }]), 'BAD_PAGES', 'Block index 65536 does not fit in 16 bits'],
    [
      'more than 8 MiB of page bytes',
      () => encodePagesHeader(0, [{ first: 0, count: 3, zero: false }], 4 * 1024 * 1024),
      'FRAME_TOO_LARGE',
      'A PAGES frame carries at most 8388608 bytes of pages, not 12582912',
    ],
  ];
  for (const [what, encode, code, message] of refused) {
    it(`refuses ${what}`, () => {
      let error: unknown;
      try {
        encode();
      } catch (e) {
        error = e;
      }
      expect(error).to.be.instanceOf(StreamError);
      expect((error as StreamError).code).to.equal(code);
      expect((error as StreamError).message).to.equal(message);
    });
  }

  it('accepts the largest frame: 1024 runs, 2048 pages, 8 MiB of bytes', () => {
    const runs = Array.from({ length: 1024 }, (_, i) => ({ first: 2 * i, count: 2, zero: false }));
    const bytes = encodePagesHeader(0, runs);
    expect(bytes.readUInt32BE(4)).to.equal(8 + 8 * 1024 + 8 * 1024 * 1024);
  });
});
