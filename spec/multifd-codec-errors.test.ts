import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { deflateSync } from 'node:zlib';
import { compress as zstdCompress } from 'zstd-napi';
import { compressPages, decompressInto } from '../protocols/multifd/compression.js';
import { MultifdDecoder } from '../protocols/multifd/decode.js';
import { encodePacketHeader, encodeSyncPacket } from '../protocols/multifd/encode.js';
import { MultifdError, type MultifdErrorCode } from '../protocols/multifd/errors.js';
import type { CompressionMethod } from '../protocols/multifd/constants.js';
import { ChannelKind } from '../protocols/hello/constants.js';
import { encodeHello } from '../protocols/hello/encode.js';
import { FakeGuest, PAGE } from './stream-fake-guest.js';

const MIB = 1024 * 1024;

interface RawHeader {
  magic?: number;
  version?: number;
  flags?: number;
  packetNumber?: number;
  round?: number;
  block?: number;
  /** [first, raw count word] pairs; the run count field follows unless `runCount` is given. */
  runs?: [number, number][];
  runCount?: number;
  dataLength?: number;
}

/** A packet header and descriptors written by hand, without the encoder's checks. */
function rawHeader(h: RawHeader = {}): Buffer {
  const runs = h.runs ?? [];
  const out = Buffer.alloc(24 + 8 * runs.length);
  out.writeUInt32BE(h.magic ?? 0x11223344, 0);
  out.writeUInt16BE(h.version ?? 1, 4);
  out.writeUInt16BE(h.flags ?? 0, 6);
  out.writeUInt32BE(h.packetNumber ?? 0, 8);
  out.writeUInt32BE(h.round ?? 1, 12);
  out.writeUInt16BE(h.block ?? 0, 16);
  out.writeUInt16BE(h.runCount ?? runs.length, 18);
  const data = runs.reduce((pages, [, raw]) => pages + (raw & 0x80000000 ? 0 : raw), 0) * PAGE;
  out.writeUInt32BE(h.dataLength ?? data, 20);
  runs.forEach(([first, count], i) => {
    out.writeUInt32BE(first >>> 0, 24 + 8 * i);
    out.writeUInt32BE(count >>> 0, 28 + 8 * i);
  });
  return out;
}

/** A decoder over a guest of blocks of 16 and 4 pages whose RAM starts at 0x5a. */
function channel(compression: CompressionMethod = 'none', pageCounts = [16, 4], pageSize = PAGE): { decoder: MultifdDecoder; guest: FakeGuest } {
  const guest = new FakeGuest(pageCounts, { fill: 0x5a, pageSize });
  const decoder = new MultifdDecoder({ sink: guest, layout: guest.layout, compression, pageSize, onSync: () => {} });
  return { decoder, guest };
}

function untouched(guest: FakeGuest): boolean {
  return guest.guardsIntact() && guest.ram.every((ram) => ram.every((b) => b === 0x5a));
}

function thrown(fn: () => void): MultifdError {
  try {
    fn();
  } catch (error) {
    expect(error).to.be.instanceOf(MultifdError);
    return error as MultifdError;
  }
  throw new Error('expected a MultifdError');
}

function expectError(fn: () => void, code: MultifdErrorCode, message: string): MultifdError {
  const error = thrown(fn);
  expect(error.code).to.equal(code);
  expect(error.message).to.equal(message);
  return error;
}

