import { expect } from 'chai';
import { Packr } from 'msgpackr';
import { ChannelKind } from '../protocols/hello/constants.js';
import { FRAME_HEADER_SIZE, MAX_CONTROL_BODY } from '../protocols/stream/constants.js';
import { StreamDecoder } from '../protocols/stream/decode.js';
import { encodeControl } from '../protocols/stream/encode.js';
import { encodeHello } from '../protocols/hello/encode.js';
import { StreamError } from '../protocols/stream/errors.js';
import type { StreamMessage } from '../protocols/stream/messages.js';
import { FakeGuest } from './stream-fake-guest.js';

const packr = new Packr({ useRecords: false, variableMapSize: true });
const hello = encodeHello({ kind: ChannelKind.MAIN, channelId: 0, channelCount: 1 });

const header: StreamMessage = {
  type: 'header',
  pageSize: 4096,
  blocks: [
    { name: 'pc.ram', size: 2 ** 48 },
    { name: 'vga.vram', size: 16 * 1024 * 1024 },
  ],
  vcpus: 2,
  devices: [
    { name: 'cpu', instance: 0, version: 1 },
    { name: 'globalstate', instance: 0, version: 1 },
  ],
  uuid: '12345678-9abc-def0-1234-56789abcdef0',
  runState: 'running',
  capabilities: ['multifd', 'postcopy-ram'],
};

const everyMessage: StreamMessage[] = [
  header,
  { ...header, uuid: undefined, blocks: [], devices: [], capabilities: [], runState: 'paused' },
  { type: 'device', name: 'cpu', instance: 1, version: 3, state: Buffer.from([1, 2, 3, 255]) },
  { type: 'round-end', round: 17 },
  { type: 'ram-complete' },
  { type: 'eof' },
  { type: 'open-return-path' },
  { type: 'ping', value: 0xffffffff },
  { type: 'postcopy-advise', hostPageSize: 4096, targetPageSize: 4096 },
  { type: 'postcopy-listen' },
  { type: 'postcopy-run' },
  { type: 'postcopy-resume' },
  { type: 'packaged', data: Buffer.alloc(70000, 7) },
  { type: 'recv-bitmap', block: 'pc.ram' },
  { type: 'enable-colo' },
];

/** A CONTROL frame around an arbitrary body, bypassing the encoder's checks. */
function rawControl(body: Uint8Array): Buffer {
  const frame = Buffer.alloc(FRAME_HEADER_SIZE + body.length);
  frame[0] = 1;
  frame.writeUInt32BE(body.length, 4);
  frame.set(body, FRAME_HEADER_SIZE);
  return frame;
}

function decodeAll(stream: Uint8Array): StreamMessage[] {
  const messages: StreamMessage[] = [];
  const decoder = new StreamDecoder({ sink: new FakeGuest([1]), onMessage: (m) => messages.push(m) });
  decoder.push(stream);
  decoder.end();
  return messages;
}

function decodeError(body: Uint8Array): StreamError {
  try {
    decodeAll(Buffer.concat([hello, rawControl(body)]));
  } catch (error) {
    expect(error).to.be.instanceOf(StreamError);
    return error as StreamError;
  }
  throw new Error('expected a StreamError');
}

function encodeError(message: unknown): StreamError {
  try {
    encodeControl(message as StreamMessage);
  } catch (error) {
    expect(error).to.be.instanceOf(StreamError);
    return error as StreamError;
  }
  throw new Error('expected a StreamError');
}

