/**
 * Fuzzes the main stream decoder with mutated, truncated and spliced valid
 * streams, structured random frames and random bytes, under random chunkings.
 * The decoder may only ever throw a StreamError, and may only write guest
 * pages that a checked run named (guard bytes around every block, and every
 * changed page must lie in a view the sink handed out or a zero run).
 */
import { expect } from 'chai';
import { Packr } from 'msgpackr';
import { ChannelKind } from '../../protocols/hello/constants.js';
import { StreamDecoder } from '../../protocols/stream/decode.js';
import { XBZRLE_HEADER_SIZE, encodeControl, writeXbzrleHeader, writeXbzrlePageHeader } from '../../protocols/stream/encode.js';
import { encode as encodeXbzrle } from '../../protocols/xbzrle/encode.js';
import { encodeHello } from '../../protocols/hello/encode.js';
import { StreamError, type StreamErrorCode } from '../../protocols/stream/errors.js';
import type { StreamMessage } from '../../protocols/stream/messages.js';
import type { PageRun } from '../../protocols/page-runs/types.js';
import { FakeGuest, PAGE, pagesFrame, sourceRam } from '../stream-fake-guest.js';
import { checkWrites, feed } from './decoder-harness.js';
import { fuzzIterations, fuzzSeed, SeededRandom } from './seeded-random.js';

const ITERATIONS = fuzzIterations(6000);
const FILL = 0x5a;
const FILLED_PAGE = new Uint8Array(PAGE).fill(FILL);
const PAGE_COUNTS = [64, 8, 3];
const CODES: readonly StreamErrorCode[] = [
  'BAD_MAGIC',
  'BAD_VERSION',
  'BAD_HELLO',
  'BAD_FRAME',
  'BAD_FRAME_TYPE',
  'FRAME_TOO_LARGE',
  'BAD_PAGES',
  'BAD_XBZRLE',
  'BAD_MESSAGE',
  'UNKNOWN_MESSAGE',
  'TRUNCATED',
];

const packr = new Packr({ useRecords: false });
const hello = encodeHello({ kind: ChannelKind.MAIN, channelId: 0, channelCount: 1, uuid: '00000000-0000-0000-0000-000000000001' });
const header: StreamMessage = {
  type: 'header',
  pageSize: PAGE,
  blocks: PAGE_COUNTS.map((pages, i) => ({ name: `b${i}`, size: pages * PAGE })),
  vcpus: 1,
  devices: [{ name: 'cpu', instance: 0, version: 1 }],
  runState: 'running',
  capabilities: [],
};
/** The same guest, with XBZRLE frames allowed. */
const xbzrleHeader: StreamMessage = { ...header, capabilities: ['xbzrle'] };

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

/** An XBZRLE frame of up to 3 pages of `block`, each delta taking a page of `ram` from a few bytes changed. */
function xbzrleFrame(random: SeededRandom, ram: readonly Uint8Array[], block: number): Uint8Array {
  const pageCount = PAGE_COUNTS[block] as number;
  const pages = Array.from({ length: random.int(1, 3) }, () => random.int(0, pageCount - 1));
  const frame = Buffer.alloc(XBZRLE_HEADER_SIZE + pages.length * (6 + PAGE));
  const delta = new Uint8Array(PAGE);
  let at = XBZRLE_HEADER_SIZE;
  for (const page of pages) {
    const now = (ram[block] as Uint8Array).subarray(page * PAGE, (page + 1) * PAGE);
    const before = Uint8Array.from(now);
    before.fill(random.int(0, 255), random.int(0, PAGE - 8), random.int(PAGE - 8, PAGE));
    const n = Math.max(0, encodeXbzrle(before, now, delta));
    at = writeXbzrlePageHeader(frame, at, page, n);
    frame.set(delta.subarray(0, n), at);
    at += n;
  }
  writeXbzrleHeader(frame, block, pages.length, at - XBZRLE_HEADER_SIZE);
  return frame.subarray(0, at);
}