describe('multifd decoder errors', () => {

  describe('packet header', () => {
    it('rejects a wrong magic with BAD_MAGIC, in QEMU words (hex, no 0x)', () => {
      expectError(() => channel().decoder.push(rawHeader({ magic: 0x11223345 })), 'BAD_MAGIC', 'multifd: received packet magic 11223345 and expected magic 11223344');
      expectError(() => channel().decoder.push(rawHeader({ magic: 0xabc })), 'BAD_MAGIC', 'multifd: received packet magic abc and expected magic 11223344');
    });

    it('rejects another version with BAD_VERSION', () => {
      expectError(() => channel().decoder.push(rawHeader({ version: 2 })), 'BAD_VERSION', 'multifd: received packet version 2 and expected version 1');
    });

    it('rejects unknown flag bits with BAD_FLAGS', () => {
      expectError(() => channel().decoder.push(rawHeader({ flags: 0x11 })), 'BAD_FLAGS', 'multifd: received packet with unknown flags 0x10');
      expectError(() => channel().decoder.push(rawHeader({ flags: 0x8000 })), 'BAD_FLAGS', 'multifd: received packet with unknown flags 0x8000');
    });

    it('rejects a packet compressed otherwise than this side with COMPRESSION_MISMATCH, in QEMU words', () => {
      expectError(() => channel('none').decoder.push(encodeSyncPacket(0, 1, 'zlib')), 'COMPRESSION_MISMATCH', 'multifd: flags received 2 flags expected 0');
      expectError(() => channel('zlib').decoder.push(encodeSyncPacket(0, 1, 'zstd')), 'COMPRESSION_MISMATCH', 'multifd: flags received 4 flags expected 2');
      expectError(() => channel('zstd').decoder.push(encodeSyncPacket(0, 1, 'zlib')), 'COMPRESSION_MISMATCH', 'multifd: flags received 2 flags expected 4');
      // A compression value no build knows (3-7) is a mismatch too.
      expectError(() => channel('zstd').decoder.push(rawHeader({ flags: 0xe })), 'COMPRESSION_MISMATCH', 'multifd: flags received e flags expected 4');
    });

    it('names the channel given in the options', () => {
      const guest = new FakeGuest([4]);
      const decoder = new MultifdDecoder({ sink: guest, layout: guest.layout, compression: 'none', channelId: 7, onSync: () => {} });
      expectError(() => decoder.push(encodeSyncPacket(0, 1, 'zlib')), 'COMPRESSION_MISMATCH', 'multifd 7: flags received 2 flags expected 0');
    });

    it('rejects a first packet not numbered 0 with OUT_OF_SEQUENCE', () => {
      expectError(() => channel().decoder.push(encodeSyncPacket(1, 1, 'none')), 'OUT_OF_SEQUENCE', 'multifd: received packet number 1 and expected 0');
    });

    it('rejects a gap or a repeat in packet numbers with OUT_OF_SEQUENCE', () => {
      const gap = channel().decoder;
      gap.push(encodeSyncPacket(0, 1, 'none'));
      expectError(() => gap.push(encodeSyncPacket(2, 2, 'none')), 'OUT_OF_SEQUENCE', 'multifd: received packet number 2 and expected 1');
      const repeat = channel().decoder;
      repeat.push(encodeSyncPacket(0, 1, 'none'));
      repeat.push(encodeSyncPacket(1, 2, 'none'));
      expectError(() => repeat.push(encodeSyncPacket(1, 3, 'none')), 'OUT_OF_SEQUENCE', 'multifd: received packet number 1 and expected 2');
    });

    it('rejects a packet of another round than the channel is in with BAD_ROUND', () => {
      const zero = (packetNumber: number, round: number): Buffer =>
        encodePacketHeader({ sync: false, compression: 'none', packetNumber, round, block: 0, runs: [{ first: 0, count: 1, zero: true }], dataLength: 0 });
      // A new round without a SYNC ending the old one.
      const skipped = channel().decoder;
      skipped.push(zero(0, 4));
      expectError(() => skipped.push(zero(1, 5)), 'BAD_ROUND', 'multifd: packet 1 belongs to round 5, but the channel is in round 4');
      // Pages of the round a SYNC has just ended: they could overwrite newer pages of another channel.
      const late = channel().decoder;
      late.push(zero(0, 4));
      late.push(encodeSyncPacket(1, 4, 'none'));
      expectError(() => late.push(zero(2, 4)), 'BAD_ROUND', 'multifd: packet 2 belongs to round 4, but the channel is in round 5');
      // A SYNC for a round other than the current one.
      const wrongSync = channel().decoder;
      wrongSync.push(zero(0, 4));
      expectError(() => wrongSync.push(encodeSyncPacket(1, 3, 'none')), 'BAD_ROUND', 'multifd: packet 1 belongs to round 3, but the channel is in round 4');
    });

    it('refuses more than 1024 runs from the header alone with TOO_LARGE', () => {
      const { decoder, guest } = channel();
      expectError(() => decoder.push(rawHeader({ runCount: 1025 })), 'TOO_LARGE', 'multifd: received packet with 1025 runs and expected maximum runs are 1024');
      expect(guest.events).to.deep.equal([]);
      // Nothing more was asked for: the descriptors were never buffered.
      expect(decoder.bytesDecoded).to.equal(24);
    });

    it('refuses a data length over the limit from the header alone with TOO_LARGE', () => {
      expectError(
        () => channel('none').decoder.push(rawHeader({ runs: [[0, 1]], dataLength: 8 * MIB + 1 })),
        'TOO_LARGE',
        'multifd: received packet with 8388609 data bytes and expected maximum is 8388608',
      );
      expectError(
        () => channel('zlib').decoder.push(rawHeader({ flags: 0x2, runs: [[0, 1]], dataLength: 8 * MIB + 64 * 1024 + 1 })),
        'TOO_LARGE',
        'multifd: received packet with 8454145 data bytes and expected maximum is 8454144',
      );
    });

    it('refuses a packet without runs that is not a SYNC with BAD_RUN', () => {
      expectError(() => channel().decoder.push(rawHeader()), 'BAD_RUN', 'multifd: packet 0 has no pages and is not a SYNC packet');
    });

    it('refuses a SYNC without runs that names a block or carries data', () => {
      expectError(() => channel().decoder.push(rawHeader({ flags: 1, block: 1 })), 'BAD_BLOCK', 'multifd: packet 0 has no pages but names block 1');
      expectError(() => channel().decoder.push(rawHeader({ flags: 1, dataLength: 5 })), 'BAD_LENGTH', 'multifd: packet 0 has no pages but 5 data bytes');
    });
  });

  describe('runs', () => {
    it('refuses pages before the guest layout is known with BAD_BLOCK', () => {
      const guest = new FakeGuest([4]);
      const decoder = new MultifdDecoder({ sink: guest, compression: 'none', onSync: () => {} });
      expectError(() => decoder.push(rawHeader({ runs: [[0, 0x80000001]] })), 'BAD_BLOCK', "multifd: received pages before the guest's RAM blocks are known");
    });

    it('refuses a block the guest does not have with BAD_BLOCK', () => {
      expectError(() => channel().decoder.push(rawHeader({ block: 2, runs: [[0, 1]] })), 'BAD_BLOCK', 'multifd: unknown ram block 2 (the guest has 2)');
    });

    const badRuns: [string, RawHeader, string][] = [
      ['a run past the end of its block', { block: 1, runs: [[2, 3]] }, 'multifd: pages 2-4 of ram block 1 are outside the block (it has 4 pages)'],
      ['a run starting past the block', { runs: [[0xffffffff, 1]] }, 'multifd: pages 4294967295-4294967295 of ram block 0 are outside the block (it has 16 pages)'],
      ['a zero run past the block', { runs: [[15, 0x80000002]] }, 'multifd: pages 15-16 of ram block 0 are outside the block (it has 16 pages)'],
      ['a run of no pages', { runs: [[0, 0]] }, 'multifd: run 0 of packet 0 has no pages'],
      ['a zero run of no pages', { runs: [[1, 1], [0, 0x80000000]] }, 'multifd: run 1 of packet 0 has no pages'],
    ];
    for (const [what, header, message] of badRuns) {
      it(`rejects ${what} with BAD_RUN before writing any page`, () => {
        const { decoder, guest } = channel();
        expectError(() => decoder.push(rawHeader(header)), 'BAD_RUN', message);
        expect(guest.events).to.deep.equal([]);
        expect(untouched(guest)).to.equal(true);
      });
    }

    it('checks a bad run late in a packet before asking for a view for an earlier one', () => {
      const { decoder, guest } = channel();
      expectError(
        () => decoder.push(rawHeader({ block: 1, runs: [[0, 1], [1, 0x80000001], [3, 2]] })),
        'BAD_RUN',
        'multifd: pages 3-4 of ram block 1 are outside the block (it has 4 pages)',
      );
      expect(guest.events).to.deep.equal([]);
    });

    it('refuses more than 2048 pages with TOO_LARGE, checking all runs before the first lands', () => {
      const { decoder, guest } = channel('none', [4096]);
      expectError(
        () => decoder.push(rawHeader({ runs: [[0, 1], [1, 0x80000000 | 2047], [2048, 0x80000001]] })),
        'TOO_LARGE',
        'multifd: received packet with 2049 pages and expected maximum pages are 2048',
      );
      expect(guest.events).to.deep.equal([]);
    });

    it('refuses more than 8 MiB of raw pages with TOO_LARGE, compressed or not', () => {
      const pageSize = 16 * 1024;
      const { decoder } = channel('zlib', [600], pageSize);
      expectError(
        () => decoder.push(rawHeader({ flags: 0x2, runs: [[0, 513]], dataLength: 1000 })),
        'TOO_LARGE',
        'multifd: received packet with 8404992 bytes of pages and expected maximum is 8388608',
      );
    });

    it('refuses compressed data longer than the raw pages plus 64 KiB with TOO_LARGE', () => {
      expectError(
        () => channel('zstd').decoder.push(rawHeader({ flags: 0x4, runs: [[0, 1]], dataLength: PAGE + 65537 })),
        'TOO_LARGE',
        'multifd: packet 0 has 69633 bytes of zstd data for 4096 bytes of pages (at most 69632)',
      );
    });
  });

  describe('data length', () => {
    it('refuses raw data shorter or longer than the runs need with BAD_LENGTH', () => {
      expectError(() => channel().decoder.push(rawHeader({ runs: [[0, 2]], dataLength: PAGE })), 'BAD_LENGTH', 'multifd: packet 0 has 4096 data bytes, but its runs need 8192 (2 pages)');
      expectError(() => channel().decoder.push(rawHeader({ runs: [[0, 0x80000002]], dataLength: 1 })), 'BAD_LENGTH', 'multifd: packet 0 has 1 data bytes, but its runs need 0 (0 pages)');
    });

    it('holds a raw packet on a compressing channel to the exact length of its pages, with BAD_LENGTH', () => {
      for (const method of ['zlib', 'zstd'] as const) {
        expectError(() => channel(method).decoder.push(rawHeader({ flags: 0, runs: [[0, 2]], dataLength: PAGE })), 'BAD_LENGTH', 'multifd: packet 0 has 4096 data bytes, but its runs need 8192 (2 pages)');
        expectError(() => channel(method).decoder.push(rawHeader({ flags: 0, runs: [[0, 1]], dataLength: PAGE + 100 })), 'BAD_LENGTH', 'multifd: packet 0 has 4196 data bytes, but its runs need 4096 (1 pages)');
      }
    });

    it('refuses data for a compressed packet of zero runs only, and no data for one with pages', () => {
      expectError(() => channel('zlib').decoder.push(rawHeader({ flags: 0x2, runs: [[0, 0x80000002]], dataLength: 8 })), 'BAD_LENGTH', 'multifd: packet 0 has 8 data bytes, but its runs need 0 (0 pages)');
      expectError(() => channel('zlib').decoder.push(rawHeader({ flags: 0x2, runs: [[0, 2]], dataLength: 0 })), 'BAD_LENGTH', 'multifd: packet 0 has no data for its 2 pages');
    });
  });

  describe('compressed data', () => {
    const page = new Uint8Array(PAGE).fill(7);

    function packet(method: 'zlib' | 'zstd', data: Uint8Array, pages = 1): Buffer {
      const header = encodePacketHeader({ sync: false, compression: method, packetNumber: 0, round: 0, block: 0, runs: [{ first: 3, count: pages, zero: false }], dataLength: data.length });
      return Buffer.concat([header, data]);
    }

    const cases: [string, 'zlib' | 'zstd', () => Uint8Array, string][] = [
      ['corrupt zlib data', 'zlib', () => Buffer.from('not a zlib stream at all'), 'multifd: packet 0: zlib data is corrupt (incorrect header check)'],
      ['a cut zlib stream', 'zlib', () => deflateSync(page).subarray(0, 12), 'multifd: packet 0: zlib data is corrupt (unexpected end of file)'],
      ['zlib data that inflates to less than the runs need', 'zlib', () => deflateSync(page.subarray(1)), 'multifd: packet 0: packet size received 4095 size expected 4096'],
      ['zlib data that inflates to more than the runs need', 'zlib', () => deflateSync(new Uint8Array(2 * PAGE)), 'multifd: packet 0: packet size received more than 4096 size expected 4096'],
      ['bytes after the zlib stream', 'zlib', () => Buffer.concat([deflateSync(page), Buffer.from([1, 2])]), 'multifd: packet 0: zlib stream ends after 27 of 29 data bytes'],
      ['data that is not a zstd frame', 'zstd', () => deflateSync(page), 'multifd: packet 0: zstd data does not start with a frame that declares its size'],
      ['a zstd frame declaring another size', 'zstd', () => zstd(page.subarray(1)), 'multifd: packet 0: packet size received 4095 size expected 4096'],
      ['a zstd frame declaring a huge size', 'zstd', () => zstdHeader(2 ** 40), 'multifd: packet 0: packet size received 1099511627776 size expected 4096'],
      ['a zstd frame that does not declare its size', 'zstd', () => Buffer.from('28b52ffd0058', 'hex'), 'multifd: packet 0: zstd data does not start with a frame that declares its size'],
      ['a corrupt zstd frame of the right size', 'zstd', () => Buffer.concat([zstdHeader(PAGE), Buffer.from('ffffffff', 'hex')]), 'multifd: packet 0: zstd data is corrupt (Data corruption detected)'],
      ['a zstd frame followed by another', 'zstd', () => Buffer.concat([zstd(page), zstd(page)]), `multifd: packet 0: zstd frame ends after ${zstd(page).length} of ${2 * zstd(page).length} data bytes`],
    ];
    for (const [what, method, data, message] of cases) {
      it(`rejects ${what} with DECOMPRESS_FAILED, writing no page`, () => {
        const { decoder, guest } = channel(method);
        expectError(() => decoder.push(packet(method, data())), 'DECOMPRESS_FAILED', message);
        expect(guest.events).to.deep.equal([]);
        expect(untouched(guest)).to.equal(true);
      });
    }

    it('decompressInto fills the buffer exactly, and reports a wrong size on its own', () => {
      for (const method of ['zlib', 'zstd'] as const) {
        const out = new Uint8Array(PAGE + 1);
        decompressInto(method, compressPages(method, 1, [page, new Uint8Array([9])]), out);
        expect(out[0]).to.equal(7);
        expect(out[PAGE]).to.equal(9);
        expectError(() => decompressInto(method, compressPages(method, 1, [page]), new Uint8Array(PAGE + 1)), 'DECOMPRESS_FAILED', 'packet size received 4096 size expected 4097');
      }
    });
  });

  describe('hello', () => {
    function withHello(): { decoder: MultifdDecoder; guest: FakeGuest } {
      const guest = new FakeGuest([4]);
      const decoder = new MultifdDecoder({ sink: guest, layout: guest.layout, compression: 'none', onSync: () => {}, onHello: () => {} });
      return { decoder, guest };
    }

    it('rejects a hello of another kind of channel with BAD_HELLO', () => {
      expectError(
        () => withHello().decoder.push(encodeHello({ kind: ChannelKind.MAIN, channelId: 0, channelCount: 1 })),
        'BAD_HELLO',
        'multifd: channel hello is for a main channel',
      );
    });

    it('rejects a malformed hello with BAD_HELLO, passing on what is wrong', () => {
      const hello = encodeHello({ kind: ChannelKind.MULTIFD, channelId: 0, channelCount: 2 });
      hello[7] = 2;
      expectError(() => withHello().decoder.push(hello), 'BAD_HELLO', 'multifd: bad channel hello: Channel hello names channel 2 of 2');
      expectError(
        () => withHello().decoder.push(Buffer.alloc(32)),
        'BAD_HELLO',
        'multifd: bad channel hello: Not a livemig migration stream (magic 0x00000000, expected 0x4c564d47)',
      );
    });
  });

  describe('end of the channel', () => {
    it('is TRUNCATED in the hello, or when a channel that must send one sent nothing', () => {
      const make = (): MultifdDecoder => {
        const guest = new FakeGuest([4]);
        return new MultifdDecoder({ sink: guest, layout: guest.layout, compression: 'none', onSync: () => {}, onHello: () => {} });
      };
      const some = make();
      some.push(encodeHello({ kind: ChannelKind.MULTIFD, channelId: 1, channelCount: 2 }).subarray(0, 10));
      expectError(() => some.end(), 'TRUNCATED', 'multifd: channel ended in its channel hello (10 of 32 bytes)');
      expectError(() => make().end(), 'TRUNCATED', 'multifd: channel ended in its channel hello (0 of 32 bytes)');
    });

    it('is TRUNCATED in a packet header', () => {
      const { decoder } = channel();
      decoder.push(encodeSyncPacket(0, 1, 'none'));
      decoder.push(encodeSyncPacket(1, 2, 'none').subarray(0, 5));
      expectError(() => decoder.end(), 'TRUNCATED', 'multifd: channel ended in the header of packet 1 (5 of 24 bytes)');
    });

    it('is TRUNCATED in descriptors or page data, with how much arrived', () => {
      const descriptors = channel().decoder;
      descriptors.push(rawHeader({ runs: [[0, 1], [1, 1]] }).subarray(0, 30));
      expectError(() => descriptors.end(), 'TRUNCATED', 'multifd: channel ended in packet 0 (30 of 8232 bytes)');
      const data = channel().decoder;
      data.push(rawHeader({ runs: [[0, 2]] }));
      data.push(new Uint8Array(PAGE + 3));
      expectError(() => data.end(), 'TRUNCATED', 'multifd: channel ended in packet 0 (4131 of 8224 bytes)');
    });

    it('is TRUNCATED in compressed data', () => {
      const { decoder, guest } = channel('zlib');
      const data = deflateSync(new Uint8Array(PAGE).fill(1));
      decoder.push(encodePacketHeader({ sync: false, compression: 'zlib', packetNumber: 0, round: 0, block: 0, runs: [{ first: 0, count: 1, zero: false }], dataLength: data.length }));
      decoder.push(data.subarray(0, data.length - 1));
      expectError(() => decoder.end(), 'TRUNCATED', `multifd: channel ended in packet 0 (${32 + data.length - 1} of ${32 + data.length} bytes)`);
      expect(guest.events).to.deep.equal([]);
    });

    it('is a clean end between packets, after which input is refused with DECODER_CLOSED', () => {
      const { decoder } = channel();
      decoder.end();
      expectError(() => decoder.want(), 'DECODER_CLOSED', 'multifd: channel already ended');
      const after = channel().decoder;
      after.push(encodeSyncPacket(0, 1, 'none'));
      after.end();
      expectError(() => after.push(encodeSyncPacket(1, 2, 'none')), 'DECODER_CLOSED', 'multifd: channel already ended');
    });
  });

  it('refuses further input after an error, repeating the same error', () => {
    const { decoder } = channel();
    const first = thrown(() => decoder.push(rawHeader({ magic: 1 })));
    expect(thrown(() => decoder.want())).to.equal(first);
    expect(thrown(() => decoder.push(encodeSyncPacket(0, 1, 'none')))).to.equal(first);
    expect(thrown(() => decoder.end())).to.equal(first);
  });

  it('passes on an error thrown by onSync, and stops there', () => {
    const guest = new FakeGuest([4]);
    const boom = new Error('barrier broken');
    const decoder = new MultifdDecoder({
      sink: guest,
      layout: guest.layout,
      compression: 'none',
      onSync: () => {
        throw boom;
      },
    });
    expect(() => decoder.push(encodeSyncPacket(0, 1, 'none'))).to.throw(boom);
    expect(() => decoder.want()).to.throw(boom);
  });

  it('refuses a commit larger than the last want() view', () => {
    const { decoder } = channel();
    const view = decoder.want();
    expect(() => decoder.commit(view.length + 1)).to.throw(RangeError, 'commit(25) does not fit the last want() view of 24 bytes');
  });

  it('refuses a sink view that is not whole pages within the run', () => {
    const guest = new FakeGuest([4]);
    const decoder = new MultifdDecoder({
      sink: { ...guest, pageView: () => new Uint8Array(100), pagesLoaded: () => {}, zeroPages: () => {} },
      layout: guest.layout,
      compression: 'none',
      onSync: () => {},
    });
    decoder.push(rawHeader({ runs: [[0, 1]] }));
    expect(() => decoder.want()).to.throw(RangeError, 'PageSink.pageView(0, 0, 1) must return a view of 1 to 1 whole pages, got 100 bytes');
  });

  it('refuses unknown compression or a bad page size at construction', () => {
    const guest = new FakeGuest([4]);
    expect(() => new MultifdDecoder({ sink: guest, compression: 'lz4' as CompressionMethod, onSync: () => {} })).to.throw(RangeError, "Unknown multifd compression 'lz4'");
    expect(() => new MultifdDecoder({ sink: guest, compression: 'none', pageSize: 0, onSync: () => {} })).to.throw(RangeError, 'Bad page size 0');
  });

  it('refuses zstd, saying why, where the zstd-napi addon did not load; zlib still works', async function () {
    this.timeout(20000);
    // The child breaks the addon's loading as a failed node-gyp build would, before the codec module loads.
    const script = `
      const Module = (await import('node:module')).default;
      const load = Module._load;
      Module._load = function (request, ...rest) {
        if (request === 'zstd-napi/binding.js') throw new Error('Cannot find module build/Release/binding.node');
        return load.call(this, request, ...rest);
      };
      const { compressPages, unavailable } = await import('./protocols/multifd/compression.ts');
      const { MultifdDecoder } = await import('./protocols/multifd/decode.ts');
      const { checkParameters, DEFAULT_PARAMETERS } = await import('./actors/options/parameters.ts');
      const out = [];
      const tries = [
        () => compressPages('zstd', 1, [new Uint8Array(8)]),
        () => new MultifdDecoder({ sink: {}, compression: 'zstd', onSync() {} }),
        () => checkParameters({ ...DEFAULT_PARAMETERS, 'multifd-compression': 'zstd' }),
      ];
      for (const f of tries) {
        try { f(); out.push('no error'); } catch (e) { out.push(e.message); }
      }
      out.push(unavailable('zlib') ?? 'zlib available');
      out.push(compressPages('zlib', 1, [new Uint8Array(8)]).length > 0 ? 'zlib works' : 'zlib failed');
      console.log(JSON.stringify(out));`;
    const stdout = await new Promise<string>((resolve, reject) =>
      execFile(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { cwd: process.cwd() }, (error, out) => (error ? reject(error) : resolve(out))),
    );
    const why = 'zstd compression is not available: the zstd-napi addon did not load (Cannot find module build/Release/binding.node); ' +
      'npm ci builds it with node-gyp, which needs python3, make and a C compiler';
    expect(JSON.parse(stdout)).to.deep.equal([why, why, `Parameter 'multifd-compression' does not accept value 'zstd': ${why}`, 'zlib available', 'zlib works']);
  });
});

/** One zstd frame of `data` at level 3, declaring its size. */
function zstd(data: Uint8Array): Buffer {
  return zstdCompress(data, { compressionLevel: 3 });
}

/** A zstd frame header (single segment, 8-byte content size) declaring `size`, with no blocks. */
function zstdHeader(size: number): Buffer {
  const out = Buffer.alloc(13);
  out.writeUInt32LE(0xfd2fb528, 0);
  out[4] = 0xe0;
  out.writeBigUInt64LE(BigInt(size), 5);
  return out;
}
