/**
 * Incremental decoder of the main migration stream (decode only).
 *
 * A pull decoder (protocols/pull-decoder): `want()` says where the next
 * bytes must go, `commit(n)` says n bytes arrived there. The channel hello
 * (protocols/hello) and headers go to a small scratch buffer; the bytes of a
 * page run go straight into the guest-memory view the sink returns
 * (protocols/page-runs/decode.ts), so with `net.Socket`'s
 * `onread: { buffer: () => d.want(), callback: (n) => d.commit(n) }` the
 * kernel copies pages directly into guest RAM (short runs are read ahead
 * together and copied in: protocols/pull-decoder).
 *
 * Hot path: want/commit run once per socket read. They must never allocate
 * per page, copy page bytes (but read ahead), or request a view for a run
 * before the whole frame's runs are checked against the guest layout. Every
 * length is checked against its limit as soon as its header arrives, before
 * any body is buffered.
 * An XBZRLE frame's body is read whole into one reused buffer, checked
 * whole, then each page's delta is handed to the XbzrleSink (a view per page).
 */
import { unpackBody } from '../message-schema/msgpack-body.js';
import { HELLO_SIZE } from '../hello/constants.js';
import { checkHelloMagic, decodeHello } from '../hello/decode.js';
import { HelloError } from '../hello/errors.js';
import type { ChannelHello } from '../hello/types.js';
import { DEFAULT_PAGE_SIZE, RUN_DESCRIPTOR_SIZE } from '../page-runs/constants.js';
import { PageRunDecoder } from '../page-runs/decode.js';
import type { GuestLayout, PageSink } from '../page-runs/types.js';
import {
  FRAME_HEADER_SIZE,
  FrameType,
  MAX_CONTROL_BODY,
  MAX_PAGE_DATA_PER_FRAME,
  MAX_PAGES_BODY,
  MAX_PAGES_PER_FRAME,
  MAX_RUNS_PER_FRAME,
  MAX_XBZRLE_BODY,
  MAX_XBZRLE_PAGES_PER_FRAME,
  PAGES_SUBHEADER_SIZE,
  XBZRLE_PAGE_HEADER_SIZE,
  XBZRLE_SUBHEADER_SIZE,
} from './constants.js';
import { StreamError } from './errors.js';
import { checkStreamMessage, type StreamMessage } from './messages.js';

/** QEMU's wording for every XBZRLE page the destination refuses (an XbzrleSink's refusals start with it too). */
export const XBZRLE_LOAD_FAILED = 'Failed to load XBZRLE page - ';

/** Where XBZRLE pages go (setXbzrle): the destination's own copy of each page, patched in place. */
export interface XbzrleSink {
  /**
   * Applies `delta` (protocols/xbzrle's format) to the destination's copy of
   * `page` of `block`. Throws, the page untouched, if the delta is corrupt
   * or no page can be patched now; the message is the load error's.
   */
  loadXbzrlePage(block: number, page: number, delta: Uint8Array): void;
}

export interface StreamDecoderOptions {
  /** Where page runs land. */
  sink: PageSink;
  /** Each control message, already checked against its schema. */
  onMessage(message: StreamMessage): void;
  /** The channel hello, once its 32 bytes are in and checked. */
  onHello?(hello: ChannelHello): void;
  /** Target page size; default 4096. */
  pageSize?: number;
  /** False when the caller has read the hello itself (to sort connections). Default true. */
  expectHello?: boolean;
}

// Phases from CONTROL_BODY on are inside a frame body (committed() counts bodyRead by that).
const Phase = {
  HELLO: 0,
  FRAME_HEADER: 1,
  CONTROL_BODY: 2,
  PAGES_SUBHEADER: 3,
  RUN_DESCRIPTORS: 4,
  PAGE_DATA: 5,
  XBZRLE_BODY: 6,
} as const;
type Phase = (typeof Phase)[keyof typeof Phase];

