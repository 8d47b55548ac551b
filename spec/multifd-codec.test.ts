import { expect } from 'chai';
import { inflateSync } from 'node:zlib';
import { decompress } from 'zstd-napi';
import { compressPages } from '../protocols/multifd/compression.js';
import { MultifdDecoder } from '../protocols/multifd/decode.js';
import { encodePacketHeader, encodeSyncPacket } from '../protocols/multifd/encode.js';
import { MultifdError, type MultifdErrorCode } from '../protocols/multifd/errors.js';
import { PACKET_HEADER_SIZE, type CompressionMethod } from '../protocols/multifd/constants.js';
import type { PacketInfo } from '../protocols/multifd/types.js';
import type { PageRun } from '../protocols/page-runs/types.js';
import { ChannelKind } from '../protocols/hello/constants.js';
import { encodeHello } from '../protocols/hello/encode.js';
import { SeededRandom } from './fuzz/seeded-random.js';
import { readThroughOnread } from './support/onread-socket.js';
import { FakeGuest, PAGE, expectedRam, sourceRam, type SinkEvent } from './stream-fake-guest.js';

const PAGE_COUNTS = [40, 9, 2];
const BEFORE = 0x77;

interface PacketSpec {
  sync?: boolean;
  round: number;
  block: number;
  runs: PageRun[];
}

/** A channel's packets: pages of rounds 5, 6 and 7, with a SYNC-only packet and a SYNC packet carrying pages. */
const PACKETS: PacketSpec[] = [
  {
    round: 5,
    block: 0,
    runs: [
      { first: 0, count: 3, zero: false },
      { first: 5, count: 2, zero: true },
      { first: 10, count: 12, zero: false },
      { first: 30, count: 1, zero: false },
    ],
  },
  { round: 5, block: 1, runs: [{ first: 0, count: 9, zero: true }] },
  { sync: true, round: 5, block: 0, runs: [] },
  { round: 6, block: 2, runs: [{ first: 1, count: 1, zero: false }] },
  {
    sync: true,
    round: 6,
    block: 0,
    runs: [
      { first: 22, count: 8, zero: false },
      { first: 39, count: 1, zero: true },
      { first: 1, count: 1, zero: false },
    ],
  },
  // Random bytes, which no compressor shrinks: compressed data longer than the raw pages.
  { round: 7, block: 1, runs: [{ first: 2, count: 4, zero: false }] },
];

const source = sourceRam(PAGE_COUNTS, 3);
(source[1] as Uint8Array).set(new SeededRandom(11).bytes(9 * PAGE));

interface Codec {
  compression: CompressionMethod;
  level: number;
  /** Packets sent raw on this compressing channel, flagged `none`, as the sender sends pages that would not shrink. */
  raw?: number[];
}
const CODECS: Codec[] = [
  { compression: 'none', level: 0 },
  { compression: 'zlib', level: 0 },
  { compression: 'zlib', level: 1 },
  { compression: 'zlib', level: 9 },
  { compression: 'zstd', level: 1 },
  { compression: 'zstd', level: 19 },
  { compression: 'zstd', level: 1, raw: [0, 5] },
  { compression: 'zlib', level: 1, raw: [3, 4] },
];

/** Encodes packets as a source channel would, numbered from 0. */
function encodeChannel(ram: readonly Uint8Array[], specs: readonly PacketSpec[], codec: Codec, pageSize = PAGE): Buffer[] {
  return specs.map(({ sync = false, round, block, runs }, packetNumber) => {
    const { level } = codec;
    const compression = codec.raw?.includes(packetNumber) ? 'none' : codec.compression;
    const views = runs.filter((r) => !r.zero).map((r) => (ram[block] as Uint8Array).subarray(r.first * pageSize, (r.first + r.count) * pageSize));
    const data = compression === 'none' || views.length === 0 ? views : [compressPages(compression, level, views)];
    const dataLength = data.reduce((n, v) => n + v.length, 0);
    const header = encodePacketHeader({ sync, compression, packetNumber, round, block, runs, dataLength, pageSize });
    return Buffer.concat([header, ...data]);
  });
}

interface Destination {
  guest: FakeGuest;
  decoder: MultifdDecoder;
  syncs: { round: number; placed: number; last: SinkEvent | undefined; landed: boolean }[];
  packets: PacketInfo[];
}

