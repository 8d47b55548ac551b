import { expect } from 'chai';
import { ChannelKind } from '../protocols/hello/constants.js';
import { MAX_PAGES_BODY, MAX_XBZRLE_BODY } from '../protocols/stream/constants.js';
import { StreamDecoder } from '../protocols/stream/decode.js';
import { XBZRLE_HEADER_SIZE, encodeControl, encodePagesHeader, writeXbzrleHeader, writeXbzrlePageHeader } from '../protocols/stream/encode.js';
import { encode as encodeXbzrle } from '../protocols/xbzrle/encode.js';
import { encodeHello } from '../protocols/hello/encode.js';
import { StreamError, type StreamErrorCode } from '../protocols/stream/errors.js';
import type { PageSink } from '../protocols/page-runs/types.js';
import { FakeGuest, PAGE } from './stream-fake-guest.js';

const hello = encodeHello({ kind: ChannelKind.MAIN, channelId: 0, channelCount: 1 });

/** A decoder past its hello, with a layout of blocks of 16 and 4 pages. */
function ready(): { decoder: StreamDecoder; guest: FakeGuest } {
  const guest = new FakeGuest([16, 4]);
  const decoder = new StreamDecoder({ sink: guest, onMessage: () => {} });
  decoder.push(hello);
  decoder.setLayout(guest.layout);
  return { decoder, guest };
}

function frameHeader(type: number, length: number, flags = 0, reserved = 0): Buffer {
  const bytes = Buffer.alloc(8);
  bytes[0] = type;
  bytes[1] = flags;
  bytes.writeUInt16BE(reserved, 2);
  bytes.writeUInt32BE(length, 4);
  return bytes;
}

/** A PAGES frame header + sub-header + descriptors written by hand (no encoder checks). */
function rawPages(block: number, runs: [first: number, count: number][], bodyLength?: number, reserved = 0): Buffer {
  const data = runs.reduce((pages, [, raw]) => pages + (raw & 0x80000000 ? 0 : raw), 0) * PAGE;
  const body = Buffer.alloc(8 + 8 * runs.length);
  body.writeUInt16BE(block, 0);
  body.writeUInt16BE(runs.length, 2);
  body.writeUInt32BE(reserved, 4);
  runs.forEach(([first, count], i) => {
    body.writeUInt32BE(first, 8 + 8 * i);
    body.writeUInt32BE(count >>> 0, 12 + 8 * i);
  });
  return Buffer.concat([frameHeader(2, bodyLength ?? body.length + data), body]);
}

function thrown(fn: () => void): StreamError {
  try {
    fn();
  } catch (error) {
    expect(error).to.be.instanceOf(StreamError);
    return error as StreamError;
  }
  throw new Error('expected a StreamError');
}

function expectError(fn: () => void, code: StreamErrorCode, message: string): StreamError {
  const error = thrown(fn);
  expect(error.code).to.equal(code);
  expect(error.message).to.equal(message);
  return error;
}

