/**
 * Fuzzes the multifd channel decoder with mutated, truncated and spliced
 * valid channels (each compression, with and without the hello), structured
 * random packets and random bytes, under random chunkings. The decoder may
 * only ever throw a MultifdError, may only write guest pages that a checked
 * run named (guard bytes around every block, and every changed page must lie
 * in a view the sink handed out or a zero run), and reports SYNC rounds one
 * after the other.
 */
import { expect } from 'chai';
import { compressPages } from '../../protocols/multifd/compression.js';
import { MultifdDecoder } from '../../protocols/multifd/decode.js';
import { encodePacketHeader } from '../../protocols/multifd/encode.js';
import { MultifdError, type MultifdErrorCode } from '../../protocols/multifd/errors.js';
import { COMPRESSION_METHODS, type CompressionMethod } from '../../protocols/multifd/constants.js';
import type { PageRun } from '../../protocols/page-runs/types.js';
import { ChannelKind } from '../../protocols/hello/constants.js';
import { encodeHello } from '../../protocols/hello/encode.js';
import { FakeGuest, PAGE, sourceRam } from '../stream-fake-guest.js';
import { checkWrites, feed } from './decoder-harness.js';
import { fuzzIterations, fuzzSeed, SeededRandom } from './seeded-random.js';

const ITERATIONS = fuzzIterations(2500);
const FILL = 0x5a;
const FILLED_PAGE = new Uint8Array(PAGE).fill(FILL);
const PAGE_COUNTS = [64, 8, 3];
const METHODS = COMPRESSION_METHODS;
const CODES: readonly MultifdErrorCode[] = [
  'BAD_HELLO',
  'BAD_MAGIC',
  'BAD_VERSION',
  'BAD_FLAGS',
  'COMPRESSION_MISMATCH',
  'OUT_OF_SEQUENCE',
  'BAD_ROUND',
  'BAD_BLOCK',
  'BAD_RUN',
  'BAD_LENGTH',
  'TOO_LARGE',
  'DECOMPRESS_FAILED',
  'TRUNCATED',
];

const hello = encodeHello({ kind: ChannelKind.MULTIFD, channelId: 1, channelCount: 2, uuid: '00000000-0000-0000-0000-000000000001' });

interface Channel {
  compression: CompressionMethod;
  withHello: boolean;
  bytes: Uint8Array;
}

function randomRuns(random: SeededRandom, pageCount: number): PageRun[] {
  const runs: PageRun[] = [];
  let at = random.int(0, 3);
  while (at < pageCount && runs.length < random.int(1, 6)) {
    const count = random.int(1, Math.min(5, pageCount - at));
    runs.push({ first: at, count, zero: random.next() < 0.3 });
    at += count + random.int(0, 4);
  }
  return runs.length ? runs : [{ first: 0, count: 1, zero: false }];
}

/** The data of a packet as a source channel writes it. */
function packetData(ram: readonly Uint8Array[], block: number, runs: readonly PageRun[], compression: CompressionMethod, level: number): Uint8Array[] {
  const views = runs.filter((r) => !r.zero).map((r) => (ram[block] as Uint8Array).subarray(r.first * PAGE, (r.first + r.count) * PAGE));
  return compression === 'none' || views.length === 0 ? views : [compressPages(compression, level, views)];
}

function validChannel(random: SeededRandom, compression: CompressionMethod): Channel {
  const ram = sourceRam(PAGE_COUNTS, random.int(0, 255));
  const withHello = random.next() < 0.5;
  const parts: Uint8Array[] = withHello ? [hello] : [];
  let round = random.int(0, 3);
  for (let packetNumber = 0, n = random.int(1, 6); packetNumber < n; packetNumber++) {
    const sync = random.next() < 0.35;
    const block = random.int(0, PAGE_COUNTS.length - 1);
    const runs = sync && random.next() < 0.5 ? [] : randomRuns(random, PAGE_COUNTS[block] as number);
    const data = packetData(ram, block, runs, compression, random.int(0, 3));
    const dataLength = data.reduce((sum, v) => sum + v.length, 0);
    parts.push(encodePacketHeader({ sync, compression, packetNumber, round, block: runs.length ? block : 0, runs, dataLength }), ...data);
    if (sync) round++;
  }
  return { compression, withHello, bytes: Buffer.concat(parts) };
}

