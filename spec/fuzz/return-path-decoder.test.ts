/**
 * Fuzzes the return-path decoder with mutated and truncated valid message
 * sequences, plausible headers over random bodies, and random bytes, under
 * random chunkings. It may only ever throw a ReturnPathError, and every
 * message it delivers must match its schema and bounds.
 */
import { expect } from 'chai';
import { Packr } from 'msgpackr';
import { ReturnPathDecoder } from '../../protocols/return-path/decode.js';
import { encodeReturnPath } from '../../protocols/return-path/encode.js';
import { ReturnPathError, type ReturnPathErrorCode } from '../../protocols/return-path/errors.js';
import { checkBody, type ReturnPathMessage } from '../../protocols/return-path/messages.js';
import { fuzzIterations, fuzzSeed, SeededRandom } from './seeded-random.js';

const ITERATIONS = fuzzIterations(40000);
const BITMAP_LIMITS: Record<string, number> = { 'pc.ram': 48, 'vga.vram': 3 };
const CODES: readonly ReturnPathErrorCode[] = ['INVALID_MESSAGE', 'BAD_MESSAGE', 'BAD_BITMAP', 'TRUNCATED'];
const packr = new Packr({ useRecords: false, variableMapSize: true });

function randomMessage(random: SeededRandom): ReturnPathMessage {
  const block = random.pick(['pc.ram', 'vga.vram']);
  switch (random.int(0, 6)) {
    case 0:
      return { type: 'shut', status: random.int(0, 2) };
    case 1:
      return { type: 'pong', value: random.int(0, 0xffffffff) };
    case 2:
      return { type: 'req-pages-id', block, start: random.int(0, 1000) * 4096, len: 4096 * random.int(1, 4) };
    case 3:
      return { type: 'req-pages', start: random.int(0, 1000) * 4096, len: 4096 };
    case 4:
      return { type: 'recv-bitmap', block, bitmap: random.bytes(random.int(0, BITMAP_LIMITS[block] as number)) };
    case 5:
      return { type: 'resume-ack', value: 1 };
    default:
      return { type: 'switchover-ack' };
  }
}

function validSequence(random: SeededRandom): Buffer {
  return Buffer.concat(Array.from({ length: random.int(1, 8) }, () => encodeReturnPath(randomMessage(random))));
}

/** A header with a known type and a fitting length over a random or half-right body. */
function randomFrame(random: SeededRandom): Buffer {
  const value: Record<string, unknown> = {};
  for (let i = random.int(0, 3); i > 0; i--) {
    value[random.pick(['status', 'value', 'block', 'start', 'len', 'type'])] = random.pick<unknown>([
      0, 1, -1, 2 ** 32, 2 ** 53, 'pc.ram', 'rom', '', null, true, Uint8Array.of(1), [1], {},
    ]);
  }
  const body = random.next() < 0.7 ? packr.pack(value) : random.bytes(random.int(0, 20));
  const header = Buffer.alloc(4);
  header.writeUInt16BE(random.int(0, 8), 0);
  header.writeUInt16BE(random.next() < 0.9 ? body.length : random.int(0, 0xffff), 2);
  const tail = random.next() < 0.3 ? random.bytes(random.int(0, 24)) : new Uint8Array(0);
  return Buffer.concat([header, body, tail]);
}

function mutate(random: SeededRandom, base: Buffer): Uint8Array {
  const bytes = Buffer.from(base);
  switch (random.int(0, 6)) {
    case 0:
      for (let n = random.int(1, 4); n > 0; n--) bytes[random.int(0, bytes.length - 1)] = random.int(0, 255);
      return bytes;
    case 1:
      return bytes.subarray(0, random.int(0, bytes.length));
    case 2: {
      const at = random.int(0, bytes.length);
      return Buffer.concat([bytes.subarray(0, at), random.bytes(random.int(1, 10)), bytes.subarray(at)]);
    }
    case 3: {
      if (bytes.length >= 2) bytes.writeUInt16BE(random.pick([0, 1, 7, 8, 511, 512, 513, 0xffff]), random.int(0, bytes.length - 2));
      return bytes;
    }
    case 4:
      return random.bytes(random.int(0, 200));
    case 5:
      return Buffer.concat(Array.from({ length: random.int(1, 3) }, () => randomFrame(random)));
    default:
      return bytes;
  }
}

describe('fuzz: return-path decoder', () => {
  const seed = fuzzSeed(0x7e7);

  it(`only ever throws ReturnPathError and delivers only well-formed messages (${ITERATIONS} cases, seed ${seed})`, () => {
    const random = new SeededRandom(seed);
    const corpus = Array.from({ length: 16 }, () => validSequence(random));
    const seen = new Set<string>();
    for (let i = 0; i < ITERATIONS; i++) {
      const input = mutate(random, random.pick(corpus));
      const delivered: ReturnPathMessage[] = [];
      const decoder = new ReturnPathDecoder({ onMessage: (m) => delivered.push(m), maxBitmapBytes: (block) => BITMAP_LIMITS[block] });
      try {
        for (const chunk of random.chunks(input, random.pick([1, 3, 64, 1000]))) decoder.push(chunk);
        decoder.end();
        seen.add('ok');
      } catch (error) {
        if (!(error instanceof ReturnPathError) || !CODES.includes(error.code)) {
          throw new Error(`case ${i} (seed ${seed}) threw ${String(error)}; input ${Buffer.from(input).toString('hex').slice(0, 400)}`);
        }
        seen.add(error.code);
      }
      for (const message of delivered) {
        const { type, ...body } = message as ReturnPathMessage & { bitmap?: Uint8Array };
        if (type === 'recv-bitmap') {
          expect(body.bitmap?.length).to.be.at.most(BITMAP_LIMITS[(body as { block: string }).block] as number);
          delete body.bitmap;
        }
        expect(checkBody(type, body), `case ${i}: ${type}`).to.equal(undefined);
      }
    }
    for (const code of ['ok', ...CODES]) expect(seen.has(code), `some case ended with ${code}`).to.equal(true);
  });
});