function validStream(random: SeededRandom): Uint8Array {
  const ram = sourceRam(PAGE_COUNTS, random.int(0, 255));
  const xbzrle = random.next() < 0.4;
  const parts: Uint8Array[] = [hello, encodeControl(xbzrle ? xbzrleHeader : header)];
  for (let f = random.int(1, 6); f > 0; f--) {
    const block = random.int(0, PAGE_COUNTS.length - 1);
    if (xbzrle && random.next() < 0.5) parts.push(xbzrleFrame(random, ram, block));
    else parts.push(pagesFrame(ram, block, randomRuns(random, PAGE_COUNTS[block] as number)));
    if (random.next() < 0.3) parts.push(encodeControl({ type: 'device', name: 'cpu', instance: 0, version: 1, state: random.bytes(random.int(0, 40)) }));
  }
  parts.push(encodeControl({ type: 'eof' }));
  return Buffer.concat(parts);
}

function randomValue(random: SeededRandom, depth = 0): unknown {
  switch (random.int(0, depth > 2 ? 4 : 7)) {
    case 0:
      return random.pick([0, 1, -1, 4096, 2 ** 32, 2 ** 48, 2 ** 53, 1.5, NaN]);
    case 1:
      return random.pick(['', 'pc.ram', 'x'.repeat(300), 'running', 'header', 'eof']);
    case 2:
      return random.bytes(random.int(0, 8));
    case 3:
      return random.pick([null, undefined, true, false]);
    case 4:
      return random.int(0, 1000);
    case 5:
      return Array.from({ length: random.int(0, 3) }, () => randomValue(random, depth + 1));
    default: {
      const out: Record<string, unknown> = {};
      for (let i = random.int(0, 4); i > 0; i--) {
        out[random.pick(['type', 'name', 'size', 'blocks', 'state', 'value', 'round', 'pageCount', 'uuid'])] = randomValue(random, depth + 1);
      }
      return out;
    }
  }
}

/** A frame whose header is plausible and whose body is random or half-right. */
function randomFrame(random: SeededRandom): Uint8Array {
  if (random.next() < 0.5) {
    const body =
      random.next() < 0.5
        ? packr.pack({ ...(randomValue(random) as object), type: random.pick(['header', 'device', 'ping', 'round-end', 'eof', 'packaged', 'nope']) })
        : random.bytes(random.int(0, 30));
    const frame = Buffer.alloc(8 + body.length);
    frame[0] = 1;
    frame.writeUInt32BE(body.length, 4);
    frame.set(body, 8);
    return frame;
  }
  const runs = random.int(0, 4);
  const body = Buffer.alloc(8 + 8 * runs + random.pick([0, PAGE, 2 * PAGE, 3]));
  body.writeUInt16BE(random.int(0, 3), 0);
  body.writeUInt16BE(random.next() < 0.9 ? runs : random.int(0, 0xffff), 2);
  for (let i = 0; i < runs; i++) {
    body.writeUInt32BE(random.pick([0, 1, 2, 7, 62, 63, 64, 0xffffffff, random.int(0, 70)]), 8 + 8 * i);
    body.writeUInt32BE(random.pick([0, 1, 2, 0x80000001, 0x80000000, 0x7fffffff, 2049, random.int(0, 3)]) >>> 0, 12 + 8 * i);
  }
  const frame = Buffer.alloc(8);
  frame[0] = 2;
  frame.writeUInt32BE(random.next() < 0.8 ? body.length : random.int(0, 0x1000000), 4);
  return Buffer.concat([frame, body]);
}

const BOUNDARY_WORDS = [0, 1, 2, 0x7fffffff, 0x80000000, 0xffffffff, 1024, 1025, 2048, 2049, 0x1000000, 0x1000001];

