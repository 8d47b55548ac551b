import { expect } from 'chai';
import { Packr } from 'msgpackr';
import { RECV_BITMAP_END_MARK, ReturnPathType } from '../protocols/return-path/constants.js';
import { ReturnPathDecoder } from '../protocols/return-path/decode.js';
import { encodeReturnPath } from '../protocols/return-path/encode.js';
import { ReturnPathError, type ReturnPathErrorCode } from '../protocols/return-path/errors.js';
import type { ReturnPathMessage } from '../protocols/return-path/messages.js';
import { SeededRandom } from './fuzz/seeded-random.js';

const packr = new Packr({ useRecords: false, variableMapSize: true });
const BITMAPS: Record<string, number> = { 'pc.ram': 64, 'vga.vram': 2 };

const everyMessage: ReturnPathMessage[] = [
  { type: 'shut', status: 0 },
  { type: 'shut', status: 1 },
  { type: 'pong', value: 0xffffffff },
  { type: 'req-pages-id', block: 'pc.ram', start: 2 ** 40, len: 4096 },
  { type: 'req-pages', start: 0x3000, len: 8192 },
  { type: 'recv-bitmap', block: 'pc.ram', bitmap: Buffer.from(Array.from({ length: 64 }, (_, i) => i)) },
  { type: 'recv-bitmap', block: 'vga.vram', bitmap: Buffer.alloc(0) },
  { type: 'resume-ack', value: 1 },
  { type: 'switchover-ack' },
  { type: 'shut', status: 1, error: 'load of migration failed: UUID mismatch' },
  { type: 'multifd-channels', first: 0, count: 2, ports: [40001, 40002] },
  { type: 'preempt-channel', port: 40003 },
];

function decoder(messages: ReturnPathMessage[]): ReturnPathDecoder {
  return new ReturnPathDecoder({ onMessage: (m) => messages.push(m), maxBitmapBytes: (block) => BITMAPS[block] });
}

function frame(type: number, body: Uint8Array, lengthField = body.length): Buffer {
  const header = Buffer.alloc(4);
  header.writeUInt16BE(type, 0);
  header.writeUInt16BE(lengthField, 2);
  return Buffer.concat([header, body]);
}

function bitmapBlob(bytes: Uint8Array, mark = RECV_BITMAP_END_MARK, length = BigInt(bytes.length)): Buffer {
  const head = Buffer.alloc(8);
  head.writeBigUInt64BE(length);
  const tail = Buffer.alloc(8);
  tail.writeBigUInt64BE(mark);
  return Buffer.concat([head, bytes, tail]);
}

function errorFrom(input: Uint8Array, end = false): ReturnPathError {
  const d = decoder([]);
  try {
    d.push(input);
    if (end) d.end();
  } catch (error) {
    expect(error).to.be.instanceOf(ReturnPathError);
    return error as ReturnPathError;
  }
  throw new Error('expected a ReturnPathError');
}

function expectError(input: Uint8Array, code: ReturnPathErrorCode, message: string, end = false): void {
  const error = errorFrom(input, end);
  expect(error.code).to.equal(code);
  expect(error.message).to.equal(message);
}

