/**
 * The main migration stream (protocols/stream): hello, then CONTROL, PAGES
 * and XBZRLE frames. Besides rejecting cleanly, the decoder may write only
 * guest pages a checked run named.
 */
import { expect } from 'chai';
import * as fc from 'fast-check';
import { Packr } from 'msgpackr';
import { ChannelKind } from '../../../protocols/hello/constants.js';
import { encodeHello } from '../../../protocols/hello/encode.js';
import { StreamDecoder } from '../../../protocols/stream/decode.js';
import { XBZRLE_HEADER_SIZE, encodeControl, writeXbzrleHeader, writeXbzrlePageHeader } from '../../../protocols/stream/encode.js';
import { StreamError } from '../../../protocols/stream/errors.js';
import type { HeaderMessage, StreamMessage } from '../../../protocols/stream/messages.js';
import type { PageRun } from '../../../protocols/page-runs/types.js';
import { encode as encodeXbzrle } from '../../../protocols/xbzrle/encode.js';
import { expectedRam, type FakeGuest, PAGE, pagesFrame, sourceRam } from '../../stream-fake-guest.js';
import { withinBounds } from '../bounds.js';
import { cutsArbitrary, feedPull, withCuts } from '../chunking.js';
import { FILL, PAGE_COUNTS, blockRunsArbitrary, checkWrites, guestFor } from '../decoder-harness.js';
import type { FuzzTarget } from '../fuzz-target.js';
import { BOUNDARY_WORDS, hostileBytes } from '../mutation.js';
import { acceptsOrRejects } from '../rejection.js';

const hello = encodeHello({ kind: ChannelKind.MAIN, channelId: 0, channelCount: 1, uuid: '00000000-0000-0000-0000-000000000001' });

function header(xbzrle: boolean): HeaderMessage {
  return {
    type: 'header',
    pageSize: PAGE,
    blocks: PAGE_COUNTS.map((pages, i) => ({ name: `b${i}`, size: pages * PAGE })),
    vcpus: 1,
    devices: [{ name: 'cpu', instance: 0, version: 1 }],
    runState: 'running',
    capabilities: xbzrle ? ['xbzrle'] : [],
  };
}

const controlArbitrary: fc.Arbitrary<StreamMessage> = fc.oneof(
  fc.record({ type: fc.constant('device' as const), name: fc.constant('cpu'), instance: fc.constant(0), version: fc.constant(1), state: fc.uint8Array({ maxLength: 40 }) }),
  fc.record({ type: fc.constant('round-end' as const), round: fc.nat() }),
  fc.record({ type: fc.constant('ping' as const), value: fc.nat({ max: 0xffffffff }) }),
  fc.constantFrom<StreamMessage>({ type: 'ram-complete' }, { type: 'open-return-path' }),
);

type XbzrlePage = { page: number; fill: number; from: number; to: number };

/** An XBZRLE page: the destination's copy differs from the source's in [from, to), filled with `fill`. */
const xbzrlePageArbitrary: fc.Arbitrary<XbzrlePage> = fc.record({ page: fc.nat(), fill: fc.nat({ max: 255 }), from: fc.nat({ max: PAGE - 8 }), to: fc.integer({ min: PAGE - 8, max: PAGE }) });

type Frame =
  | { kind: 'control'; message: StreamMessage }
  | { kind: 'pages'; block: number; runs: PageRun[] }
  | { kind: 'xbzrle'; block: number; pages: XbzrlePage[] };

const frameArbitrary = (xbzrle: boolean): fc.Arbitrary<Frame> =>
  fc.oneof(
    controlArbitrary.map((message) => ({ kind: 'control' as const, message })),
    blockRunsArbitrary.map(({ block, runs }) => ({ kind: 'pages' as const, block, runs })),
    ...(xbzrle
      ? [fc.record({ kind: fc.constant('xbzrle' as const), block: fc.nat({ max: PAGE_COUNTS.length - 1 }), pages: fc.array(xbzrlePageArbitrary, { minLength: 1, maxLength: 3 }) })]
      : []),
  );

interface ValidStream {
  bytes: Uint8Array;
  /** The control messages in order, header and EOF included. */
  messages: StreamMessage[];
  /** The RAM the source sent pages from, and the PAGES frames' runs. */
  ram: Uint8Array[];
  writes: { block: number; runs: PageRun[] }[];
}

function xbzrleFrame(ram: readonly Uint8Array[], block: number, pages: readonly XbzrlePage[]): Uint8Array {
  const frame = Buffer.alloc(XBZRLE_HEADER_SIZE + pages.length * (6 + PAGE));
  const delta = new Uint8Array(PAGE);
  let at = XBZRLE_HEADER_SIZE;
  for (const { page, fill, from, to } of pages) {
    const index = page % (PAGE_COUNTS[block] as number);
    const now = (ram[block] as Uint8Array).subarray(index * PAGE, (index + 1) * PAGE);
    const before = Uint8Array.from(now).fill(fill, from, to);
    const n = Math.max(0, encodeXbzrle(before, now, delta));
    at = writeXbzrlePageHeader(frame, at, index, n);
    frame.set(delta.subarray(0, n), at);
    at += n;
  }
  writeXbzrleHeader(frame, block, pages.length, at - XBZRLE_HEADER_SIZE);
  return frame.subarray(0, at);
}