function destination(compression: CompressionMethod, slabPages: number): Destination {
  const guest = new FakeGuest(PAGE_COUNTS, { slabPages, fill: BEFORE });
  const syncs: Destination['syncs'] = [];
  const packets: PacketInfo[] = [];
  const decoder = new MultifdDecoder({
    sink: guest,
    layout: guest.layout,
    compression,
    onPacket: (info) => packets.push(info),
    onSync: (round) => {
      // Every page of the SYNC packet must already be in place.
      const spec = PACKETS.find((p) => p.sync && p.round === round) as PacketSpec;
      const landed = spec.runs.every(({ first, count, zero }) => {
        const got = guest.page(spec.block, first, count);
        return zero ? got.every((b) => b === 0) : Buffer.from(got).equals((source[spec.block] as Uint8Array).subarray(first * PAGE, (first + count) * PAGE));
      });
      syncs.push({ round, placed: guest.events.filter((e) => e.call !== 'pageView').length, last: guest.events.at(-1), landed });
    },
  });
  return { guest, decoder, syncs, packets };
}

/** Feeds `chunks` the way a socket with `onread` does: each read fills at most the wanted view. */
function feedLikeSocket(decoder: MultifdDecoder, chunks: Uint8Array[]): void {
  for (const chunk of chunks) {
    for (let at = 0; at < chunk.length; ) {
      const view = decoder.want();
      expect(view.length).to.be.greaterThan(0);
      const n = Math.min(view.length, chunk.length - at);
      view.set(chunk.subarray(at, at + n));
      decoder.commit(n);
      at += n;
    }
  }
}

function checkLanded({ guest, decoder, syncs, packets }: Destination, sizes: readonly number[]): void {
  const expected = expectedRam(PAGE_COUNTS, BEFORE, source, PACKETS);
  for (let block = 0; block < PAGE_COUNTS.length; block++) {
    expect(Buffer.from(guest.ram[block] as Uint8Array).equals(expected[block] as Uint8Array), `block ${block}`).to.equal(true);
  }
  expect(guest.guardsIntact()).to.equal(true);
  const placed = guest.events.filter((e) => e.call !== 'pageView').map((e) => [e.call, e.block, e.first, e.count]);
  expect(placed).to.deep.equal([
    ['pagesLoaded', 0, 0, 3],
    ['zeroPages', 0, 5, 2],
    ['pagesLoaded', 0, 10, 12],
    ['pagesLoaded', 0, 30, 1],
    ['zeroPages', 1, 0, 9],
    ['pagesLoaded', 2, 1, 1],
    ['pagesLoaded', 0, 22, 8],
    ['zeroPages', 0, 39, 1],
    ['pagesLoaded', 0, 1, 1],
    ['pagesLoaded', 1, 2, 4],
  ]);
  // Each SYNC fires once its packet's pages are placed, before anything of the next packet.
  expect(syncs).to.deep.equal([
    { round: 5, placed: 5, last: { call: 'zeroPages', block: 1, first: 0, count: 9 }, landed: true },
    { round: 6, placed: 9, last: { call: 'pagesLoaded', block: 0, first: 1, count: 1 }, landed: true },
  ]);
  expect(packets).to.deep.equal([
    { packetNumber: 0, round: 5, sync: false, block: 0, runs: 4, pages: 16, zeroPages: 2, wireBytes: sizes[0] },
    { packetNumber: 1, round: 5, sync: false, block: 1, runs: 1, pages: 0, zeroPages: 9, wireBytes: sizes[1] },
    { packetNumber: 2, round: 5, sync: true, block: 0, runs: 0, pages: 0, zeroPages: 0, wireBytes: 24 },
    { packetNumber: 3, round: 6, sync: false, block: 2, runs: 1, pages: 1, zeroPages: 0, wireBytes: sizes[3] },
    { packetNumber: 4, round: 6, sync: true, block: 0, runs: 3, pages: 9, zeroPages: 1, wireBytes: sizes[4] },
    { packetNumber: 5, round: 7, sync: false, block: 1, runs: 1, pages: 4, zeroPages: 0, wireBytes: sizes[5] },
  ]);
  expect(decoder.bytesDecoded).to.equal(sizes.reduce((a, b) => a + b, 0));
  expect(decoder.packetsDecoded).to.equal(6);
  expect(decoder.pagesReceived).to.equal(30);
  expect(decoder.zeroPagesReceived).to.equal(12);
  decoder.end();
}

