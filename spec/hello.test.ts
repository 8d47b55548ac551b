import { expect } from 'chai';
import { ChannelKind, HELLO_SIZE } from '../protocols/hello/constants.js';
import { decodeHello } from '../protocols/hello/decode.js';
import { encodeHello } from '../protocols/hello/encode.js';
import { HelloError } from '../protocols/hello/errors.js';
import type { ChannelHello } from '../protocols/hello/types.js';
import { StreamDecoder } from '../protocols/stream/decode.js';
import { StreamError } from '../protocols/stream/errors.js';
import { FakeGuest } from './stream-fake-guest.js';

const UUID = '12345678-9abc-def0-1234-56789abcdef0';

function decoderWithHellos(hellos: ChannelHello[]): StreamDecoder {
  return new StreamDecoder({ sink: new FakeGuest([1]), onMessage: () => {}, onHello: (h) => hellos.push(h) });
}

/** The error `fn` throws, checked to be a `kind`: a StreamError from the stream decoder, a HelloError from the hello's own functions. */
function errorOf<E extends Error>(kind: new (...args: never[]) => E, fn: () => void): E {
  try {
    fn();
  } catch (error) {
    expect(error).to.be.instanceOf(kind);
    return error as E;
  }
  throw new Error(`expected a ${kind.name}`);
}

describe('channel hello, and the stream decoder reading it', () => {
  it('is 32 bytes laid out as documented', () => {
    const bytes = encodeHello({ kind: ChannelKind.MULTIFD, channelId: 2, channelCount: 4, uuid: UUID });
    expect(bytes.length).to.equal(HELLO_SIZE);
    expect(bytes.toString('hex')).to.equal(
      '4c564d47' + '0001' + '01' + '02' + '04' + '000000' + '123456789abcdef0123456789abcdef0' + '00000000',
    );
  });

  it('round-trips kind, channel id and count, and the UUID', () => {
    const bytes = encodeHello({ kind: ChannelKind.POSTCOPY_PREEMPT, channelId: 0, channelCount: 1, uuid: UUID.toUpperCase() });
    expect(decodeHello(bytes)).to.deep.equal({ version: 1, kind: 2, channelId: 0, channelCount: 1, uuid: UUID });
  });

  it('sends an all-zero UUID when the guest has none, and reads it back as absent', () => {
    const bytes = encodeHello({ kind: ChannelKind.MAIN, channelId: 0, channelCount: 1 });
    expect(bytes.subarray(12, 28).every((b) => b === 0)).to.equal(true);
    expect(decodeHello(bytes)).to.deep.equal({ version: 1, kind: 0, channelId: 0, channelCount: 1 });
  });

  it('is handed to onHello by the stream decoder, even one byte at a time', () => {
    const hellos: ChannelHello[] = [];
    const decoder = decoderWithHellos(hellos);
    const bytes = encodeHello({ kind: ChannelKind.MAIN, channelId: 0, channelCount: 1, uuid: UUID });
    for (const byte of bytes) decoder.push(Uint8Array.of(byte));
    expect(hellos).to.deep.equal([{ version: 1, kind: 0, channelId: 0, channelCount: 1, uuid: UUID }]);
    expect(decoder.bytesDecoded).to.equal(32);
    decoder.end();
  });

  it('asks for exactly the 32 hello bytes first', () => {
    const decoder = decoderWithHellos([]);
    const view = decoder.want();
    expect(view.length).to.equal(32);
    view.set(encodeHello({ kind: ChannelKind.MAIN, channelId: 0, channelCount: 1 }).subarray(0, 10));
    decoder.commit(10);
    expect(decoder.want().length).to.equal(22);
  });

  it('rejects a wrong magic with BAD_MAGIC as soon as 4 bytes are in', () => {
    const decoder = decoderWithHellos([]);
    const error = errorOf(StreamError, () => decoder.push(Uint8Array.of(0x12, 0x34, 0x56, 0x78)));
    expect(error.code).to.equal('BAD_MAGIC');
    expect(error.message).to.equal('Not a livemig migration stream (magic 0x12345678, expected 0x4c564d47)');
  });

  it('rejects an unknown version with BAD_VERSION', () => {
    const bytes = encodeHello({ kind: ChannelKind.MAIN, channelId: 0, channelCount: 1 });
    bytes.writeUInt16BE(7, 4);
    const error = errorOf(StreamError, () => decoderWithHellos([]).push(bytes));
    expect(error.code).to.equal('BAD_VERSION');
    expect(error.message).to.equal('Unsupported migration stream version 7 (this build reads version 1)');
  });

  const badHellos: [string, (b: Buffer) => void, string][] = [
    ['an unknown channel kind', (b) => (b[6] = 3), 'Unknown channel kind 3 in channel hello'],
    ['a channel id not below the count', (b) => (b[7] = 1), 'Channel hello names channel 1 of 1'],
    ['a channel count of zero', (b) => (b[8] = 0), 'Channel hello names channel 0 of 0'],
    ['non-zero reserved bytes after the count', (b) => (b[11] = 1), 'Channel hello has non-zero reserved bytes'],
    ['non-zero reserved bytes at the end', (b) => (b[31] = 1), 'Channel hello has non-zero reserved bytes'],
  ];
  for (const [what, mutate, message] of badHellos) {
    it(`rejects ${what} with BAD_HELLO`, () => {
      const bytes = encodeHello({ kind: ChannelKind.MAIN, channelId: 0, channelCount: 1 });
      mutate(bytes);
      const error = errorOf(StreamError, () => decoderWithHellos([]).push(bytes));
      expect(error.code).to.equal('BAD_HELLO');
      expect(error.message).to.equal(message);
    });
  }

  it('decodeHello refuses fewer than 32 bytes with TRUNCATED', () => {
    const error = errorOf(HelloError, () => decodeHello(encodeHello({ kind: 0, channelId: 0, channelCount: 1 }).subarray(0, 31)));
    expect(error.code).to.equal('TRUNCATED');
  });

  it('encodeHello refuses out-of-range fields with BAD_HELLO', () => {
    expect(errorOf(HelloError, () => encodeHello({ kind: 5 as ChannelKind, channelId: 0, channelCount: 1 })).code).to.equal('BAD_HELLO');
    expect(errorOf(HelloError, () => encodeHello({ kind: 0, channelId: 1, channelCount: 1 })).code).to.equal('BAD_HELLO');
    expect(errorOf(HelloError, () => encodeHello({ kind: 0, channelId: 0, channelCount: 256 })).code).to.equal('BAD_HELLO');
    const error = errorOf(HelloError, () => encodeHello({ kind: 0, channelId: 0, channelCount: 1, uuid: 'not-a-uuid' }));
    expect(error.code).to.equal('BAD_HELLO');
    expect(error.message).to.equal("'not-a-uuid' is not a UUID (expected xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)");
  });

  it('is skipped when the caller read it already (expectHello: false)', () => {
    const decoder = new StreamDecoder({ sink: new FakeGuest([1]), onMessage: () => {}, expectHello: false });
    expect(decoder.want().length).to.equal(8);
  });
});
