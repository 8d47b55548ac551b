/**
 * Incremental decoder of return-path messages (decode only).
 *
 * Chunks are queued as they arrive; a field is handed out as a view when one
 * chunk holds it and copied only when it spans chunks. Bytes left over when
 * push() returns are copied, so callers may reuse their chunk. Every length is
 * checked against its limit when its header arrives, before its bytes are
 * buffered. Any error leaves the decoder closed: the return path is bad.
 */
import { Unpackr } from 'msgpackr';
import {
  BITMAP_END_MARK_SIZE,
  BITMAP_LENGTH_SIZE,
  RECV_BITMAP_END_MARK,
  RP_HEADER_SIZE,
  RP_MAX_BODY,
} from './constants.js';
import { ReturnPathError } from './errors.js';
import { checkBody, RETURN_PATH_TYPES, TYPE_BY_NUMBER, type ReturnPathMessage, type ReturnPathMessageType } from './messages.js';

const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true, int64AsType: 'number', structuredClone: false });

export interface ReturnPathDecoderOptions {
  /** Each message, checked against its schema. */
  onMessage(message: ReturnPathMessage): void;
  /**
   * The largest bitmap accepted for `block` (in bytes), or undefined for a
   * block the source does not know. Without it, any non-empty bitmap is refused.
   */
  maxBitmapBytes?(block: string): number | undefined;
}

const Phase = {
  HEADER: 0,
  BODY: 1,
  BITMAP_LENGTH: 2,
  BITMAP: 3,
  BITMAP_END: 4,
} as const;
type Phase = (typeof Phase)[keyof typeof Phase];

/**
 * @example
 * const decoder = new ReturnPathDecoder({ onMessage: (m) => actor.send(m), maxBitmapBytes: (b) => bitmapBytes(b) });
 * socket.on('data', (chunk) => decoder.push(chunk));
 * socket.on('end', () => decoder.end());
 */
export class ReturnPathDecoder {
  private readonly onMessage: (message: ReturnPathMessage) => void;
  private readonly maxBitmapBytes: (block: string) => number | undefined;

  private readonly chunks: Uint8Array[] = [];
  private buffered = 0;

  private phase: Phase = Phase.HEADER;
  private needed = RP_HEADER_SIZE;
  private typeNumber = 0;
  private type: ReturnPathMessageType = 'shut';
  private bitmapBlock = '';
  private bitmap: Uint8Array = new Uint8Array(0);

  private failure: unknown;
  private failed = false;
  private ended = false;
  private bytes = 0;

  constructor(options: ReturnPathDecoderOptions) {
    this.onMessage = options.onMessage;
    this.maxBitmapBytes = options.maxBitmapBytes ?? (() => 0);
  }

  /** Bytes received so far. */
  get bytesDecoded(): number {
    return this.bytes;
  }

  push(chunk: Uint8Array): void {
    this.checkOpen();
    if (chunk.length === 0) return;
    this.chunks.push(chunk);
    this.buffered += chunk.length;
    this.bytes += chunk.length;
    try {
      while (this.buffered >= this.needed) this.fieldComplete(this.take(this.needed));
      // Keep no reference to the caller's chunk: transports may reuse it.
      const last = this.chunks.length - 1;
      if (this.chunks[last] !== undefined) this.chunks[last] = Uint8Array.prototype.slice.call(this.chunks[last]);
    } catch (error) {
      this.failed = true;
      this.failure = error;
      throw error;
    }
  }

  /** The return path closed: an error unless it closed between messages. */
  end(): void {
    this.checkOpen();
    this.ended = true;
    if (this.phase === Phase.HEADER && this.buffered === 0) return;
    const error = new ReturnPathError('TRUNCATED', this.truncation());
    this.failed = true;
    this.failure = error;
    throw error;
  }

  private truncation(): string {
    switch (this.phase) {
      case Phase.HEADER:
        return `Return path ended inside a message header (${this.buffered} of ${RP_HEADER_SIZE} bytes)`;
      case Phase.BODY:
        return `Failed reading data for message ${hex16(this.typeNumber)} read ${this.buffered} expected ${this.needed}`;
      default:
        return `Failed reading the received bitmap of block '${this.bitmapBlock}' read ${this.buffered} expected ${this.needed}`;
    }
  }

  private checkOpen(): void {
    if (this.failed) throw this.failure;
    if (this.ended) throw new ReturnPathError('DECODER_CLOSED', 'Return path already ended');
  }