describe('stream control messages', () => {
  it('round-trips every message type, one frame each', () => {
    const stream = Buffer.concat([hello, ...everyMessage.map(encodeControl)]);
    expect(decodeAll(stream)).to.deep.equal(everyMessage);
  });

  it('keeps a decoded binary field intact after later frames arrive', () => {
    const messages: StreamMessage[] = [];
    const decoder = new StreamDecoder({ sink: new FakeGuest([1]), onMessage: (m) => messages.push(m) });
    decoder.push(hello);
    decoder.push(encodeControl({ type: 'device', name: 'a', instance: 0, version: 1, state: Buffer.alloc(100, 1) }));
    decoder.push(encodeControl({ type: 'device', name: 'b', instance: 0, version: 1, state: Buffer.alloc(100, 2) }));
    const first = messages[0] as { state: Uint8Array };
    expect(Array.from(first.state).every((b) => b === 1)).to.equal(true);
  });

  it('frames a message as type 1, no flags, body length, then msgpack', () => {
    const frame = encodeControl({ type: 'eof' });
    const body = packr.pack({ type: 'eof' });
    expect(frame.subarray(0, 8).toString('hex')).to.equal('01000000' + body.length.toString(16).padStart(8, '0'));
    expect(frame.subarray(8).equals(body)).to.equal(true);
  });

  const badBodies: [string, unknown, string][] = [
    ['a missing field', { type: 'ping' }, "Bad 'ping' message: field 'value' is missing"],
    ['a field of the wrong type', { type: 'ping', value: 'x' }, `Bad 'ping' message: field 'value' must be an integer from 0 to 4294967295, got the string "x"`],
    ['a negative integer', { type: 'round-end', round: -1 }, "Bad 'round-end' message: field 'round' must be an integer from 0 to 9007199254740991, got the number -1"],
    ['a fractional integer', { type: 'ping', value: 1.5 }, "Bad 'ping' message: field 'value' must be an integer from 0 to 4294967295, got the number 1.5"],
    ['an extra field', { type: 'eof', extra: 1 }, "Bad 'eof' message: field 'extra' is not part of the message"],
    [
      'a nested field out of range',
      { ...header, blocks: [{ name: 'a', size: 1 }, { name: 'b', size: 2 ** 48 + 1 }] },
      "Bad 'header' message: field 'blocks[1].size' must be an integer from 0 to 281474976710656, got the number 281474976710657",
    ],
    ['an unknown run state', { ...header, runState: 'flying' }, `Bad 'header' message: field 'runState' must be one of`],
    ['a malformed UUID', { ...header, uuid: 'abc' }, `Bad 'header' message: field 'uuid' is malformed: "abc"`],
    ['an empty name', { type: 'recv-bitmap', block: '' }, "Bad 'recv-bitmap' message: field 'block' must be 1 to 255 characters long, got 0"],
    ['a string where bytes belong', { type: 'packaged', data: 'x' }, `Bad 'packaged' message: field 'data' must be binary data, got the string "x"`],
    ['a map where a list belongs', { ...header, capabilities: {} }, "Bad 'header' message: field 'capabilities' must be a list, got a map"],
    ['no type', { value: 1 }, "Control message has no string 'type' field"],
    ['a list instead of a map', [1, 2], "Control message has no string 'type' field"],
  ];
  for (const [what, body, message] of badBodies) {
    it(`rejects ${what} with BAD_MESSAGE naming the field`, () => {
      const error = decodeError(packr.pack(body));
      expect(error.code).to.equal('BAD_MESSAGE');
      expect(error.message.startsWith(message), error.message).to.equal(true);
    });
  }

  it('rejects an unknown type with UNKNOWN_MESSAGE', () => {
    const error = decodeError(packr.pack({ type: 'teleport' }));
    expect(error.code).to.equal('UNKNOWN_MESSAGE');
    expect(error.message).to.equal('Unknown control message type "teleport"');
  });

  it('does not take inherited names for message types', () => {
    expect(decodeError(packr.pack({ type: 'toString' })).code).to.equal('UNKNOWN_MESSAGE');
    const error = decodeError(packr.pack(JSON.parse('{"type":"eof","__proto__":1}')));
    expect(error.code).to.equal('BAD_MESSAGE');
    expect(error.message).to.equal("Bad 'eof' message: field '__proto_' is not part of the message");
  });

  it('rejects a body that is not msgpack, or has bytes after the message, with BAD_MESSAGE', () => {
    const garbage = decodeError(Uint8Array.of(0x82, 0xa1));
    expect(garbage.code).to.equal('BAD_MESSAGE');
    expect(garbage.message.startsWith('Control message is not valid msgpack: ')).to.equal(true);
    const trailing = decodeError(Buffer.concat([packr.pack({ type: 'eof' }), Uint8Array.of(0)]));
    expect(trailing.code).to.equal('BAD_MESSAGE');
    expect(decodeError(Uint8Array.of(0x92, 0x01)).code).to.equal('BAD_MESSAGE');
  });

  it('rejects an empty CONTROL body with BAD_MESSAGE', () => {
    const error = decodeError(new Uint8Array(0));
    expect(error.code).to.equal('BAD_MESSAGE');
    expect(error.message).to.equal('Empty control message');
  });

  it('refuses an oversized CONTROL frame from its header alone, before buffering the body', () => {
    const decoder = new StreamDecoder({ sink: new FakeGuest([1]), onMessage: () => {} });
    decoder.push(hello);
    const frameHeader = Buffer.alloc(8);
    frameHeader[0] = 1;
    frameHeader.writeUInt32BE(MAX_CONTROL_BODY + 1, 4);
    let error: unknown;
    try {
      decoder.push(frameHeader);
    } catch (e) {
      error = e;
    }
    expect(error).to.be.instanceOf(StreamError);
    expect((error as StreamError).code).to.equal('FRAME_TOO_LARGE');
    expect((error as StreamError).message).to.equal('CONTROL frame of 16777217 bytes is over the limit of 16777216 bytes');
  });

  it('accepts a CONTROL body of exactly 16 MiB', () => {
    const overhead = packr.pack({ type: 'packaged', data: Buffer.alloc(0) }).length;
    // bin32 needs 3 more length bytes than bin8
    const message: StreamMessage = { type: 'packaged', data: Buffer.alloc(MAX_CONTROL_BODY - overhead - 3) };
    const frame = encodeControl(message);
    expect(frame.length).to.equal(FRAME_HEADER_SIZE + MAX_CONTROL_BODY);
    const [decoded] = decodeAll(Buffer.concat([hello, frame]));
    expect((decoded as { data: Uint8Array }).data.length).to.equal(MAX_CONTROL_BODY - overhead - 3);
  });

  it('encodeControl refuses what the decoder would refuse', () => {
    expect(encodeError({ type: 'ping', value: -1 }).code).to.equal('BAD_MESSAGE');
    expect(encodeError({ type: 'warp' }).code).to.equal('UNKNOWN_MESSAGE');
    const huge = { type: 'packaged', data: Buffer.alloc(MAX_CONTROL_BODY) };
    const big = encodeError(huge);
    expect(big.code).to.equal('FRAME_TOO_LARGE');
    const size = packr.pack(huge).length;
    expect(big.message).to.equal(`Control message 'packaged' is ${size} bytes, more than the 16777216 a frame may carry`);
  });
});
