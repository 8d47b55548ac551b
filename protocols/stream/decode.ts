/**
 * Incremental decoder of the main migration stream (decode only).
 *
 * A pull state machine: `want()` says where the next bytes must go, `commit(n)`
 * says n bytes arrived there. Headers go to a small scratch buffer; the bytes
 * of a page run go straight into the guest-memory view the sink returns, so
 * with `net.Socket`'s `onread: { buffer: () => d.want(), callback: (n) => d.commit(n) }`
 * the kernel copies pages directly into guest RAM.
 *
 * Hot path: want/commit run once per socket read. They must never allocate
 * per page, copy page bytes, or request a view for a run before the whole
 * frame's runs are checked against the guest layout. Every length is checked
 * against its limit as soon as its header arrives, before any body is buffered.
 */
import { Unpackr } from 'msgpackr';
import {
  ChannelKind,
  DEFAULT_PAGE_SIZE,
  FRAME_HEADER_SIZE,
  FrameType,
  HELLO_CHANNEL_COUNT_OFFSET,
  HELLO_CHANNEL_ID_OFFSET,
  HELLO_KIND_OFFSET,
  HELLO_MAGIC_OFFSET,
  HELLO_RESERVED1_OFFSET,
  HELLO_RESERVED2_OFFSET,
  HELLO_SIZE,
  HELLO_UUID_OFFSET,
  HELLO_VERSION_OFFSET,
  MAX_CONTROL_BODY,
  MAX_PAGE_DATA_PER_FRAME,
  MAX_PAGES_BODY,
  MAX_PAGES_PER_FRAME,
  MAX_RUNS_PER_FRAME,
  PAGES_SUBHEADER_SIZE,
  RUN_COUNT_MASK,
  RUN_DESCRIPTOR_SIZE,
  STREAM_MAGIC,
  STREAM_VERSION,
  ZERO_RUN_FLAG,
} from './constants.js';
import { StreamError } from './errors.js';
import { checkStreamMessage, type StreamMessage } from './messages.js';
import type { ChannelHello, GuestLayout, PageSink } from './types.js';
import { readUuid } from './uuid.js';

// Hostile input: no structured-clone references, 64-bit integers as plain
// numbers (the schemas then reject anything beyond 2^53).
const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true, int64AsType: 'number', structuredClone: false });

const CHANNEL_KINDS: readonly number[] = Object.values(ChannelKind);

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

// Phases from CONTROL_BODY on are inside a frame body (commit counts bodyRead by that).
const Phase = {
  HELLO: 0,
  FRAME_HEADER: 1,
  CONTROL_BODY: 2,
  PAGES_SUBHEADER: 3,
  RUN_DESCRIPTORS: 4,
  PAGE_DATA: 5,
} as const;
type Phase = (typeof Phase)[keyof typeof Phase];

/**
 * Decodes one connection's stream: the hello, then frames.
 *
 * @example
 * const decoder = new StreamDecoder({ sink: guestRam, onMessage: (m) => incoming.handle(m) });
 * const socket = net.connect({ port, onread: { buffer: () => decoder.want(), callback: (n) => { decoder.commit(n); return true; } } });
 * socket.on('end', () => decoder.end());
 */
export class StreamDecoder {
  private readonly sink: PageSink;
  private readonly onMessage: (message: StreamMessage) => void;
  private readonly onHello: ((hello: ChannelHello) => void) | undefined;
  private readonly pageSize: number;
  private layout: GuestLayout | undefined;

  // Hello, frame header and pages sub-header share one scratch buffer.
  private readonly scratch = new Uint8Array(HELLO_SIZE);
  private readonly scratchView = new DataView(this.scratch.buffer);
  /** The 8-byte fields (frame header, pages sub-header), kept as one view to allocate nothing per frame. */
  private readonly scratch8 = this.scratch.subarray(0, 8);
  private readonly descriptors = new Uint8Array(RUN_DESCRIPTOR_SIZE * MAX_RUNS_PER_FRAME);
  private readonly descriptorView = new DataView(this.descriptors.buffer);