/**
 * Decodes one connection's stream: the hello, then frames. Give it the
 * guest's layout (setLayout) once the stream header is accepted.
 *
 * @example
 * const decoder = new StreamDecoder({ sink: guestRam, onMessage: (m) => incoming.handle(m) });
 * const socket = net.connect({ port, onread: { buffer: () => decoder.want(), callback: (n) => { decoder.commit(n); return true; } } });
 * socket.on('end', () => decoder.end());
 */
export class StreamDecoder extends PageRunDecoder {
  private readonly onMessage: (message: StreamMessage) => void;
  private readonly onHello: ((hello: ChannelHello) => void) | undefined;

  // Hello, frame header and pages sub-header share one scratch buffer.
  private readonly scratch = new Uint8Array(HELLO_SIZE);
  private readonly scratchView = new DataView(this.scratch.buffer);
  /** The 8-byte fields (frame header, pages sub-header), kept as one view to allocate nothing per frame. */
  private readonly scratch8 = this.scratch.subarray(0, 8);

  private phase: Phase;
  private magicChecked = false;

  private bodyLength = 0;
  private bodyRead = 0;
  private frames = 0;

  /** Set once the stream header announces the xbzrle capability; XBZRLE frames are refused until then. */
  private xbzrle: XbzrleSink | undefined;
  /** Where an XBZRLE frame's body is read, grown to the largest frame seen. */
  private xbzrleBody = new Uint8Array(0);
  private xbzrleView = new DataView(this.xbzrleBody.buffer);

  constructor(options: StreamDecoderOptions) {
    const pageSize = options.pageSize ?? DEFAULT_PAGE_SIZE;
    if (!Number.isInteger(pageSize) || pageSize < 1) throw new RangeError(`Bad page size ${pageSize}`);
    super({ sink: options.sink, pageSize, maxRuns: MAX_RUNS_PER_FRAME });
    this.onMessage = options.onMessage;
    this.onHello = options.onHello;
    if (options.expectHello === false) {
      this.phase = Phase.FRAME_HEADER;
      this.expect(this.scratch8, FRAME_HEADER_SIZE);
    } else {
      this.phase = Phase.HELLO;
      this.expect(this.scratch, HELLO_SIZE);
    }
  }

  get framesDecoded(): number {
    return this.frames;
  }

  /** XBZRLE frames are accepted from here on (the stream header announced the xbzrle capability), their pages going to `sink`. */
  setXbzrle(sink: XbzrleSink): void {
    this.xbzrle = sink;
  }

  protected override committed(n: number): void {
    if (this.phase >= Phase.CONTROL_BODY) this.bodyRead += n;
    if (this.phase === Phase.HELLO && !this.magicChecked && this.filled >= 4) this.checkMagic();
  }

  /** Between frames. */
  protected override atBoundary(): boolean {
    return this.phase === Phase.FRAME_HEADER && this.filled === 0;
  }

  protected override truncated(): Error {
    return new StreamError('TRUNCATED', `Migration stream truncated ${this.describePosition()}`);
  }

  protected override closed(): Error {
    return new StreamError('DECODER_CLOSED', 'Migration stream already ended');
  }

  protected override emptyRun(run: number, block: number): Error {
    return new StreamError('BAD_PAGES', `Run ${run} of a PAGES frame for block ${block} has no pages`);
  }

  protected override outsideBlock(first: number, count: number, block: number, pageCount: number): Error {
    return new StreamError('BAD_PAGES', `Pages ${first}-${first + count - 1} of block ${block} are outside the block (it has ${pageCount} pages)`);
  }

  protected override runsLanded(): void {
    this.frameComplete();
  }