function validStreamArbitrary(withXbzrle: fc.Arbitrary<boolean>): fc.Arbitrary<ValidStream> {
  return withXbzrle.chain((xbzrle) =>
    fc.record({ seed: fc.nat({ max: 255 }), frames: fc.array(frameArbitrary(xbzrle), { minLength: 1, maxLength: 6 }) }).map(({ seed, frames }) => {
      const ram = sourceRam(PAGE_COUNTS, seed);
      const messages: StreamMessage[] = [header(xbzrle)];
      const writes: ValidStream['writes'] = [];
      const parts: Uint8Array[] = [hello, encodeControl(header(xbzrle))];
      for (const frame of frames) {
        if (frame.kind === 'control') {
          messages.push(frame.message);
          parts.push(encodeControl(frame.message));
        } else if (frame.kind === 'pages') {
          writes.push(frame);
          parts.push(pagesFrame(ram, frame.block, frame.runs));
        } else {
          parts.push(xbzrleFrame(ram, frame.block, frame.pages));
        }
      }
      messages.push({ type: 'eof' });
      parts.push(encodeControl({ type: 'eof' }));
      return { bytes: Buffer.concat(parts), messages, ram, writes };
    }),
  );
}

const packr = new Packr({ useRecords: false });

/** A frame after a valid hello and header whose frame header is plausible and whose body is half-right or random. */
const junkFrameArbitrary: fc.Arbitrary<Uint8Array> = fc
  .record({
    type: fc.constantFrom(1, 2, 3, 4, 0xff),
    body: fc.oneof(
      fc.record({ type: fc.constantFrom('header', 'device', 'ping', 'round-end', 'eof', 'packaged', 'nope'), value: fc.anything({ maxDepth: 2 }) }).map((v) => new Uint8Array(packr.pack(v))),
      // A PAGES or XBZRLE sub-header and descriptors of boundary values.
      fc.array(fc.constantFrom(...BOUNDARY_WORDS, 0, 1, 2, 7, 63, 64), { maxLength: 10 }).map((words) => {
        const body = Buffer.alloc(4 * words.length);
        words.forEach((w, i) => body.writeUInt32BE(w >>> 0, 4 * i));
        return new Uint8Array(body);
      }),
      fc.uint8Array({ maxLength: 40 }),
    ),
    length: fc.option(fc.constantFrom(...BOUNDARY_WORDS), { freq: 4 }),
  })
  .map(({ type, body, length }) => {
    const frame = Buffer.alloc(8 + body.length);
    frame[0] = type;
    frame.writeUInt32BE(length ?? body.length, 4);
    frame.set(body, 8);
    return Buffer.concat([hello, encodeControl(header(true)), frame]);
  });

/** A destination adopts its own layout once it has accepted the header, and takes XBZRLE pages if it says so. */
function decoderFor(guest: FakeGuest, messages: StreamMessage[]): StreamDecoder {
  const decoder = new StreamDecoder({
    sink: guest,
    onMessage: (m) => {
      messages.push(m);
      if (m.type !== 'header') return;
      decoder.setLayout(guest.layout);
      if (m.capabilities.includes('xbzrle')) decoder.setXbzrle(guest);
    },
  });
  return decoder;
}

export const streamTarget: FuzzTarget = {
  name: 'stream',
  input: withCuts(hostileBytes(validStreamArbitrary(fc.boolean()).map((s) => s.bytes), junkFrameArbitrary)),
  check(input) {
    // The guest is the destination's own RAM: allocated before the input's bounds are measured.
    const guest = guestFor(input.bytes.length);
    withinBounds(input.bytes.length, () => acceptsOrRejects(() => feedPull(decoderFor(guest, []), input), [StreamError]));
    checkWrites(guest);
  },
  roundTrip: fc.property(validStreamArbitrary(fc.constant(false)), cutsArbitrary, fc.nat(), (stream, cuts, variant) => {
    const guest = guestFor(variant);
    const messages: StreamMessage[] = [];
    feedPull(decoderFor(guest, messages), { bytes: stream.bytes, cuts });
    expect(messages).to.deep.equal(stream.messages);
    const expected = expectedRam(PAGE_COUNTS, FILL, stream.ram, stream.writes);
    guest.ram.forEach((ram, block) => expect(Buffer.compare(ram, expected[block] as Uint8Array), `block ${block}`).to.equal(0));
  }),
};
