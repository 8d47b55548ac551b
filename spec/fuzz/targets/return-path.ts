/**
 * Return-path messages (protocols/return-path): a 4-byte header (type,
 * length) and a msgpack body, RECV_BITMAP with its bitmap after it. Every
 * message delivered must match its schema and bounds.
 */
import { expect } from 'chai';
import * as fc from 'fast-check';
import { Packr } from 'msgpackr';
import { ReturnPathDecoder } from '../../../protocols/return-path/decode.js';
import { encodeReturnPath } from '../../../protocols/return-path/encode.js';
import { ReturnPathError } from '../../../protocols/return-path/errors.js';
import { checkBody, type ReturnPathMessage } from '../../../protocols/return-path/messages.js';
import { withinBounds } from '../bounds.js';
import { cutsArbitrary, feedPull, withCuts } from '../chunking.js';
import type { FuzzTarget } from '../fuzz-target.js';
import { hostileBytes } from '../mutation.js';
import { acceptsOrRejects } from '../rejection.js';

/** The source's blocks and the largest received bitmap each may have. */
const BITMAP_LIMITS: Record<string, number> = { 'pc.ram': 48, 'vga.vram': 3 };
const maxBitmapBytes = (block: string): number | undefined => (Object.hasOwn(BITMAP_LIMITS, block) ? BITMAP_LIMITS[block] : undefined);

const block = fc.constantFrom('pc.ram', 'vga.vram');
const messageArbitrary: fc.Arbitrary<ReturnPathMessage> = fc.oneof(
  fc.record({ type: fc.constant('shut' as const), status: fc.nat({ max: 2 }) }),
  fc.record({ type: fc.constant('pong' as const), value: fc.nat({ max: 0xffffffff }) }),
  fc.record({ type: fc.constant('req-pages-id' as const), block, start: fc.nat({ max: 1000 }).map((p) => p * 4096), len: fc.integer({ min: 1, max: 4 }).map((n) => n * 4096) }),
  fc.record({ type: fc.constant('req-pages' as const), start: fc.nat({ max: 1000 }).map((p) => p * 4096), len: fc.constant(4096) }),
  block.chain((b) => fc.record({ type: fc.constant('recv-bitmap' as const), block: fc.constant(b), bitmap: fc.uint8Array({ maxLength: BITMAP_LIMITS[b] as number }) })),
  fc.record({ type: fc.constant('resume-ack' as const), value: fc.constant(1) }),
  fc.constant<ReturnPathMessage>({ type: 'switchover-ack' }),
);

const messagesArbitrary = fc.array(messageArbitrary, { minLength: 1, maxLength: 8 });
const encodeAll = (messages: readonly ReturnPathMessage[]): Uint8Array => Buffer.concat(messages.map(encodeReturnPath));

const packr = new Packr({ useRecords: false, variableMapSize: true });

/** A header with any type number and a fitting length over a body whose fields are half-right. */
const junkArbitrary: fc.Arbitrary<Uint8Array> = fc
  .record({
    type: fc.nat({ max: 9 }),
    body: fc.dictionary(fc.constantFrom('status', 'value', 'block', 'start', 'len', 'type', 'error'), fc.constantFrom<unknown>(0, 1, -1, 2 ** 32, 2 ** 53, 'pc.ram', 'rom', '', null, true, Uint8Array.of(1), [1], {})),
    length: fc.option(fc.constantFrom(0, 1, 511, 512, 513, 0xffff), { freq: 5 }),
  })
  .map(({ type, body, length }) => {
    const packed = packr.pack(body);
    const header = Buffer.alloc(4);
    header.writeUInt16BE(type, 0);
    header.writeUInt16BE(length ?? packed.length, 2);
    return Buffer.concat([header, packed]);
  });

function decode(input: Parameters<FuzzTarget['check']>[0], delivered: ReturnPathMessage[]): void {
  feedPull(new ReturnPathDecoder({ onMessage: (m) => delivered.push(m), maxBitmapBytes }), input);
}

export const returnPathTarget: FuzzTarget = {
  name: 'return-path',
  input: withCuts(hostileBytes(messagesArbitrary.map(encodeAll), junkArbitrary)),
  check(input) {
    const delivered: ReturnPathMessage[] = [];
    withinBounds(input.bytes.length, () => acceptsOrRejects(() => decode(input, delivered), [ReturnPathError]));
    for (const message of delivered) {
      const { type, ...body } = message as ReturnPathMessage & { bitmap?: Uint8Array; block?: string };
      if (type === 'recv-bitmap') {
        expect(body.bitmap?.length).to.be.at.most(maxBitmapBytes(body.block ?? '') ?? 0);
        delete body.bitmap;
      }
      expect(checkBody(type, body), type).to.equal(undefined);
    }
  },
  roundTrip: fc.property(messagesArbitrary, cutsArbitrary, (messages, cuts) => {
    const delivered: ReturnPathMessage[] = [];
    decode({ bytes: encodeAll(messages), cuts }, delivered);
    expect(delivered).to.deep.equal(messages);
  }),
};