describe('return-path messages', () => {
  const stream = Buffer.concat(everyMessage.map(encodeReturnPath));

  it('round-trips every message type', () => {
    const messages: ReturnPathMessage[] = [];
    const d = decoder(messages);
    d.push(stream);
    d.end();
    expect(messages).to.deep.equal(everyMessage);
    expect(d.bytesDecoded).to.equal(stream.length);
  });

  it('decodes the same messages one byte at a time and under random splits', () => {
    const oneByOne: ReturnPathMessage[] = [];
    const d = decoder(oneByOne);
    for (let i = 0; i < stream.length; i++) d.push(stream.subarray(i, i + 1));
    d.end();
    expect(oneByOne).to.deep.equal(everyMessage);
    const random = new SeededRandom(11);
    for (const max of [2, 5, 40, 300]) {
      const split: ReturnPathMessage[] = [];
      const r = decoder(split);
      for (const chunk of random.chunks(stream, max)) r.push(chunk);
      r.end();
      expect(split).to.deep.equal(everyMessage);
    }
  });

  it("numbers types as QEMU does and frames them as u16 type, u16 length, msgpack body", () => {
    expect(ReturnPathType).to.deep.equal({ SHUT: 1, PONG: 2, REQ_PAGES_ID: 3, REQ_PAGES: 4, RECV_BITMAP: 5, RESUME_ACK: 6, SWITCHOVER_ACK: 7, MULTIFD_CHANNELS: 0x100, PREEMPT_CHANNEL: 0x101, COLO_MESSAGE: 0x102, COLO_PACKETS: 0x103 });
    const body = packr.pack({ value: 7 });
    expect(encodeReturnPath({ type: 'pong', value: 7 }).equals(frame(2, body))).to.equal(true);
    expect(encodeReturnPath({ type: 'switchover-ack' }).toString('hex')).to.equal('0007000180');
  });

  it('follows RECV_BITMAP with a u64 length, the bitmap and the end marker', () => {
    const bytes = encodeReturnPath({ type: 'recv-bitmap', block: 'vga.vram', bitmap: Uint8Array.of(0xf0, 0x0f) });
    const body = packr.pack({ block: 'vga.vram' });
    expect(bytes.equals(Buffer.concat([frame(5, body), bitmapBlob(Uint8Array.of(0xf0, 0x0f))]))).to.equal(true);
    expect(bytes.subarray(-8).toString('hex')).to.equal('0123456789abcdef');
  });

  it('owns a decoded bitmap: reusing the chunk it came in does not change it', () => {
    const messages: ReturnPathMessage[] = [];
    const chunk = encodeReturnPath({ type: 'recv-bitmap', block: 'vga.vram', bitmap: Uint8Array.of(1, 2) });
    decoder(messages).push(chunk);
    chunk.fill(0);
    expect(Array.from((messages[0] as { bitmap: Uint8Array }).bitmap)).to.deep.equal([1, 2]);
  });

  it('keeps no reference to a pushed chunk, so a transport may reuse its buffer', () => {
    const bytes = Buffer.concat(everyMessage.map(encodeReturnPath));
    const reused = new Uint8Array(7);
    const messages: ReturnPathMessage[] = [];
    const d = decoder(messages);
    for (let at = 0; at < bytes.length; at += reused.length) {
      const part = bytes.subarray(at, at + reused.length);
      reused.set(part);
      d.push(reused.subarray(0, part.length));
      reused.fill(0xee);
    }
    d.end();
    expect(messages).to.deep.equal(everyMessage);
  });

  describe('errors', () => {
    it("rejects an unknown type with QEMU's invalid-message text", () => {
      expectError(frame(9, Uint8Array.of(0x80)), 'INVALID_MESSAGE', 'Received invalid message 0x0009 length 0x0001');
      expectError(frame(0, Uint8Array.of()), 'INVALID_MESSAGE', 'Received invalid message 0x0000 length 0x0000');
    });

    it('rejects a length over 512 from the header alone', () => {
      expectError(frame(2, Uint8Array.of(), 513), 'INVALID_MESSAGE', 'Received invalid message 0x0002 length 0x0201');
    });

    it('accepts a body of exactly 512 bytes', () => {
      // A block name of 2-byte characters and ASCII that packs to exactly 512 bytes.
      let block = '';
      for (let wide = 0; wide <= 255 && !block; wide++) {
        for (let narrow = 0; wide + narrow <= 255; narrow++) {
          const name = 'é'.repeat(wide) + 'a'.repeat(narrow);
          if (packr.pack({ block: name, start: 0, len: 0 }).length === 512) {
            block = name;
            break;
          }
        }
      }
      const message: ReturnPathMessage = { type: 'req-pages-id', block, start: 0, len: 0 };
      const bytes = encodeReturnPath(message);
      expect(bytes.readUInt16BE(2)).to.equal(512);
      const messages: ReturnPathMessage[] = [];
      decoder(messages).push(bytes);
      expect(messages).to.deep.equal([message]);
    });

    const badBodies: [string, number, unknown, string][] = [
      ['a missing field', 2, {}, "Received 'PONG' message (0x0002) with a bad body: field 'value' is missing"],
      ['a field of the wrong type', 4, { start: '0', len: 1 }, `Received 'REQ_PAGES' message (0x0004) with a bad body: field 'start' must be an integer from 0 to 281474976710656, got the string "0"`],
      ['an extra field', 7, { now: true }, "Received 'SWITCHOVER_ACK' message (0x0007) with a bad body: field 'now' is not part of the message"],
      ['a type field in the body', 1, { type: 'shut', status: 0 }, "Received 'SHUT' message (0x0001) with a bad body: field 'type' is not part of the message"],
      ['an empty block name', 3, { block: '', start: 0, len: 1 }, "Received 'REQ_PAGES_ID' message (0x0003) with a bad body: field 'block' must be 1 to 255 characters long, got 0"],
      ['a length over 32 bits', 4, { start: 0, len: 2 ** 32 }, "Received 'REQ_PAGES' message (0x0004) with a bad body: field 'len' must be an integer from 0 to 4294967295, got the number 4294967296"],
      ['a body that is not a map', 6, [1], "Received 'RESUME_ACK' message (0x0006) with a bad body: message must be a map, got a list of 1 items"],
    ];
    for (const [what, type, body, message] of badBodies) {
      it(`rejects ${what} with BAD_MESSAGE naming the field`, () => {
        expectError(frame(type, packr.pack(body)), 'BAD_MESSAGE', message);
      });
    }

    it('rejects a body that is not msgpack', () => {
      const error = errorFrom(frame(2, Uint8Array.of(0x81, 0xa1)));
      expect(error.code).to.equal('BAD_MESSAGE');
      expect(error.message.startsWith("Received 'PONG' message (0x0002) with a bad body: the body is not valid msgpack: ")).to.equal(true);
    });

    it('rejects an empty body', () => {
      expectError(frame(7, Uint8Array.of()), 'BAD_MESSAGE', "Received 'SWITCHOVER_ACK' message (0x0007) with a bad body: the body is empty");
    });

    it('rejects a RECV_BITMAP for a block the source does not know', () => {
      expectError(frame(5, packr.pack({ block: 'rom' })), 'BAD_BITMAP', "MIG_RP_MSG_RECV_BITMAP has invalid block name 'rom'");
    });

    it('rejects a bitmap over the caller-given maximum from its length alone', () => {
      const input = Buffer.concat([frame(5, packr.pack({ block: 'vga.vram' })), bitmapBlob(Uint8Array.of(), RECV_BITMAP_END_MARK, 3n).subarray(0, 8)]);
      expectError(input, 'BAD_BITMAP', "RECV_BITMAP of block 'vga.vram' is 3 bytes, more than the 2 allowed");
      const huge = Buffer.concat([frame(5, packr.pack({ block: 'pc.ram' })), bitmapBlob(Uint8Array.of(), RECV_BITMAP_END_MARK, 2n ** 64n - 1n).subarray(0, 8)]);
      expectError(huge, 'BAD_BITMAP', "RECV_BITMAP of block 'pc.ram' is 18446744073709552000 bytes, more than the 64 allowed");
    });

    it('refuses every non-empty bitmap when the caller gave no maximum', () => {
      const d = new ReturnPathDecoder({ onMessage: () => {} });
      const input = encodeReturnPath({ type: 'recv-bitmap', block: 'pc.ram', bitmap: Uint8Array.of(1) });
      expect(() => d.push(input)).to.throw(ReturnPathError, "RECV_BITMAP of block 'pc.ram' is 1 bytes, more than the 0 allowed");
    });

    it('rejects a bitmap with a wrong end marker', () => {
      const input = Buffer.concat([frame(5, packr.pack({ block: 'vga.vram' })), bitmapBlob(Uint8Array.of(1, 2), 0x0123456789abcdeen)]);
      expectError(input, 'BAD_BITMAP', "RECV_BITMAP of block 'vga.vram' has end marker 0x0123456789abcdee, expected 0x0123456789abcdef");
    });

    it('is TRUNCATED when the return path ends inside a message', () => {
      const pong = encodeReturnPath({ type: 'pong', value: 3 });
      expectError(pong.subarray(0, 2), 'TRUNCATED', 'Return path ended inside a message header (2 of 4 bytes)', true);
      expectError(pong.subarray(0, pong.length - 1), 'TRUNCATED', `Failed reading data for message 0x0002 read ${pong.length - 5} expected ${pong.length - 4}`, true);
      const bitmap = encodeReturnPath({ type: 'recv-bitmap', block: 'pc.ram', bitmap: new Uint8Array(10) });
      expectError(bitmap.subarray(0, bitmap.length - 12), 'TRUNCATED', "Failed reading the received bitmap of block 'pc.ram' read 6 expected 10", true);
    });

    it('ends cleanly between messages, then refuses input', () => {
      const d = decoder([]);
      d.push(encodeReturnPath({ type: 'shut', status: 0 }));
      d.end();
      expect(() => d.push(Uint8Array.of(0))).to.throw(ReturnPathError, 'Return path already ended');
    });

    it('stays bad after an error, repeating it', () => {
      const d = decoder([]);
      let first: unknown;
      try {
        d.push(frame(8, Uint8Array.of()));
      } catch (error) {
        first = error;
      }
      expect(first).to.be.instanceOf(ReturnPathError);
      let again: unknown;
      try {
        d.push(encodeReturnPath({ type: 'switchover-ack' }));
      } catch (error) {
        again = error;
      }
      expect(again).to.equal(first);
    });

    it('encoder refuses what the decoder would refuse', () => {
      expect(() => encodeReturnPath({ type: 'pong', value: -1 })).to.throw(ReturnPathError, "Cannot send 'PONG': field 'value' must be an integer from 0 to 4294967295, got the number -1");
      expect(() => encodeReturnPath({ type: 'nope' } as unknown as ReturnPathMessage)).to.throw(ReturnPathError, 'Cannot send unknown return-path message type "nope"');
      const wide = { block: 'é'.repeat(255), start: 0, len: 0 };
      expect(() => encodeReturnPath({ type: 'req-pages-id', ...wide })).to.throw(
        ReturnPathError,
        `Cannot send 'REQ_PAGES_ID': its body is ${packr.pack(wide).length} bytes, more than 512`,
      );
      expect(() => encodeReturnPath({ type: 'recv-bitmap', block: 'a', bitmap: 'x' } as unknown as ReturnPathMessage)).to.throw(
        ReturnPathError,
        "Cannot send 'RECV_BITMAP': field 'bitmap' must be binary data",
      );
    });
  });
});