  private phase: Phase;
  /** Where the current field's bytes go; undefined while a page run waits for its next sink view. */
  private target: Uint8Array | undefined;
  private filled = 0;
  private wanted = 0;
  private magicChecked = false;

  private bodyLength = 0;
  private bodyRead = 0;
  private block = 0;
  private runCount = 0;
  private runIndex = 0;
  private runFirst = 0;
  private runPages = 0;
  private runPagesDone = 0;

  private failure: unknown;
  private failed = false;
  private ended = false;

  private readonly counters = { bytes: 0, frames: 0, pages: 0, zeroPages: 0 };

  constructor(options: StreamDecoderOptions) {
    this.sink = options.sink;
    this.onMessage = options.onMessage;
    this.onHello = options.onHello;
    this.pageSize = options.pageSize ?? DEFAULT_PAGE_SIZE;
    if (!Number.isInteger(this.pageSize) || this.pageSize < 1) throw new RangeError(`Bad page size ${this.pageSize}`);
    if (options.expectHello === false) {
      this.phase = Phase.FRAME_HEADER;
      this.expect(this.scratch8, FRAME_HEADER_SIZE);
    } else {
      this.phase = Phase.HELLO;
      this.expect(this.scratch, HELLO_SIZE);
    }
  }

  /** Bytes committed so far, hello included. */
  get bytesDecoded(): number {
    return this.counters.bytes;
  }
  get framesDecoded(): number {
    return this.counters.frames;
  }
  /** Pages whose bytes were placed (pagesLoaded). */
  get pagesReceived(): number {
    return this.counters.pages;
  }
  /** Pages announced as zero (zeroPages). */
  get zeroPagesReceived(): number {
    return this.counters.zeroPages;
  }

  /** The guest's RAM blocks, in the stream header's order; set once the header is accepted. */
  setLayout(layout: GuestLayout): void {
    this.layout = layout;
  }

  /** A view where the next incoming bytes must go, sized to what the current field still needs. */
  want(): Uint8Array {
    this.checkOpen();
    if (this.target === undefined) {
      try {
        this.target = this.nextPageView();
      } catch (error) {
        throw this.fail(error);
      }
      this.filled = 0;
    }
    // The field itself when nothing of it has arrived: for pages, the sink's own view.
    const view = this.filled === 0 ? this.target : this.target.subarray(this.filled);
    this.wanted = view.length;
    return view;
  }

  /** `n` bytes were written at the start of the last `want()` view. */
  commit(n: number): void {
    this.checkOpen();
    if (!Number.isInteger(n) || n < 0 || n > this.wanted) {
      throw new RangeError(`commit(${n}) does not fit the last want() view of ${this.wanted} bytes`);
    }
    if (n === 0) return;
    this.wanted -= n;
    this.filled += n;
    this.counters.bytes += n;
    if (this.phase >= Phase.CONTROL_BODY) this.bodyRead += n;
    try {
      if (this.phase === Phase.HELLO && !this.magicChecked && this.filled >= 4) this.checkMagic();
      if (this.target !== undefined && this.filled === this.target.length) this.fieldComplete();
    } catch (error) {
      throw this.fail(error);
    }
  }

  /** Convenience for transports that hand over chunks: copies each chunk through want/commit. */
  push(chunk: Uint8Array): void {
    let offset = 0;
    while (offset < chunk.length) {
      const view = this.want();
      const n = Math.min(view.length, chunk.length - offset);
      view.set(chunk.subarray(offset, offset + n));
      offset += n;
      this.commit(n);
    }
  }

  /** The connection ended: an error unless it ended between frames. */
  end(): void {
    this.checkOpen();
    this.ended = true;
    if (this.phase === Phase.FRAME_HEADER && this.filled === 0) return;
    throw this.fail(new StreamError('TRUNCATED', `Migration stream truncated ${this.describePosition()}`));
  }