function mutate(random: SeededRandom, base: Uint8Array): Uint8Array {
  const bytes = Buffer.from(base);
  switch (random.int(0, 8)) {
    case 0: {
      for (let n = random.int(1, 8); n > 0; n--) bytes[random.int(0, bytes.length - 1)] = random.int(0, 255);
      return bytes;
    }
    case 1:
      return bytes.subarray(0, random.int(0, bytes.length));
    case 2: {
      const at = random.int(0, bytes.length);
      return Buffer.concat([bytes.subarray(0, at), random.bytes(random.int(1, 16)), bytes.subarray(at)]);
    }
    case 3: {
      const at = random.int(0, bytes.length);
      return Buffer.concat([bytes.subarray(0, at), bytes.subarray(Math.min(bytes.length, at + random.int(1, 64)))]);
    }
    case 4: {
      if (bytes.length >= 4) bytes.writeUInt32BE(random.pick(BOUNDARY_WORDS), random.int(0, bytes.length - 4));
      return bytes;
    }
    case 5:
      return random.next() < 0.5 ? random.bytes(random.int(0, 600)) : Buffer.concat([hello, random.bytes(random.int(0, 600))]);
    case 6:
      return Buffer.concat([hello, encodeControl(header), ...Array.from({ length: random.int(1, 4) }, () => randomFrame(random))]);
    case 7: {
      const at = random.int(0, bytes.length);
      const from = random.int(0, bytes.length);
      return Buffer.concat([bytes.subarray(0, at), bytes.subarray(from)]);
    }
    default:
      return bytes;
  }
}

/** A destination adopts its own layout once it has accepted the header, and takes XBZRLE pages if it says so. */
function adoptHeader(decoder: StreamDecoder, guest: FakeGuest, message: StreamMessage & { type: 'header' }): void {
  decoder.setLayout(guest.layout);
  if (message.capabilities.includes('xbzrle')) decoder.setXbzrle(guest);
}

describe('fuzz: main stream decoder', () => {
  const seed = fuzzSeed(0x51ee7);

  it('decodes the unmutated corpus cleanly', () => {
    const random = new SeededRandom(seed);
    for (let i = 0; i < 20; i++) {
      const guest = new FakeGuest(PAGE_COUNTS, { fill: FILL, slabPages: random.int(1, 9) });
      const decoder = new StreamDecoder({ sink: guest, onMessage: (m) => m.type === 'header' && adoptHeader(decoder, guest, m) });
      feed(random, decoder, validStream(random));
      checkWrites(guest, PAGE_COUNTS, FILLED_PAGE);
    }
  });

  it(`only ever throws StreamError and writes only named pages (${ITERATIONS} cases, seed ${seed})`, () => {
    const random = new SeededRandom(seed);
    const corpus = Array.from({ length: 12 }, () => validStream(random));
    const seen = new Set<string>();
    for (let i = 0; i < ITERATIONS; i++) {
      const input = mutate(random, random.pick(corpus));
      const guest = new FakeGuest(PAGE_COUNTS, { fill: FILL, slabPages: random.pick([1, 2, 5, Infinity]) });
      const decoder = new StreamDecoder({
        sink: guest,
        onMessage: (m) => {
          if (m.type === 'header') adoptHeader(decoder, guest, m);
        },
      });
      try {
        feed(random, decoder, input);
        seen.add('ok');
      } catch (error) {
        if (!(error instanceof StreamError) || !CODES.includes(error.code)) {
          throw new Error(`case ${i} (seed ${seed}) threw ${String(error)}; input ${Buffer.from(input).toString('hex').slice(0, 400)}`);
        }
        seen.add(error.code);
      }
      checkWrites(guest, PAGE_COUNTS, FILLED_PAGE);
    }
    // The mutations reach deep into the format, not just the magic check.
    for (const code of ['ok', 'BAD_MAGIC', 'BAD_FRAME_TYPE', 'BAD_PAGES', 'BAD_XBZRLE', 'BAD_MESSAGE', 'TRUNCATED', 'FRAME_TOO_LARGE', 'UNKNOWN_MESSAGE']) {
      expect(seen.has(code), `some case ended with ${code}`).to.equal(true);
    }
  });
});