  private describePosition(): string {
    switch (this.phase) {
      case Phase.HELLO:
        return `in its channel hello (${this.filled} of ${HELLO_SIZE} bytes)`;
      case Phase.FRAME_HEADER:
        return `in a frame header (${this.filled} of ${FRAME_HEADER_SIZE} bytes)`;
      case Phase.CONTROL_BODY:
        return `in a CONTROL frame (${this.bodyRead} of ${this.bodyLength} body bytes)`;
      case Phase.XBZRLE_BODY:
        return `in an XBZRLE frame (${this.bodyRead} of ${this.bodyLength} body bytes)`;
      default:
        return `in a PAGES frame for block ${this.block} (${this.bodyRead} of ${this.bodyLength} body bytes)`;
    }
  }

  protected override fieldComplete(field: Uint8Array): void {
    switch (this.phase) {
      case Phase.HELLO:
        this.helloComplete();
        return;
      case Phase.FRAME_HEADER:
        this.frameHeaderComplete();
        return;
      case Phase.CONTROL_BODY:
        this.controlBodyComplete(field);
        return;
      case Phase.PAGES_SUBHEADER:
        this.pagesSubheaderComplete();
        return;
      case Phase.RUN_DESCRIPTORS:
        this.runDescriptorsComplete();
        return;
      case Phase.PAGE_DATA:
        this.pageViewFilled(field);
        return;
      case Phase.XBZRLE_BODY:
        this.xbzrleBodyComplete();
        return;
    }
  }

  private checkMagic(): void {
    this.magicChecked = true;
    asStreamError(() => checkHelloMagic(this.scratch));
  }

  private helloComplete(): void {
    const hello = asStreamError(() => decodeHello(this.scratch));
    this.startFrame();
    this.onHello?.(hello);
  }

  private startFrame(): void {
    this.phase = Phase.FRAME_HEADER;
    this.expect(this.scratch8, FRAME_HEADER_SIZE);
  }

  private frameHeaderComplete(): void {
    const view = this.scratchView;
    const type = view.getUint8(0);
    const flags = view.getUint8(1);
    const reserved = view.getUint16(2);
    const length = view.getUint32(4);
    if (type !== FrameType.CONTROL && type !== FrameType.PAGES && type !== FrameType.XBZRLE) {
      throw new StreamError('BAD_FRAME_TYPE', `Unknown frame type ${type} in migration stream`);
    }
    if (flags !== 0 || reserved !== 0) {
      throw new StreamError('BAD_FRAME', `Frame header has flags 0x${flags.toString(16)} and reserved 0x${reserved.toString(16)}; both must be 0`);
    }
    this.bodyLength = length;
    this.bodyRead = 0;
    if (type === FrameType.CONTROL) {
      if (length > MAX_CONTROL_BODY) {
        throw new StreamError('FRAME_TOO_LARGE', `CONTROL frame of ${length} bytes is over the limit of ${MAX_CONTROL_BODY} bytes`);
      }
      if (length === 0) throw new StreamError('BAD_MESSAGE', 'Empty control message');
      // A fresh buffer per message: decoded binary fields are views into it.
      this.phase = Phase.CONTROL_BODY;
      this.expect(new Uint8Array(length), length);
      return;
    }
    if (type === FrameType.XBZRLE) {
      this.xbzrleFrameHeader(length);
      return;
    }
    if (length > MAX_PAGES_BODY) {
      throw new StreamError('FRAME_TOO_LARGE', `PAGES frame of ${length} bytes is over the limit of ${MAX_PAGES_BODY} bytes`);
    }
    if (this.layout === undefined) throw new StreamError('BAD_PAGES', 'Received pages before the stream header');
    if (length < PAGES_SUBHEADER_SIZE + RUN_DESCRIPTOR_SIZE) {
      throw new StreamError('BAD_PAGES', `PAGES frame of ${length} bytes is too short to hold one run`);
    }
    this.phase = Phase.PAGES_SUBHEADER;
    this.expect(this.scratch8, PAGES_SUBHEADER_SIZE);
  }