  private describePosition(): string {
    switch (this.phase) {
      case Phase.HELLO:
        return `in its channel hello (${this.filled} of ${HELLO_SIZE} bytes)`;
      case Phase.FRAME_HEADER:
        return `in a frame header (${this.filled} of ${FRAME_HEADER_SIZE} bytes)`;
      case Phase.CONTROL_BODY:
        return `in a CONTROL frame (${this.bodyRead} of ${this.bodyLength} body bytes)`;
      default:
        return `in a PAGES frame for block ${this.block} (${this.bodyRead} of ${this.bodyLength} body bytes)`;
    }
  }

  private checkOpen(): void {
    if (this.failed) throw this.failure;
    if (this.ended) throw new StreamError('DECODER_CLOSED', 'Migration stream already ended');
  }

  private fail(error: unknown): unknown {
    this.failed = true;
    this.failure = error;
    return error;
  }

  private expect(target: Uint8Array, length: number): void {
    this.target = target.length === length ? target : target.subarray(0, length);
    this.filled = 0;
  }

  private fieldComplete(): void {
    switch (this.phase) {
      case Phase.HELLO:
        this.helloComplete();
        return;
      case Phase.FRAME_HEADER:
        this.frameHeaderComplete();
        return;
      case Phase.CONTROL_BODY:
        this.controlBodyComplete();
        return;
      case Phase.PAGES_SUBHEADER:
        this.pagesSubheaderComplete();
        return;
      case Phase.RUN_DESCRIPTORS:
        this.runDescriptorsComplete();
        return;
      case Phase.PAGE_DATA:
        this.pageViewFilled();
        return;
    }
  }

  private checkMagic(): void {
    this.magicChecked = true;
    const magic = this.scratchView.getUint32(HELLO_MAGIC_OFFSET);
    if (magic !== STREAM_MAGIC) {
      throw new StreamError('BAD_MAGIC', `Not a livemig migration stream (magic ${hex32(magic)}, expected ${hex32(STREAM_MAGIC)})`);
    }
  }