  /** The next `n` buffered bytes: a view when one chunk holds them, else a copy. */
  private take(n: number): Uint8Array {
    this.buffered -= n;
    const head = this.chunks[0] as Uint8Array;
    if (head.length >= n) {
      if (head.length === n) this.chunks.shift();
      else this.chunks[0] = head.subarray(n);
      return head.subarray(0, n);
    }
    const out = new Uint8Array(n);
    let filled = 0;
    while (filled < n) {
      const chunk = this.chunks[0] as Uint8Array;
      const part = Math.min(chunk.length, n - filled);
      out.set(chunk.subarray(0, part), filled);
      filled += part;
      if (part === chunk.length) this.chunks.shift();
      else this.chunks[0] = chunk.subarray(part);
    }
    return out;
  }

  private expect(phase: Phase, needed: number): void {
    this.phase = phase;
    this.needed = needed;
  }

  private fieldComplete(field: Uint8Array): void {
    const view = new DataView(field.buffer, field.byteOffset, field.length);
    switch (this.phase) {
      case Phase.HEADER: {
        const number = view.getUint16(0);
        const length = view.getUint16(2);
        const type = TYPE_BY_NUMBER.get(number);
        if (type === undefined || length > RP_MAX_BODY) {
          throw new ReturnPathError('INVALID_MESSAGE', `Received invalid message ${hex16(number)} length ${hex16(length)}`);
        }
        if (length === 0) throw this.badMessage(number, type, 'the body is empty');
        this.typeNumber = number;
        this.type = type;
        this.expect(Phase.BODY, length);
        return;
      }
      case Phase.BODY:
        this.bodyComplete(field);
        return;
      case Phase.BITMAP_LENGTH: {
        const length = view.getUint32(0) * 2 ** 32 + view.getUint32(4);
        const max = this.maxBitmapBytes(this.bitmapBlock) ?? 0;
        if (length > max) {
          throw new ReturnPathError(
            'BAD_BITMAP',
            `RECV_BITMAP of block '${this.bitmapBlock}' is ${length} bytes, more than the ${max} allowed`,
          );
        }
        if (length === 0) {
          this.bitmap = new Uint8Array(0);
          this.expect(Phase.BITMAP_END, BITMAP_END_MARK_SIZE);
        } else {
          this.expect(Phase.BITMAP, length);
        }
        return;
      }
      case Phase.BITMAP:
        // Own the bytes: the chunk they came in may be reused by the transport
        // (Buffer's own slice() would not copy).
        this.bitmap = Uint8Array.prototype.slice.call(field);
        this.expect(Phase.BITMAP_END, BITMAP_END_MARK_SIZE);
        return;
      case Phase.BITMAP_END: {
        const mark = view.getBigUint64(0);
        if (mark !== RECV_BITMAP_END_MARK) {
          throw new ReturnPathError(
            'BAD_BITMAP',
            `RECV_BITMAP of block '${this.bitmapBlock}' has end marker 0x${mark.toString(16).padStart(16, '0')}, ` +
              `expected 0x${RECV_BITMAP_END_MARK.toString(16).padStart(16, '0')}`,
          );
        }
        this.expect(Phase.HEADER, RP_HEADER_SIZE);
        this.onMessage({ type: 'recv-bitmap', block: this.bitmapBlock, bitmap: this.bitmap });
        return;
      }
    }
  }

  private bodyComplete(field: Uint8Array): void {
    let body: unknown;
    try {
      body = unpackr.unpack(field);
    } catch (error) {
      const reason = error instanceof Error ? error.message.slice(0, 120) : String(error).slice(0, 120);
      throw this.badMessage(this.typeNumber, this.type, `the body is not valid msgpack: ${reason}`);
    }
    const problem = checkBody(this.type, body);
    if (problem) throw this.badMessage(this.typeNumber, this.type, problem);
    const message = { type: this.type, ...(body as object) } as ReturnPathMessage;
    if (message.type === 'recv-bitmap') {
      const block = message.block;
      if (this.maxBitmapBytes(block) === undefined) {
        throw new ReturnPathError('BAD_BITMAP', `MIG_RP_MSG_RECV_BITMAP has invalid block name '${block}'`);
      }
      this.bitmapBlock = block;
      this.expect(Phase.BITMAP_LENGTH, BITMAP_LENGTH_SIZE);
      return;
    }
    this.expect(Phase.HEADER, RP_HEADER_SIZE);
    this.onMessage(message);
  }

  private badMessage(number: number, type: ReturnPathMessageType, problem: string): ReturnPathError {
    return new ReturnPathError('BAD_MESSAGE', `Received '${RETURN_PATH_TYPES[type].qemuName}' message (${hex16(number)}) with a bad body: ${problem}`);
  }
}

function hex16(value: number): string {
  return `0x${value.toString(16).padStart(4, '0')}`;
}