  private controlBodyComplete(body: Uint8Array): void {
    let decoded: unknown;
    try {
      decoded = unpackBody(body);
    } catch (error) {
      throw new StreamError('BAD_MESSAGE', `Control message is not valid msgpack: ${(error as Error).message}`);
    }
    const check = checkStreamMessage(decoded);
    if (!check.ok) throw new StreamError(check.unknownType ? 'UNKNOWN_MESSAGE' : 'BAD_MESSAGE', capitalize(check.problem));
    this.frameComplete();
    this.onMessage(check.message);
  }

  private pagesSubheaderComplete(): void {
    const view = this.scratchView;
    const block = view.getUint16(0);
    const runs = view.getUint16(2);
    const reserved = view.getUint32(4);
    const blocks = (this.layout as GuestLayout).blocks;
    if (reserved !== 0) throw new StreamError('BAD_PAGES', `PAGES sub-header reserved field is 0x${reserved.toString(16)}, must be 0`);
    if (block >= blocks.length) {
      throw new StreamError('BAD_PAGES', `PAGES frame names block ${block}, but the guest has ${blocks.length} blocks`);
    }
    if (runs < 1 || runs > MAX_RUNS_PER_FRAME) {
      throw new StreamError('BAD_PAGES', `PAGES frame for block ${block} has ${runs} runs (1 to ${MAX_RUNS_PER_FRAME} allowed)`);
    }
    const headerBytes = PAGES_SUBHEADER_SIZE + RUN_DESCRIPTOR_SIZE * runs;
    if (this.bodyLength < headerBytes) {
      throw new StreamError('BAD_PAGES', `PAGES frame for block ${block} is ${this.bodyLength} bytes, too short for its ${runs} runs`);
    }
    this.beginBatch(block, runs);
    this.phase = Phase.RUN_DESCRIPTORS;
    this.expect(this.descriptors, RUN_DESCRIPTOR_SIZE * runs);
  }

  /** Checks every run of the frame before any of its bytes is accepted. */
  private runDescriptorsComplete(): void {
    this.checkRuns();
    const { block, batchPages: pages, batchDataPages: dataPages } = this;
    if (pages > MAX_PAGES_PER_FRAME) {
      throw new StreamError('BAD_PAGES', `PAGES frame for block ${block} holds ${pages} pages, more than ${MAX_PAGES_PER_FRAME}`);
    }
    const dataBytes = dataPages * this.pageSize;
    const expected = PAGES_SUBHEADER_SIZE + RUN_DESCRIPTOR_SIZE * this.runCount + dataBytes;
    if (dataBytes > MAX_PAGE_DATA_PER_FRAME || this.bodyLength !== expected) {
      throw new StreamError(
        'BAD_PAGES',
        `PAGES frame for block ${block} is ${this.bodyLength} bytes, but its runs need ${expected} ` +
          `(${dataPages} pages of data, at most ${MAX_PAGE_DATA_PER_FRAME} bytes)`,
      );
    }
    this.phase = Phase.PAGE_DATA;
    this.landRuns();
  }

  private xbzrleFrameHeader(length: number): void {
    if (this.xbzrle === undefined) {
      throw xbzrleError('an XBZRLE frame, but the stream header did not turn the xbzrle capability on');
    }
    if (this.layout === undefined) throw xbzrleError('an XBZRLE frame before the stream header');
    if (length > MAX_XBZRLE_BODY) {
      throw new StreamError('FRAME_TOO_LARGE', `XBZRLE frame of ${length} bytes is over the limit of ${MAX_XBZRLE_BODY} bytes`);
    }
    if (length < XBZRLE_SUBHEADER_SIZE + XBZRLE_PAGE_HEADER_SIZE) {
      throw xbzrleError(`an XBZRLE frame of ${length} bytes is too short to hold one page`);
    }
    if (this.xbzrleBody.length < length) {
      this.xbzrleBody = new Uint8Array(Math.min(MAX_XBZRLE_BODY, Math.max(length, 2 * this.xbzrleBody.length)));
      this.xbzrleView = new DataView(this.xbzrleBody.buffer);
    }
    this.phase = Phase.XBZRLE_BODY;
    this.expect(this.xbzrleBody, length);
  }