describe('multifd packets landing in guest memory', () => {

  for (const codec of CODECS) {
    describe(`compression ${codec.compression}${codec.compression === 'none' ? '' : ` level ${codec.level}`}${codec.raw ? `, packets ${codec.raw.join(' and ')} raw` : ''}`, () => {
      let packets: Buffer[] = [];
      let sizes: number[] = [];
      let stream = Buffer.alloc(0);
      before(async () => {
        packets = encodeChannel(source, PACKETS, codec);
        sizes = packets.map((p) => p.length);
        stream = Buffer.concat(packets);
      });

      for (const slabPages of [Infinity, 1, 3]) {
        it(`lands byte-exact from one whole chunk (views split every ${slabPages} pages)`, () => {
          const d = destination(codec.compression, slabPages);
          d.decoder.push(stream);
          checkLanded(d, sizes);
        });

        it(`lands byte-exact one byte at a time (views split every ${slabPages} pages)`, () => {
          const d = destination(codec.compression, slabPages);
          for (let i = 0; i < stream.length; i++) d.decoder.push(stream.subarray(i, i + 1));
          checkLanded(d, sizes);
        });

        it(`lands byte-exact under random splits and short reads (views split every ${slabPages} pages)`, () => {
          const random = new SeededRandom(slabPages === Infinity ? 99 : slabPages);
          for (const maxChunk of [2, 23, 4095, 4097, 70000]) {
            const d = destination(codec.compression, slabPages);
            for (const chunk of random.chunks(stream, maxChunk)) d.decoder.push(chunk);
            checkLanded(d, sizes);
          }
          const d = destination(codec.compression, slabPages);
          feedLikeSocket(d.decoder, random.chunks(stream, 5000));
          checkLanded(d, sizes);
        });
      }

      if (codec.compression !== 'none') {
        it('carries a packet without non-zero pages uncompressed, with no data at all', () => {
          expect(packets[1]?.length).to.equal(24 + 8);
          expect(packets[1]?.readUInt32BE(20)).to.equal(0);
        });
      }
    });
  }

  it('compresses random pages to more than their raw size, within the 64 KiB slack', () => {
    for (const codec of CODECS.filter((c) => c.compression !== 'none' && c.raw === undefined)) {
      const [packet] = encodeChannel(source, [PACKETS[5] as PacketSpec], codec);
      const dataLength = (packet as Buffer).readUInt32BE(20);
      expect(dataLength, `${codec.compression} ${codec.level}`).to.be.greaterThan(4 * PAGE);
      expect(dataLength).to.be.at.most(4 * PAGE + 64 * 1024);
    }
  });

  it('hands out the sink view itself for the uncompressed page bytes of a long run, sized to what that view still holds', () => {
    const guest = new FakeGuest([64], { slabPages: 32 });
    const decoder = new MultifdDecoder({ sink: guest, layout: guest.layout, compression: 'none', onSync: () => {} });
    decoder.push(encodePacketHeader({ sync: false, compression: 'none', packetNumber: 0, round: 1, block: 0, runs: [{ first: 2, count: 40, zero: false }], dataLength: 40 * PAGE }));
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

  it('reads the uncompressed page bytes of short runs ahead, no further than the packet\'s, and copies them into place', () => {
    const guest = new FakeGuest([8], { fill: BEFORE });
    const ram = sourceRam([8], 2);
    const decoder = new MultifdDecoder({ sink: guest, layout: guest.layout, compression: 'none', onSync: () => {} });
    const runs = [{ first: 1, count: 1, zero: false }, { first: 2, count: 1, zero: true }, { first: 4, count: 2, zero: false }];
    decoder.push(encodePacketHeader({ sync: false, compression: 'none', packetNumber: 0, round: 1, block: 0, runs, dataLength: 3 * PAGE }));
    const view = decoder.want();
    expect(view.buffer).not.to.equal((guest.ram[0] as Uint8Array).buffer);
    expect(view.length).to.equal(3 * PAGE);
    view.set((ram[0] as Uint8Array).subarray(PAGE, 2 * PAGE));
    view.set((ram[0] as Uint8Array).subarray(4 * PAGE, 6 * PAGE), PAGE);
    decoder.commit(3 * PAGE);
    expect(Buffer.from(guest.ram[0] as Uint8Array).equals(expectedRam([8], BEFORE, ram, [{ block: 0, runs }])[0] as Uint8Array)).to.equal(true);
    expect(guest.guardsIntact()).to.equal(true);
    expect(guest.events.filter((e) => e.call === 'pagesLoaded').map((e) => [e.first, e.count])).to.deep.equal([[1, 1], [4, 2]]);
    // The next packet's header is read on its own.
    expect(decoder.want().length).to.equal(PACKET_HEADER_SIZE);
  });

  it('reads ahead no further than a SYNC packet\'s pages: the commit that places its last page syncs, and takes nothing of the next packet', () => {
    const guest = new FakeGuest([8]);
    const ram = sourceRam([8], 4);
    let syncedAt: number | undefined;
    const decoder = new MultifdDecoder({ sink: guest, layout: guest.layout, compression: 'none', onSync: () => (syncedAt = decoder.bytesDecoded) });
    const runs = [{ first: 0, count: 1, zero: false }, { first: 2, count: 1, zero: false }, { first: 5, count: 2, zero: false }];
    const codec: Codec = { compression: 'none', level: 0 };
    const [sync, next] = encodeChannel(ram, [{ sync: true, round: 1, block: 0, runs }, { round: 2, block: 0, runs: [{ first: 7, count: 1, zero: false }] }], codec);
    const bytes = Buffer.concat([sync as Buffer, next as Buffer]);
    // As a socket reads: each read fills at most the view offered; stop where the consumer would pause.
    for (let at = 0; syncedAt === undefined; ) {
      const view = decoder.want();
      const n = Math.min(view.length, bytes.length - at);
      view.set(bytes.subarray(at, at + n));
      decoder.commit(n);
      at += n;
    }
    expect(syncedAt).to.equal((sync as Buffer).length);
    expect(decoder.bytesDecoded).to.equal((sync as Buffer).length);
  });

  it('reads compressed data into one buffer of its own, reused from packet to packet', () => {
    const guest = new FakeGuest([8]);
    const decoder = new MultifdDecoder({ sink: guest, layout: guest.layout, compression: 'zlib', onSync: () => {} });
    const ram = sourceRam([8], 1);
    const [first, second] = encodeChannel(
      ram,
      [
        { round: 1, block: 0, runs: [{ first: 0, count: 4, zero: false }] },
        { round: 1, block: 0, runs: [{ first: 4, count: 2, zero: false }] },
      ],
      { compression: 'zlib', level: 6 },
    ) as [Buffer, Buffer];
    decoder.push(first.subarray(0, 32));
    const view1 = decoder.want();
    expect(view1.length).to.equal(first.length - 32);
    expect(view1.buffer).not.to.equal((guest.ram[0] as Uint8Array).buffer);
    decoder.push(first.subarray(32));
    decoder.push(second.subarray(0, 32));
    const view2 = decoder.want();
    expect(view2.length).to.equal(second.length - 32);
    expect(view2.buffer).to.equal(view1.buffer);
    decoder.push(second.subarray(32));
    expect(Buffer.from(guest.ram[0] as Uint8Array).subarray(0, 6 * PAGE).equals((ram[0] as Uint8Array).subarray(0, 6 * PAGE))).to.equal(true);
  });

  it('asks for nothing beyond a SYNC packet before onSync returns: the next want() is a packet header', () => {
    const guest = new FakeGuest([4]);
    const log: string[] = [];
    const decoder = new MultifdDecoder({
      sink: guest,
      layout: guest.layout,
      compression: 'none',
      onPacket: (info) => log.push(`packet ${info.packetNumber}`),
      onSync: (round) => log.push(`sync ${round}`),
    });
    const sync = encodeSyncPacket(0, 3, 'none');
    const view = decoder.want();
    expect(view.length).to.equal(24);
    view.set(sync);
    decoder.commit(24);
    expect(log).to.deep.equal(['packet 0', 'sync 3']);
    expect(decoder.want().length).to.equal(24);
    expect(decoder.bytesDecoded).to.equal(24);
  });

  it('reads the channel hello first when asked, and names the channel it gives in errors', () => {
    const guest = new FakeGuest([4]);
    const hellos: unknown[] = [];
    const decoder = new MultifdDecoder({ sink: guest, layout: guest.layout, compression: 'none', onSync: () => {}, onHello: (h) => hellos.push(h) });
    expect(decoder.want().length).to.equal(32);
    decoder.push(encodeHello({ kind: ChannelKind.MULTIFD, channelId: 3, channelCount: 4, uuid: '12345678-9abc-def0-1234-56789abcdef0' }));
    expect(hellos).to.deep.equal([{ version: 1, kind: ChannelKind.MULTIFD, channelId: 3, channelCount: 4, uuid: '12345678-9abc-def0-1234-56789abcdef0' }]);
    expect(decoder.bytesDecoded).to.equal(32);
    expectCode(() => decoder.push(encodeSyncPacket(0, 1, 'zstd')), 'COMPRESSION_MISMATCH', 'multifd 3: flags received 4 flags expected 0');
  });

  it('decodes compressed pages at a non-default page size', () => {
    const pageSize = 512;
    const guest = new FakeGuest([10], { pageSize, slabPages: 3 });
    const decoder = new MultifdDecoder({ sink: guest, layout: guest.layout, compression: 'zstd', pageSize, onSync: () => {} });
    const ram = sourceRam([10], 5, pageSize);
    for (const packet of encodeChannel(ram, [{ round: 0, block: 0, runs: [{ first: 2, count: 7, zero: false }] }], { compression: 'zstd', level: 3 }, pageSize)) {
      decoder.push(packet);
    }
    expect(Buffer.from(guest.page(0, 2, 7)).equals((ram[0] as Uint8Array).subarray(2 * pageSize, 9 * pageSize))).to.equal(true);
    expect(guest.events.filter((e) => e.call === 'pageView').map((e) => e.call === 'pageView' && e.given)).to.deep.equal([1, 3, 3]);
  });

  it('takes pages once setLayout names the guest blocks', () => {
    const guest = new FakeGuest([2]);
    const decoder = new MultifdDecoder({ sink: guest, compression: 'none', onSync: () => {} });
    decoder.setLayout(guest.layout);
    decoder.push(encodePacketHeader({ sync: false, compression: 'none', packetNumber: 0, round: 0, block: 0, runs: [{ first: 1, count: 1, zero: true }], dataLength: 0 }));
    expect(guest.events).to.deep.equal([{ call: 'zeroPages', block: 0, first: 1, count: 1 }]);
  });

  it('lands pages read by a net.Socket with onread byte-exact (short runs read ahead)', async () => {
    const codec: Codec = { compression: 'none', level: 0 };
    const packets = encodeChannel(source, PACKETS, codec);
    const stream = Buffer.concat([encodeHello({ kind: ChannelKind.MULTIFD, channelId: 0, channelCount: 1 }), ...packets]);
    const d = destination('none', 5);
    const hello = Buffer.alloc(32);
    let helloRead = 0;
    // The acceptor reads the hello itself, then hands the connection to the decoder.
    const failure = await readThroughOnread(
      new SeededRandom(3).chunks(stream, 65536),
      () => (helloRead < 32 ? hello.subarray(helloRead) : d.decoder.want()),
      (n) => {
        if (helloRead < 32) helloRead += n;
        else d.decoder.commit(n);
      },
    );
    expect(failure).to.equal(undefined);
    expect(hello.readUInt32BE(0)).to.equal(0x4c564d47);
    checkLanded(d, packets.map((p) => p.length));
  });
});

describe('multifd packet encoder', () => {
  it('writes the header and run descriptors as documented', () => {
    const bytes = encodePacketHeader({
      sync: false,
      compression: 'none',
      packetNumber: 0x01020304,
      round: 7,
      block: 3,
      runs: [
        { first: 16, count: 2, zero: false },
        { first: 40, count: 8, zero: true },
      ],
      dataLength: 2 * PAGE,
    });
    expect(bytes.toString('hex')).to.equal(
      '11223344' + '0001' + '0000' + '01020304' + '00000007' + '0003' + '0002' + '00002000' + '00000010' + '00000002' + '00000028' + '80000008',
    );
  });

  it('sets SYNC in bit 0 and the compression in bits 1-3 (zlib 0x2, zstd 0x4 as in QEMU)', () => {
    expect(encodeSyncPacket(9, 4, 'none').toString('hex')).to.equal('11223344' + '0001' + '0001' + '00000009' + '00000004' + '0000' + '0000' + '00000000');
    expect(encodeSyncPacket(0, 0, 'zlib').readUInt16BE(6)).to.equal(0x3);
    expect(encodeSyncPacket(0, 0, 'zstd').readUInt16BE(6)).to.equal(0x5);
    const zlib = encodePacketHeader({ sync: false, compression: 'zlib', packetNumber: 0, round: 0, block: 0, runs: [{ first: 0, count: 1, zero: false }], dataLength: 10 });
    expect(zlib.readUInt16BE(6)).to.equal(0x2);
    const zstdSync = encodePacketHeader({ sync: true, compression: 'zstd', packetNumber: 0, round: 0, block: 0, runs: [{ first: 0, count: 1, zero: false }], dataLength: 10 });
    expect(zstdSync.readUInt16BE(6)).to.equal(0x5);
  });

  it('accepts the largest packet: 1024 runs, 2048 pages, 8 MiB of bytes (+64 KiB compressed)', () => {
    const runs = Array.from({ length: 1024 }, (_, i) => ({ first: 2 * i, count: 2, zero: false }));
    const base = { sync: false, packetNumber: 0, round: 0, block: 0, runs };
    expect(encodePacketHeader({ ...base, compression: 'none', dataLength: 8 * 1024 * 1024 }).length).to.equal(24 + 8 * 1024);
    expect(encodePacketHeader({ ...base, compression: 'zstd', dataLength: 8 * 1024 * 1024 + 64 * 1024 }).readUInt32BE(20)).to.equal(8 * 1024 * 1024 + 64 * 1024);
  });

  const one: PageRun[] = [{ first: 0, count: 1, zero: false }];
  const base = { sync: false, compression: 'none' as CompressionMethod, packetNumber: 0, round: 0, block: 0, runs: one, dataLength: PAGE };
  const refused: [string, () => Buffer, MultifdErrorCode, string][] = [
    ['a packet without runs that is not SYNC', () => encodePacketHeader({ ...base, runs: [], dataLength: 0 }), 'BAD_RUN', 'A multifd packet without pages must be a SYNC packet'],
    ['a packet without runs naming a block', () => encodePacketHeader({ ...base, sync: true, block: 2, runs: [], dataLength: 0 }), 'BAD_BLOCK', 'A multifd packet without pages names block 0, not 2'],
    [
      'more than 1024 runs',
      () => encodePacketHeader({ ...base, runs: Array.from({ length: 1025 }, (_, i) => ({ first: i, count: 1, zero: true })), dataLength: 0 }),
      'TOO_LARGE',
      'A multifd packet holds at most 1024 runs, not 1025',
    ],
    ['a run of no pages', () => encodePacketHeader({ ...base, runs: [{ first: 0, count: 0, zero: false }] }), 'BAD_RUN', 'Bad page run: first 0, count 0 of block 0'],
    ['more than 2048 pages', () => encodePacketHeader({ ...base, runs: [{ first: 0, count: 2049, zero: true }], dataLength: 0 }), 'TOO_LARGE', 'A multifd packet holds at most 2048 pages, not 2049'],
    ['a block index over 16 bits', () => encodePacketHeader({ ...base, block: 65536 }), 'BAD_BLOCK', 'Block index 65536 does not fit in 16 bits'],
    [
      'more than 8 MiB of page bytes',
      () => encodePacketHeader({ ...base, runs: [{ first: 0, count: 3, zero: false }], pageSize: 4 * 1024 * 1024, dataLength: 3 * 4 * 1024 * 1024 }),
      'TOO_LARGE',
      'A multifd packet carries at most 8388608 bytes of pages, not 12582912',
    ],
    ['raw data of the wrong length', () => encodePacketHeader({ ...base, dataLength: PAGE - 1 }), 'BAD_LENGTH', 'Data length 4095 does not fit 1 pages of 4096 bytes with compression none'],
    [
      'compressed data over the 64 KiB slack',
      () => encodePacketHeader({ ...base, compression: 'zlib', dataLength: PAGE + 65537 }),
      'BAD_LENGTH',
      'Data length 69633 does not fit 1 pages of 4096 bytes with compression zlib',
    ],
    ['compressed data of no bytes', () => encodePacketHeader({ ...base, compression: 'zstd', dataLength: 0 }), 'BAD_LENGTH', 'Data length 0 does not fit 1 pages of 4096 bytes with compression zstd'],
    [
      'data for a packet of zero runs only',
      () => encodePacketHeader({ ...base, compression: 'zlib', runs: [{ first: 0, count: 1, zero: true }], dataLength: 8 }),
      'BAD_LENGTH',
      'Data length 8 does not fit 0 pages of 4096 bytes with compression zlib',
    ],
  ];
  for (const [what, encode, code, message] of refused) {
    it(`refuses ${what} with ${code}`, () => expectCode(encode, code, message));
  }

  it('refuses numbers that do not fit their fields, and unknown compression, with RangeError', () => {
    expect(() => encodePacketHeader({ ...base, packetNumber: 2 ** 32 })).to.throw(RangeError, 'Packet number 4294967296 does not fit in 32 bits');
    expect(() => encodePacketHeader({ ...base, round: -1 })).to.throw(RangeError, 'Round -1 does not fit in 32 bits');
    expect(() => encodeSyncPacket(0, 0, 'lz4' as CompressionMethod)).to.throw(RangeError, "Unknown multifd compression 'lz4'");
    expect(() => encodeSyncPacket(0, 0, 'toString' as CompressionMethod)).to.throw(RangeError, "Unknown multifd compression 'toString'");
  });
});

describe('multifd page compression', () => {
  const pages = [(source[0] as Uint8Array).subarray(0, 3 * PAGE), (source[2] as Uint8Array).subarray(0, PAGE)];
  const joined = Buffer.concat(pages);

  it('zlib: one zlib-format stream of the concatenated views, at the level asked for', () => {
    const fast = compressPages('zlib', 1, pages);
    expect(Buffer.from(inflateSync(fast)).equals(joined)).to.equal(true);
    expect(fast[0]).to.equal(0x78);
    // Level 0 stores the bytes: a little larger than the input.
    const stored = compressPages('zlib', 0, pages);
    expect(stored.length).to.be.greaterThan(joined.length);
    expect(Buffer.from(inflateSync(stored)).equals(joined)).to.equal(true);
    expect(fast.length).to.be.lessThan(joined.length / 4);
  });

  it('zstd: one frame of the concatenated views that declares its size', () => {
    const packed = compressPages('zstd', 3, pages);
    expect(Buffer.from(packed.subarray(0, 4)).toString('hex')).to.equal('28b52ffd');
    expect(Buffer.from(decompress(packed)).equals(joined)).to.equal(true);
  });

  it('does not let one call change what an earlier call returned', () => {
    const first = compressPages('zlib', 1, pages);
    const copy = Buffer.from(first);
    compressPages('zlib', 1, [new Uint8Array(5 * PAGE).fill(3), new Uint8Array(PAGE)]);
    expect(Buffer.from(first).equals(copy)).to.equal(true);
  });

  it('refuses levels outside multifd-zlib-level 0-9 and multifd-zstd-level 0-20', () => {
    expect(() => compressPages('zlib', 10, pages)).to.throw(RangeError, 'zlib level 10 is out of range (0 to 9)');
    expect(() => compressPages('zstd', 21, pages)).to.throw(RangeError, 'zstd level 21 is out of range (0 to 20)');
    expect(() => compressPages('zlib', 1.5, pages)).to.throw(RangeError, 'zlib level 1.5 is out of range (0 to 9)');
  });
});

function expectCode(fn: () => unknown, code: MultifdErrorCode, message: string): void {
  let error: unknown;
  try {
    fn();
  } catch (e) {
    error = e;
  }
  expect(error).to.be.instanceOf(MultifdError);
  expect((error as MultifdError).code).to.equal(code);
  expect((error as MultifdError).message).to.equal(message);
}