const BOUNDARY_WORDS = [0, 1, 2, 3, 4, 0xe, 0x7fffffff, 0x80000000, 0xffffffff, 1024, 1025, 2048, 2049, 0x800000, 0x810001, 0x11223344];

/** A packet whose header is plausible and whose descriptors and data are random or half-right. */
function randomPacket(random: SeededRandom, compression: CompressionMethod, packetNumber: number): Uint8Array {
  const runs = random.int(0, 4);
  const header = Buffer.alloc(24 + 8 * runs);
  const code = METHODS.indexOf(compression);
  header.writeUInt32BE(random.next() < 0.95 ? 0x11223344 : random.pick(BOUNDARY_WORDS), 0);
  header.writeUInt16BE(random.next() < 0.95 ? 1 : random.int(0, 3), 4);
  header.writeUInt16BE(random.pick([code << 1, (code << 1) | 1, random.int(0, 0xf), random.int(0, 0xffff)]), 6);
  header.writeUInt32BE(random.next() < 0.9 ? packetNumber : random.pick(BOUNDARY_WORDS), 8);
  header.writeUInt32BE(random.int(0, 4), 12);
  header.writeUInt16BE(random.int(0, 3), 16);
  header.writeUInt16BE(random.next() < 0.9 ? runs : random.int(0, 0xffff), 18);
  let dataPages = 0;
  for (let i = 0; i < runs; i++) {
    const count = random.pick([0, 1, 2, 0x80000001, 0x80000000, 0x7fffffff, 2049, random.int(0, 3)]) >>> 0;
    if ((count & 0x80000000) === 0) dataPages += count;
    header.writeUInt32BE(random.pick([0, 1, 2, 7, 62, 63, 64, 0xffffffff, random.int(0, 70)]), 24 + 8 * i);
    header.writeUInt32BE(count, 28 + 8 * i);
  }
  let data: Uint8Array;
  if (compression !== 'none' && dataPages > 0 && dataPages < 8 && random.next() < 0.5) {
    // Valid compressed data of roughly the right size, so placement is reached.
    const size = (dataPages + random.pick([0, 0, -1, 1])) * PAGE - random.pick([0, 0, 1]);
    data = compressPages(compression, 1, [random.bytes(Math.max(1, size))]);
  } else {
    data = random.bytes(random.pick([0, dataPages <= 16 ? dataPages * PAGE : 5, 3, random.int(0, 200)]));
  }
  header.writeUInt32BE(random.next() < 0.8 ? data.length : random.pick(BOUNDARY_WORDS), 20);
  return Buffer.concat([header, data]);
}

