/**
 * Incremental decoder of return-path messages (decode only).
 *
 * A pull decoder like the stream's and multifd's (protocols/pull-decoder):
 * `want()` says where the next bytes go, `commit(n)` says they arrived, and
 * `push()` copies a chunk through the two, so a caller may reuse its chunk.
 * Every length is checked against its limit when its header arrives, before
 * its bytes are read. Any error leaves the decoder failed: the return path
 * is bad.
 */
import { unpackBody } from '../message-schema/msgpack-body.js';
import { PullDecoder } from '../pull-decoder/pull-decoder.js';
import {
  BITMAP_END_MARK_SIZE,
  BITMAP_LENGTH_SIZE,
  RECV_BITMAP_END_MARK,
  RP_HEADER_SIZE,
  RP_MAX_BODY,
} from './constants.js';
import { ReturnPathError } from './errors.js';
import { checkBody, RETURN_PATH_TYPES, TYPE_BY_NUMBER, type ReturnPathMessage, type ReturnPathMessageType } from './messages.js';

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
export class ReturnPathDecoder extends PullDecoder {
  private readonly onMessage: (message: ReturnPathMessage) => void;
  private readonly maxBitmapBytes: (block: string) => number | undefined;
  /** The header, the bitmap's length and its end marker. */
  private readonly scratch = new Uint8Array(8);
  private readonly scratchView = new DataView(this.scratch.buffer);

  private phase: Phase = Phase.HEADER;
  /** The length of the field being read, for the truncation error. */
  private wantedLength = RP_HEADER_SIZE;
  private typeNumber = 0;
  private type: ReturnPathMessageType = 'shut';
  private bitmapBlock = '';
  private bitmap: Uint8Array = new Uint8Array(0);

  constructor(options: ReturnPathDecoderOptions) {
    super();
    this.onMessage = options.onMessage;
    this.maxBitmapBytes = options.maxBitmapBytes ?? (() => 0);
    this.expectPhase(Phase.HEADER, this.scratch, RP_HEADER_SIZE);
  }

  protected override nextView(): Uint8Array {
    throw new Error('the return path has no field without a buffer');
  }

  protected override committed(): void {}

  /** Between messages. */
  protected override atBoundary(): boolean {
    return this.phase === Phase.HEADER && this.filled === 0;
  }

  protected override truncated(): Error {
    return new ReturnPathError('TRUNCATED', this.truncation());
  }

  protected override closed(): Error {
    return new ReturnPathError('DECODER_CLOSED', 'Return path already ended');
  }

  private truncation(): string {
    switch (this.phase) {
      case Phase.HEADER:
        return `Return path ended inside a message header (${this.filled} of ${RP_HEADER_SIZE} bytes)`;
      case Phase.BODY:
        return `Failed reading data for message ${hex16(this.typeNumber)} read ${this.filled} expected ${this.wantedLength}`;
      default:
        return `Failed reading the received bitmap of block '${this.bitmapBlock}' read ${this.filled} expected ${this.wantedLength}`;
    }
  }

  private expectPhase(phase: Phase, target: Uint8Array, length: number): void {
    this.phase = phase;
    this.wantedLength = length;
    this.expect(target, length);
  }

  protected override fieldComplete(field: Uint8Array): void {
    const view = this.scratchView;
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
        // A body of its own: it is at most 512 bytes, and decoded values must not alias a reused buffer.
        this.expectPhase(Phase.BODY, new Uint8Array(length), length);
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
        this.bitmap = new Uint8Array(length);
        if (length === 0) this.expectPhase(Phase.BITMAP_END, this.scratch, BITMAP_END_MARK_SIZE);
        else this.expectPhase(Phase.BITMAP, this.bitmap, length);
        return;
      }
      case Phase.BITMAP:
        this.expectPhase(Phase.BITMAP_END, this.scratch, BITMAP_END_MARK_SIZE);
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
        this.expectPhase(Phase.HEADER, this.scratch, RP_HEADER_SIZE);
        this.onMessage({ type: 'recv-bitmap', block: this.bitmapBlock, bitmap: this.bitmap });
        return;
      }
    }
  }

  private bodyComplete(field: Uint8Array): void {
    let body: unknown;
    try {
      body = unpackBody(field);
    } catch (error) {
      throw this.badMessage(this.typeNumber, this.type, `the body is not valid msgpack: ${(error as Error).message}`);
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
      this.expectPhase(Phase.BITMAP_LENGTH, this.scratch, BITMAP_LENGTH_SIZE);
      return;
    }
    this.expectPhase(Phase.HEADER, this.scratch, RP_HEADER_SIZE);
    this.onMessage(message);
  }

  private badMessage(number: number, type: ReturnPathMessageType, problem: string): ReturnPathError {
    return new ReturnPathError('BAD_MESSAGE', `Received '${RETURN_PATH_TYPES[type].qemuName}' message (${hex16(number)}) with a bad body: ${problem}`);
  }
}

function hex16(value: number): string {
  return `0x${value.toString(16).padStart(4, '0')}`;
}