  /**
   * Checks the whole frame, then applies its pages in order: each names a
   * page of the block and a delta of at most a page within the body, which
   * must hold exactly the pages it announces. A delta the sink refuses stops
   * the load there.
   */
  private xbzrleBodyComplete(): void {
    const view = this.xbzrleView;
    const block = view.getUint16(0);
    const pages = view.getUint16(2);
    const reserved = view.getUint32(4);
    const blocks = (this.layout as GuestLayout).blocks;
    if (reserved !== 0) throw xbzrleError(`XBZRLE sub-header reserved field is 0x${reserved.toString(16)}, must be 0`);
    if (block >= blocks.length) throw xbzrleError(`XBZRLE frame names block ${block}, but the guest has ${blocks.length} blocks`);
    if (pages < 1 || pages > MAX_XBZRLE_PAGES_PER_FRAME) {
      throw xbzrleError(`XBZRLE frame for block ${block} has ${pages} pages (1 to ${MAX_XBZRLE_PAGES_PER_FRAME} allowed)`);
    }
    this.checkXbzrlePages(block, pages, blocks[block]!.pageCount);
    let at = XBZRLE_SUBHEADER_SIZE;
    for (let i = 0; i < pages; i++) {
      const page = view.getUint32(at);
      const length = view.getUint16(at + 4);
      at += XBZRLE_PAGE_HEADER_SIZE;
      try {
        this.xbzrle!.loadXbzrlePage(block, page, this.xbzrleBody.subarray(at, at + length));
      } catch (error) {
        throw new StreamError('BAD_XBZRLE', error instanceof Error ? error.message : String(error));
      }
      at += length;
    }
    this.frameComplete();
  }

  /** Walks an XBZRLE frame's pages without applying any, and throws at the first that does not fit. */
  private checkXbzrlePages(block: number, pages: number, pageCount: number): void {
    const view = this.xbzrleView;
    const end = this.bodyLength;
    let at = XBZRLE_SUBHEADER_SIZE;
    for (let i = 0; i < pages; i++) {
      if (at + XBZRLE_PAGE_HEADER_SIZE > end) throw xbzrleError(`XBZRLE frame for block ${block} ends before its page ${i + 1} of ${pages}`);
      const page = view.getUint32(at);
      const length = view.getUint16(at + 4);
      at += XBZRLE_PAGE_HEADER_SIZE;
      if (page >= pageCount) throw xbzrleError(`page ${page} is outside block ${block} (it has ${pageCount} pages)`);
      // QEMU's check: a delta longer than the page it rebuilds.
      if (length > this.pageSize) {
        throw xbzrleError(`len overflow! (a delta of ${length} bytes for page ${page} of block ${block}, pages are ${this.pageSize})`);
      }
      if (at + length > end) throw xbzrleError(`the delta of page ${page} of block ${block} (${length} bytes) runs past the end of its frame`);
      at += length;
    }
    if (at !== end) throw xbzrleError(`XBZRLE frame for block ${block} has ${end - at} bytes after its last page`);
  }

  private frameComplete(): void {
    this.frames++;
    this.startFrame();
  }
}

function xbzrleError(why: string): StreamError {
  return new StreamError('BAD_XBZRLE', `${XBZRLE_LOAD_FAILED}${why}`);
}

/** A hello the stream cannot take is the stream's error, with the hello's code and text. */
function asStreamError<T>(read: () => T): T {
  try {
    return read();
  } catch (error) {
    if (error instanceof HelloError) throw new StreamError(error.code, error.message);
    throw error;
  }
}

function capitalize(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1);
}