function mutate(random: SeededRandom, base: Channel): Channel {
  const bytes = Buffer.from(base.bytes);
  const out = (changed: Uint8Array): Channel => ({ ...base, bytes: changed });
  switch (random.int(0, 9)) {
    case 0: {
      for (let n = random.int(1, 8); n > 0; n--) bytes[random.int(0, bytes.length - 1)] = random.int(0, 255);
      return out(bytes);
    }
    case 1:
      return out(bytes.subarray(0, random.int(0, bytes.length)));
    case 2: {
      const at = random.int(0, bytes.length);
      return out(Buffer.concat([bytes.subarray(0, at), random.bytes(random.int(1, 16)), bytes.subarray(at)]));
    }
    case 3: {
      const at = random.int(0, bytes.length);
      return out(Buffer.concat([bytes.subarray(0, at), bytes.subarray(Math.min(bytes.length, at + random.int(1, 64)))]));
    }
    case 4: {
      if (bytes.length >= 4) bytes.writeUInt32BE(random.pick(BOUNDARY_WORDS), random.int(0, bytes.length - 4));
      return out(bytes);
    }
    case 5:
      return out(random.next() < 0.5 ? random.bytes(random.int(0, 600)) : Buffer.concat([base.withHello ? hello : new Uint8Array(0), random.bytes(random.int(0, 600))]));
    case 6: {
      const packets = Array.from({ length: random.int(1, 4) }, (_, i) => randomPacket(random, base.compression, i));
      return out(Buffer.concat([base.withHello ? hello : new Uint8Array(0), ...packets]));
    }
    case 7: {
      const at = random.int(0, bytes.length);
      const from = random.int(0, bytes.length);
      return out(Buffer.concat([bytes.subarray(0, at), bytes.subarray(from)]));
    }
    case 8: {
      // The header words that matter most: flags, packet number, round, counts.
      const headerAt = (base.withHello ? 32 : 0) + random.pick([6, 8, 12, 16, 18, 20]);
      if (bytes.length >= headerAt + 2) bytes.writeUInt16BE(random.int(0, 0xffff), headerAt);
      return out(bytes);
    }
    default:
      return out(bytes);
  }
}

function decoderFor(channel: Channel, guest: FakeGuest, syncs: number[]): MultifdDecoder {
  return new MultifdDecoder({
    sink: guest,
    layout: guest.layout,
    compression: channel.compression,
    onSync: (round) => syncs.push(round),
    ...(channel.withHello ? { onHello: () => {} } : {}),
  });
}

/** SYNC rounds on one channel follow each other: each the one after the last. */
function checkSyncs(syncs: readonly number[]): void {
  for (let i = 1; i < syncs.length; i++) expect(syncs[i], `SYNC ${i} of ${syncs.join(',')}`).to.equal((syncs[i - 1] as number) + 1);
}

describe('fuzz: multifd channel decoder', () => {
  const seed = fuzzSeed(0x3f1fd);

  it('decodes the unmutated corpus cleanly', () => {
    const random = new SeededRandom(seed);
    for (let i = 0; i < 30; i++) {
      const channel = validChannel(random, random.pick(METHODS));
      const guest = new FakeGuest(PAGE_COUNTS, { fill: FILL, slabPages: random.int(1, 9) });
      const syncs: number[] = [];
      feed(random, decoderFor(channel, guest, syncs), channel.bytes);
      checkWrites(guest, PAGE_COUNTS, FILLED_PAGE);
      checkSyncs(syncs);
    }
  });

  it(`only ever throws MultifdError and writes only named pages (${ITERATIONS} cases, seed ${seed})`, function () {
    this.timeout(60000);
    const random = new SeededRandom(seed);
    const corpus = METHODS.flatMap((method) => Array.from({ length: 6 }, () => validChannel(random, method)));
    const seen = new Set<string>();
    for (let i = 0; i < ITERATIONS; i++) {
      const channel = mutate(random, random.pick(corpus));
      const guest = new FakeGuest(PAGE_COUNTS, { fill: FILL, slabPages: random.pick([1, 2, 5, Infinity]) });
      const syncs: number[] = [];
      const decoder = decoderFor(channel, guest, syncs);
      try {
        feed(random, decoder, channel.bytes);
        seen.add('ok');
      } catch (error) {
        if (!(error instanceof MultifdError) || !CODES.includes(error.code)) {
          throw new Error(`case ${i} (seed ${seed}, ${channel.compression}) threw ${String(error)}; input ${Buffer.from(channel.bytes).toString('hex').slice(0, 400)}`);
        }
        seen.add(error.code);
      }
      checkWrites(guest, PAGE_COUNTS, FILLED_PAGE);
      checkSyncs(syncs);
    }
    // The mutations reach deep into the format, not just the magic check.
    for (const code of ['ok', ...CODES]) expect(seen.has(code), `some case ended with ${code}`).to.equal(true);
  });
});