describe('stream decoder errors', () => {
  it('rejects an unknown frame type with BAD_FRAME_TYPE', () => {
    const { decoder } = ready();
    expectError(() => decoder.push(frameHeader(4, 10)), 'BAD_FRAME_TYPE', 'Unknown frame type 4 in migration stream');
  });

  it('rejects flags or reserved bits in a frame header with BAD_FRAME', () => {
    expectError(() => ready().decoder.push(frameHeader(1, 10, 1)), 'BAD_FRAME', 'Frame header has flags 0x1 and reserved 0x0; both must be 0');
    expectError(() => ready().decoder.push(frameHeader(1, 10, 0, 0x100)), 'BAD_FRAME', 'Frame header has flags 0x0 and reserved 0x100; both must be 0');
  });

  it('refuses an oversized PAGES frame from its header alone', () => {
    const { decoder, guest } = ready();
    expectError(
      () => decoder.push(frameHeader(2, MAX_PAGES_BODY + 1)),
      'FRAME_TOO_LARGE',
      `PAGES frame of ${MAX_PAGES_BODY + 1} bytes is over the limit of ${MAX_PAGES_BODY} bytes`,
    );
    expect(MAX_PAGES_BODY).to.equal(8 + 8 * 1024 + 8 * 1024 * 1024);
    expect(guest.events).to.deep.equal([]);
  });

  it('refuses pages before a layout with BAD_PAGES', () => {
    const guest = new FakeGuest([4]);
    const decoder = new StreamDecoder({ sink: guest, onMessage: () => {} });
    decoder.push(hello);
    expectError(() => decoder.push(encodePagesHeader(0, [{ first: 0, count: 1, zero: true }])), 'BAD_PAGES', 'Received pages before the stream header');
  });

  const badFrames: [string, Buffer, string][] = [
    ['a block index beyond the guest', rawPages(2, [[0, 1]]), 'PAGES frame names block 2, but the guest has 2 blocks'],
    ['zero runs', rawPages(0, [], 16), 'PAGES frame for block 0 has 0 runs (1 to 1024 allowed)'],
    ['a body too short for one run', rawPages(0, [], 8), 'PAGES frame of 8 bytes is too short to hold one run'],
    ['more than 1024 runs', rawPages(0, Array.from({ length: 1025 }, (_, i): [number, number] => [i % 16, 0x80000001])), 'PAGES frame for block 0 has 1025 runs (1 to 1024 allowed)'],
    ['a non-zero reserved sub-header field', rawPages(0, [[0, 1]], undefined, 5), 'PAGES sub-header reserved field is 0x5, must be 0'],
    ['a run past the end of its block', rawPages(1, [[2, 3]]), 'Pages 2-4 of block 1 are outside the block (it has 4 pages)'],
    ['a run starting past the block', rawPages(0, [[0xffffffff, 1]]), 'Pages 4294967295-4294967295 of block 0 are outside the block (it has 16 pages)'],
    ['a run of no pages', rawPages(0, [[0, 0]]), 'Run 0 of a PAGES frame for block 0 has no pages'],
    ['a zero run of no pages', rawPages(0, [[0, 0x80000000]]), 'Run 0 of a PAGES frame for block 0 has no pages'],
    [
      'a body shorter than its runs need',
      rawPages(0, [[0, 2]], 8 + 8 + PAGE),
      'PAGES frame for block 0 is 4112 bytes, but its runs need 8208 (2 pages of data, at most 8388608 bytes)',
    ],
    [
      'a body longer than its runs need',
      rawPages(0, [[0, 0x80000002]], 8 + 8 + 1),
      'PAGES frame for block 0 is 17 bytes, but its runs need 16 (0 pages of data, at most 8388608 bytes)',
    ],
    [
      'a body too short for its descriptors',
      rawPages(0, [[0, 1], [1, 1]], 16),
      'PAGES frame for block 0 is 16 bytes, too short for its 2 runs',
    ],
  ];
  for (const [what, frame, message] of badFrames) {
    it(`rejects ${what} with BAD_PAGES before writing any page`, () => {
      const { decoder, guest } = ready();
      expectError(() => decoder.push(frame), 'BAD_PAGES', message);
      expect(guest.events).to.deep.equal([]);
    });
  }

  it('rejects more than 2048 pages in one frame, checking all runs before the first lands', () => {
    const guest = new FakeGuest([4096]);
    const decoder = new StreamDecoder({ sink: guest, onMessage: () => {}, expectHello: false });
    decoder.setLayout(guest.layout);
    const frame = rawPages(0, [
      [0, 1],
      [1, 0x80000000 | 2047],
      [2048, 0x80000001],
    ]);
    expectError(() => decoder.push(frame), 'BAD_PAGES', 'PAGES frame for block 0 holds 2049 pages, more than 2048');
    expect(guest.events).to.deep.equal([]);
  });

  it('checks a bad run late in a frame before asking for a view for an earlier one', () => {
    const { decoder, guest } = ready();
    expectError(
      () => decoder.push(rawPages(1, [[0, 1], [0, 0x80000001], [3, 2]])),
      'BAD_PAGES',
      'Pages 3-4 of block 1 are outside the block (it has 4 pages)',
    );
    expect(guest.events).to.deep.equal([]);
  });

  describe('truncation', () => {
    it('is TRUNCATED in the hello', () => {
      const decoder = new StreamDecoder({ sink: new FakeGuest([1]), onMessage: () => {} });
      decoder.push(hello.subarray(0, 5));
      expectError(() => decoder.end(), 'TRUNCATED', 'Migration stream truncated in its channel hello (5 of 32 bytes)');
    });

    it('is TRUNCATED for a connection that sent nothing', () => {
      const decoder = new StreamDecoder({ sink: new FakeGuest([1]), onMessage: () => {} });
      expectError(() => decoder.end(), 'TRUNCATED', 'Migration stream truncated in its channel hello (0 of 32 bytes)');
    });

    it('is TRUNCATED in a frame header', () => {
      const { decoder } = ready();
      decoder.push(encodeControl({ type: 'eof' }).subarray(0, 3));
      expectError(() => decoder.end(), 'TRUNCATED', 'Migration stream truncated in a frame header (3 of 8 bytes)');
    });

    it('is TRUNCATED in a CONTROL body', () => {
      const { decoder } = ready();
      const frame = encodeControl({ type: 'ping', value: 1 });
      decoder.push(frame.subarray(0, frame.length - 1));
      expectError(() => decoder.end(), 'TRUNCATED', `Migration stream truncated in a CONTROL frame (${frame.length - 9} of ${frame.length - 8} body bytes)`);
    });

    it('is TRUNCATED in a PAGES body, with how much arrived', () => {
      const { decoder } = ready();
      decoder.push(encodePagesHeader(0, [{ first: 0, count: 2, zero: false }]));
      decoder.push(new Uint8Array(PAGE + 10));
      expectError(() => decoder.end(), 'TRUNCATED', `Migration stream truncated in a PAGES frame for block 0 (${16 + PAGE + 10} of ${16 + 2 * PAGE} body bytes)`);
    });

    it('is a clean end between frames, after which input is refused', () => {
      const { decoder } = ready();
      decoder.push(encodeControl({ type: 'eof' }));
      decoder.end();
      expectError(() => decoder.push(Uint8Array.of(1)), 'DECODER_CLOSED', 'Migration stream already ended');
    });
  });

  it('refuses further input after an error, repeating the same error', () => {
    const { decoder } = ready();
    const first = thrown(() => decoder.push(frameHeader(9, 0)));
    expect(thrown(() => decoder.push(encodeControl({ type: 'eof' })))).to.equal(first);
    expect(thrown(() => decoder.want())).to.equal(first);
    expect(thrown(() => decoder.end())).to.equal(first);
  });

  it('passes on an error thrown by onMessage, and stops there', () => {
    const mismatch = new Error('RAM block mismatch');
    const decoder = new StreamDecoder({
      sink: new FakeGuest([1]),
      onMessage: () => {
        throw mismatch;
      },
    });
    decoder.push(hello);
    let error: unknown;
    try {
      decoder.push(encodeControl({ type: 'eof' }));
    } catch (e) {
      error = e;
    }
    expect(error).to.equal(mismatch);
    expect(() => decoder.push(Uint8Array.of(1))).to.throw(mismatch.message);
  });

  it('refuses a commit larger than the last want() view', () => {
    const { decoder } = ready();
    const view = decoder.want();
    expect(() => decoder.commit(view.length + 1)).to.throw(RangeError, 'commit(9) does not fit the last want() view of 8 bytes');
  });

  it('refuses a sink view that is not whole pages within the run', () => {
    const sink: PageSink = {
      pageView: () => new Uint8Array(100),
      pagesLoaded: () => {},
      zeroPages: () => {},
    };
    const decoder = new StreamDecoder({ sink, onMessage: () => {}, expectHello: false });
    decoder.setLayout({ blocks: [{ pageCount: 4 }] });
    expect(() => decoder.push(encodePagesHeader(0, [{ first: 0, count: 1, zero: false }]))).to.not.throw();
    expect(() => decoder.want()).to.throw(RangeError, 'PageSink.pageView(0, 0, 1) must return a view of 1 to 1 whole pages, got 100 bytes');
  });

  describe('XBZRLE frames', () => {
    /** A decoder taking XBZRLE pages into a guest of blocks of 16 and 4 pages, each byte 0x11. */
    function xbzrleReady(): { decoder: StreamDecoder; guest: FakeGuest } {
      const guest = new FakeGuest([16, 4], { fill: 0x11 });
      const decoder = new StreamDecoder({ sink: guest, onMessage: () => {}, expectHello: false });
      decoder.setLayout(guest.layout);
      decoder.setXbzrle(guest);
      return { decoder, guest };
    }

    /** The delta that turns a page of 0x11 into `page`. */
    function deltaTo(page: Uint8Array): Uint8Array {
      const out = new Uint8Array(PAGE);
      const n = encodeXbzrle(new Uint8Array(PAGE).fill(0x11), page, out);
      return out.subarray(0, n);
    }

    /** A frame as the source writes it. */
    function xbzrleFrame(block: number, pages: [page: number, delta: Uint8Array][]): Buffer {
      const frame = Buffer.alloc(XBZRLE_HEADER_SIZE + pages.reduce((n, [, d]) => n + 6 + d.length, 0));
      let at = XBZRLE_HEADER_SIZE;
      for (const [page, delta] of pages) {
        at = writeXbzrlePageHeader(frame, at, page, delta.length);
        frame.set(delta, at);
        at += delta.length;
      }
      writeXbzrleHeader(frame, block, pages.length, at - XBZRLE_HEADER_SIZE);
      return frame;
    }

    /** A page of 0x11 with a few bytes changed. */
    function changed(at: number, value: number): Uint8Array {
      const page = new Uint8Array(PAGE).fill(0x11);
      page.fill(value, at, at + 3);
      return page;
    }

    it('applies each delta to the page it names, in place, and to nothing else; byte by byte as in one piece', () => {
      for (const pieces of [1, 0]) {
        const { decoder, guest } = xbzrleReady();
        const frame = xbzrleFrame(1, [[3, deltaTo(changed(100, 7))], [0, deltaTo(changed(4093, 9))]]);
        if (pieces === 1) decoder.push(frame);
        else for (const byte of frame) decoder.push(Uint8Array.of(byte));
        expect(decoder.framesDecoded).to.equal(1);
        expect(Buffer.from(guest.page(1, 3)).equals(changed(100, 7))).to.equal(true);
        expect(Buffer.from(guest.page(1, 0)).equals(changed(4093, 9))).to.equal(true);
        expect([1, 2].every((p) => guest.page(1, p).every((b) => b === 0x11))).to.equal(true);
        expect(guest.ram[0]!.every((b) => b === 0x11)).to.equal(true);
        expect(guest.guardsIntact()).to.equal(true);
      }
    });

    it("refuses an XBZRLE frame while the stream header has not turned xbzrle on, with QEMU's wording", () => {
      const guest = new FakeGuest([16]);
      const decoder = new StreamDecoder({ sink: guest, onMessage: () => {}, expectHello: false });
      decoder.setLayout(guest.layout);
      expectError(() => decoder.push(frameHeader(3, 30)), 'BAD_XBZRLE',
        'Failed to load XBZRLE page - an XBZRLE frame, but the stream header did not turn the xbzrle capability on');
      expect(guest.xbzrlePages).to.deep.equal([]);
    });

    it('refuses an oversized XBZRLE frame from its header alone', () => {
      const { decoder, guest } = xbzrleReady();
      expectError(() => decoder.push(frameHeader(3, MAX_XBZRLE_BODY + 1)), 'FRAME_TOO_LARGE',
        `XBZRLE frame of ${MAX_XBZRLE_BODY + 1} bytes is over the limit of ${MAX_XBZRLE_BODY} bytes`);
      expect(guest.xbzrlePages).to.deep.equal([]);
    });

    /** A frame with its body edited after it was written: `edit(body)` gets the body (sub-header at 0, first page at 8). */
    const edited = (edit: (body: Buffer) => Buffer | undefined): Buffer => {
      const frame = xbzrleFrame(1, [[2, deltaTo(changed(10, 5))]]);
      const body = edit(frame.subarray(8)) ?? frame.subarray(8);
      return Buffer.concat([frameHeader(3, body.length), body]);
    };
    const badFrames: [string, Buffer, string][] = [
      ['a delta for a page past its block', edited((b) => void b.writeUInt32BE(4, 8)), 'page 4 is outside block 1 (it has 4 pages)'],
      ['a block beyond the guest', edited((b) => void b.writeUInt16BE(2, 0)), 'XBZRLE frame names block 2, but the guest has 2 blocks'],
      ['a delta length over the page size', edited((b) => void b.writeUInt16BE(4097, 12)),
        'len overflow! (a delta of 4097 bytes for page 2 of block 1, pages are 4096)'],
      ['a delta running past its frame', edited((b) => void b.writeUInt16BE(b.length, 12)),
        `the delta of page 2 of block 1 (${8 + 6 + deltaTo(changed(10, 5)).length} bytes) runs past the end of its frame`],
      ['more pages announced than the frame holds', edited((b) => void b.writeUInt16BE(2, 2)), 'XBZRLE frame for block 1 ends before its page 2 of 2'],
      ['bytes after the last page', edited((b) => Buffer.concat([b, Buffer.of(0)])), 'XBZRLE frame for block 1 has 1 bytes after its last page'],
      ['no pages', edited((b) => void b.writeUInt16BE(0, 2)), 'XBZRLE frame for block 1 has 0 pages (1 to 2048 allowed)'],
      ['a non-zero reserved field', edited((b) => void b.writeUInt32BE(1, 4)), 'XBZRLE sub-header reserved field is 0x1, must be 0'],
      ['a body too short for one page', Buffer.concat([frameHeader(3, 13), Buffer.alloc(13)]), 'an XBZRLE frame of 13 bytes is too short to hold one page'],
    ];
    for (const [what, frame, message] of badFrames) {
      it(`refuses ${what} with BAD_XBZRLE before touching a page`, () => {
        const { decoder, guest } = xbzrleReady();
        expectError(() => decoder.push(frame), 'BAD_XBZRLE', `Failed to load XBZRLE page - ${message}`);
        expect(guest.xbzrlePages).to.deep.equal([]);
        expect(guest.ram.every((ram) => ram.every((b) => b === 0x11))).to.equal(true);
      });
    }

    it("passes on the sink's refusal of a corrupt delta as BAD_XBZRLE, the page untouched and nothing written around it", () => {
      const { decoder, guest } = xbzrleReady();
      // A zero run of 4000 bytes, then a literal run of 200: past the page's end.
      const delta = Uint8Array.of(0xa0, 0x1f, 0xc8, 0x01, ...new Array<number>(200).fill(0x77));
      const error = thrown(() => decoder.push(xbzrleFrame(1, [[3, delta]])));
      expect(error.code).to.equal('BAD_XBZRLE');
      expect(error.message).to.match(/^XBZRLE delta, byte 2: a literal run of 200 bytes from page offset 4000 goes past the 4096-byte page/);
      expect(guest.ram.every((ram) => ram.every((b) => b === 0x11))).to.equal(true);
      expect(guest.guardsIntact()).to.equal(true);
    });

    it('is TRUNCATED in an XBZRLE body, with how much arrived', () => {
      const { decoder } = xbzrleReady();
      const frame = xbzrleFrame(0, [[1, deltaTo(changed(0, 3))]]);
      decoder.push(frame.subarray(0, frame.length - 1));
      expectError(() => decoder.end(), 'TRUNCATED', `Migration stream truncated in an XBZRLE frame (${frame.length - 9} of ${frame.length - 8} body bytes)`);
    });
  });
});
