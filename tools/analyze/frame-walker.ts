/**
 * Drives the main stream's own decoder (protocols/stream/decode.ts) over
 * chunks of a file through its want/commit interface, and keeps the byte
 * offsets a report needs that the decoder does not: where each frame
 * starts, and where the field being read starts. A decoder error becomes an
 * AnalyzeError at that field's offset, naming what belongs there.
 *
 * Hot path: once per field (a frame header, a body, a scratch-full of
 * pages). It must never allocate per page; page bytes are copied once, from
 * the file's chunk into the page counter's scratch buffer.
 */
import { HELLO_SIZE } from '../../protocols/hello/constants.js';
import type { ChannelHello } from '../../protocols/hello/types.js';
import type { PageSink } from '../../protocols/page-runs/types.js';
import { StreamDecoder } from '../../protocols/stream/decode.js';
import { StreamError } from '../../protocols/stream/errors.js';
import type { StreamMessage } from '../../protocols/stream/messages.js';
import { AnalyzeError, expectedFor } from './analyze-error.js';

/** Where a frame is in the file. */
export interface FrameInfo {
  /** 0-based, counted from the first frame after the hello. */
  index: number;
  /** Byte offset of its header. */
  offset: number;
  /** Header and body. */
  length: number;
}

export interface FrameWalkerOptions {
  /** File offset of the decoder's first byte. */
  base: number;
  sink: PageSink;
  /** False for a stream without a hello (the postcopy package). */
  expectHello: boolean;
  /** Put before the decoder's error texts, e.g. "In the postcopy package: ". */
  context?: string;
  onHello?(hello: ChannelHello): void;
  onMessage(message: StreamMessage, frame: FrameInfo): void;
  onPagesFrame?(frame: FrameInfo): void;
}

export class FrameWalker {
  readonly decoder: StreamDecoder;
  private readonly base: number;
  private readonly context: string;
  private readonly expectHello: boolean;
  /** Decoder offsets (from its first byte) of the field being read and of the frame it is in. */
  private fieldStart = 0;
  private frameStart = 0;
  private frames = 0;
  private inHello: boolean;
  private messageInFrame = false;

  constructor(private readonly options: FrameWalkerOptions) {
    this.base = options.base;
    this.context = options.context ?? '';
    this.expectHello = options.expectHello;
    this.inHello = options.expectHello;
    this.decoder = new StreamDecoder({
      sink: options.sink,
      expectHello: options.expectHello,
      onHello: (hello) => {
        this.inHello = false;
        this.frameStart = this.decoder.bytesDecoded;
        options.onHello?.(hello);
      },
      onMessage: (message) => {
        this.messageInFrame = true;
        options.onMessage(message, this.currentFrame());
      },
    });
  }

  /** File offset just past the bytes read so far. */
  get offset(): number {
    return this.base + this.decoder.bytesDecoded;
  }

  /** Whole frames read. */
  get frameCount(): number {
    return this.frames;
  }

  /** Reads `chunk` (copied out before this returns, so the caller may reuse it). */
  feed(chunk: Uint8Array): void {
    const decoder = this.decoder;
    let at = 0;
    try {
      while (at < chunk.length) {
        // Field by field (no read ahead): the chunk is in memory already, and each field's start is an offset to report.
        const view = decoder.want(false);
        const n = Math.min(view.length, chunk.length - at);
        view.set(chunk.subarray(at, at + n));
        at += n;
        decoder.commit(n);
        if (n === view.length) this.fieldStart = decoder.bytesDecoded;
        if (decoder.framesDecoded !== this.frames) this.frameDone();
      }
    } catch (error) {
      throw this.located(error);
    }
  }

  /** The input ended: an AnalyzeError unless it ended between two frames. */
  end(): void {
    try {
      this.decoder.end();
    } catch (error) {
      throw this.located(error);
    }
  }

  /** An AnalyzeError at the current frame (for the analyzer's own checks of a message just read). */
  errorAtFrame(code: AnalyzeError['code'], message: string, expected: string, at?: number): AnalyzeError {
    return new AnalyzeError(code, `${this.context}${message}`, {
      offset: at ?? this.base + this.frameStart,
      frame: this.frames,
      frameOffset: this.base + this.frameStart,
      expected,
    });
  }

  private currentFrame(): FrameInfo {
    return { index: this.frames, offset: this.base + this.frameStart, length: this.decoder.bytesDecoded - this.frameStart };
  }

  private frameDone(): void {
    if (!this.messageInFrame) this.options.onPagesFrame?.(this.currentFrame());
    this.messageInFrame = false;
    this.frames = this.decoder.framesDecoded;
    this.frameStart = this.decoder.bytesDecoded;
  }

  private located(error: unknown): unknown {
    if (error instanceof AnalyzeError || !(error instanceof StreamError)) return error;
    const code = error.code;
    const truncated = code === 'TRUNCATED';
    const offset = this.base + (truncated ? this.decoder.bytesDecoded : this.fieldStart);
    const message = `${this.context}${error.message}`;
    if (this.inHello && this.expectHello) {
      // A truncated hello is the hello's, not a frame's.
      const expected = truncated ? `the rest of the ${HELLO_SIZE}-byte channel hello` : expectedFor(code, false);
      return new AnalyzeError(code, message, { offset, expected });
    }
    return new AnalyzeError(code, message, {
      offset,
      frame: this.frames,
      frameOffset: this.base + this.frameStart,
      expected: expectedFor(code, this.fieldStart === this.frameStart),
    });
  }
}