  private helloComplete(): void {
    const hello = decodeHello(this.scratch);
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
    if (type !== FrameType.CONTROL && type !== FrameType.PAGES) {
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

  private controlBodyComplete(): void {
    const body = this.target as Uint8Array;
    let decoded: unknown;
    try {
      decoded = unpackr.unpack(body);
    } catch (error) {
      const reason = error instanceof Error ? error.message.slice(0, 120) : String(error).slice(0, 120);
      throw new StreamError('BAD_MESSAGE', `Control message is not valid msgpack: ${reason}`);
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
    this.block = block;
    this.runCount = runs;
    this.phase = Phase.RUN_DESCRIPTORS;
    this.expect(this.descriptors, RUN_DESCRIPTOR_SIZE * runs);
  }

  /** Checks every run of the frame before any of its bytes is accepted. */
  private runDescriptorsComplete(): void {
    const view = this.descriptorView;
    const block = this.block;
    const pageCount = (this.layout as GuestLayout).blocks[block]?.pageCount ?? 0;
    let pages = 0;
    let dataPages = 0;
    for (let i = 0; i < this.runCount; i++) {
      const first = view.getUint32(i * RUN_DESCRIPTOR_SIZE);
      const raw = view.getUint32(i * RUN_DESCRIPTOR_SIZE + 4);
      const count = raw & RUN_COUNT_MASK;
      if (count < 1) throw new StreamError('BAD_PAGES', `Run ${i} of a PAGES frame for block ${block} has no pages`);
      if (first + count > pageCount) {
        throw new StreamError(
          'BAD_PAGES',
          `Pages ${first}-${first + count - 1} of block ${block} are outside the block (it has ${pageCount} pages)`,
        );
      }
      pages += count;
      if ((raw & ZERO_RUN_FLAG) === 0) dataPages += count;
    }
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
    this.runIndex = 0;
    this.startRun();
  }

  /** Delivers zero runs and finds the next run with bytes, or ends the frame. */
  private startRun(): void {
    const view = this.descriptorView;
    while (this.runIndex < this.runCount) {
      const first = view.getUint32(this.runIndex * RUN_DESCRIPTOR_SIZE);
      const raw = view.getUint32(this.runIndex * RUN_DESCRIPTOR_SIZE + 4);
      const count = raw & RUN_COUNT_MASK;
      if ((raw & ZERO_RUN_FLAG) === 0) {
        this.runFirst = first;
        this.runPages = count;
        this.runPagesDone = 0;
        this.phase = Phase.PAGE_DATA;
        this.target = undefined;
        return;
      }
      this.runIndex++;
      this.counters.zeroPages += count;
      this.sink.zeroPages(this.block, first, count);
    }
    this.frameComplete();
  }

  private nextPageView(): Uint8Array {
    const first = this.runFirst + this.runPagesDone;
    const count = this.runPages - this.runPagesDone;
    const view = this.sink.pageView(this.block, first, count);
    if (!(view instanceof Uint8Array) || view.length === 0 || view.length % this.pageSize !== 0 || view.length > count * this.pageSize) {
      throw new RangeError(
        `PageSink.pageView(${this.block}, ${first}, ${count}) must return a view of 1 to ${count} whole pages, ` +
          `got ${view instanceof Uint8Array ? `${view.length} bytes` : typeof view}`,
      );
    }
    return view;
  }

  private pageViewFilled(): void {
    this.runPagesDone += (this.target as Uint8Array).length / this.pageSize;
    this.target = undefined;
    if (this.runPagesDone < this.runPages) return;
    this.runIndex++;
    this.counters.pages += this.runPages;
    this.sink.pagesLoaded(this.block, this.runFirst, this.runPages);
    this.startRun();
  }

  private frameComplete(): void {
    this.counters.frames++;
    this.startFrame();
  }
}

/**
 * Reads and checks a 32-byte channel hello; for callers that read it
 * themselves, e.g. to sort connections by kind before decoding them.
 */
export function decodeHello(bytes: Uint8Array): ChannelHello {
  if (bytes.length < HELLO_SIZE) {
    throw new StreamError('TRUNCATED', `Migration stream truncated in its channel hello (${bytes.length} of ${HELLO_SIZE} bytes)`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, HELLO_SIZE);
  const magic = view.getUint32(HELLO_MAGIC_OFFSET);
  if (magic !== STREAM_MAGIC) {
    throw new StreamError('BAD_MAGIC', `Not a livemig migration stream (magic ${hex32(magic)}, expected ${hex32(STREAM_MAGIC)})`);
  }
  const version = view.getUint16(HELLO_VERSION_OFFSET);
  if (version !== STREAM_VERSION) {
    throw new StreamError('BAD_VERSION', `Unsupported migration stream version ${version} (this build reads version ${STREAM_VERSION})`);
  }
  const kind = view.getUint8(HELLO_KIND_OFFSET);
  const channelId = view.getUint8(HELLO_CHANNEL_ID_OFFSET);
  const channelCount = view.getUint8(HELLO_CHANNEL_COUNT_OFFSET);
  if (!CHANNEL_KINDS.includes(kind)) throw new StreamError('BAD_HELLO', `Unknown channel kind ${kind} in channel hello`);
  if (channelCount < 1 || channelId >= channelCount) {
    throw new StreamError('BAD_HELLO', `Channel hello names channel ${channelId} of ${channelCount}`);
  }
  const reserved =
    view.getUint16(HELLO_RESERVED1_OFFSET) | view.getUint8(HELLO_RESERVED1_OFFSET + 2) | view.getUint32(HELLO_RESERVED2_OFFSET);
  if (reserved !== 0) throw new StreamError('BAD_HELLO', 'Channel hello has non-zero reserved bytes');
  const uuid = readUuid(bytes, HELLO_UUID_OFFSET);
  const hello: ChannelHello = { version, kind: kind as ChannelKind, channelId, channelCount };
  if (uuid !== undefined) hello.uuid = uuid;
  return hello;
}

function hex32(value: number): string {
  return `0x${value.toString(16).padStart(8, '0')}`;
}

function capitalize(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1);
}
