/**
 * Encoder of the main migration stream (encode only; decode.ts reads it).
 *
 * Hot path: encodePagesHeader runs once per page batch. It must never copy
 * or look at page bytes, nor allocate per page: the caller writes the header
 * it returns, then views of guest memory for the non-zero runs, in run order.
 */
import { Packr } from 'msgpackr';
import { writeRunDescriptors } from '../run-descriptors.js';
import {
  ChannelKind,
  FRAME_HEADER_SIZE,
  FrameType,
  HELLO_CHANNEL_COUNT_OFFSET,
  HELLO_CHANNEL_ID_OFFSET,
  HELLO_KIND_OFFSET,
  HELLO_MAGIC_OFFSET,
  HELLO_SIZE,
  HELLO_UUID_OFFSET,
  HELLO_VERSION_OFFSET,
  MAX_CONTROL_BODY,
  MAX_PAGE_DATA_PER_FRAME,
  MAX_PAGES_PER_FRAME,
  MAX_RUNS_PER_FRAME,
  PAGES_SUBHEADER_SIZE,
  RUN_DESCRIPTOR_SIZE,
  DEFAULT_PAGE_SIZE,
  STREAM_MAGIC,
  STREAM_VERSION,
} from './constants.js';
import { StreamError } from './errors.js';
import { checkStreamMessage, type StreamMessage } from './messages.js';
import type { ChannelHello, PageRun } from './types.js';
import { writeUuid } from './uuid.js';

// One packer for every control message. Its output is a view into a shared
// scratch buffer, so encodeControl copies it into the frame at once.
const packr = new Packr({ useRecords: false, variableMapSize: true });

const CHANNEL_KINDS: readonly number[] = Object.values(ChannelKind);

/**
 * The 32-byte hello that opens every connection.
 *
 * @example socket.write(encodeHello({ kind: ChannelKind.MULTIFD, channelId: 1, channelCount: 4, uuid }))
 */
export function encodeHello(hello: Omit<ChannelHello, 'version'>): Buffer {
  const { kind, channelId, channelCount, uuid } = hello;
  if (!CHANNEL_KINDS.includes(kind)) throw new StreamError('BAD_HELLO', `Unknown channel kind ${kind}`);
  if (!isUint(channelCount, 255) || channelCount < 1 || !isUint(channelId, channelCount - 1)) {
    throw new StreamError('BAD_HELLO', `Channel id ${channelId} of ${channelCount} is out of range (count 1-255, id below count)`);
  }
  const out = Buffer.alloc(HELLO_SIZE);
  out.writeUInt32BE(STREAM_MAGIC, HELLO_MAGIC_OFFSET);
  out.writeUInt16BE(STREAM_VERSION, HELLO_VERSION_OFFSET);
  out[HELLO_KIND_OFFSET] = kind;
  out[HELLO_CHANNEL_ID_OFFSET] = channelId;
  out[HELLO_CHANNEL_COUNT_OFFSET] = channelCount;
  try {
    writeUuid(out, HELLO_UUID_OFFSET, uuid);
  } catch (error) {
    throw new StreamError('BAD_HELLO', (error as Error).message);
  }
  return out;
}

/**
 * A whole CONTROL frame (header and msgpack body) for one message, checked
 * against its schema first.
 *
 * @example socket.write(encodeControl({ type: 'ping', value: 1 }))
 */
export function encodeControl(message: StreamMessage): Buffer {
  const check = checkStreamMessage(message);
  if (!check.ok) throw new StreamError(check.unknownType ? 'UNKNOWN_MESSAGE' : 'BAD_MESSAGE', `Cannot send ${check.problem}`);
  const body = packr.pack(message);
  if (body.length > MAX_CONTROL_BODY) {
    throw new StreamError(
      'FRAME_TOO_LARGE',
      `Control message '${message.type}' is ${body.length} bytes, more than the ${MAX_CONTROL_BODY} a frame may carry`,
    );
  }
  const frame = Buffer.allocUnsafe(FRAME_HEADER_SIZE + body.length);
  writeFrameHeader(frame, FrameType.CONTROL, body.length);
  frame.set(body, FRAME_HEADER_SIZE);
  return frame;
}

/**
 * The frame header, pages sub-header and run descriptors of a PAGES frame.
 * The caller writes it, then the bytes of each non-zero run (count × page
 * size, straight from guest memory) in run order.
 *
 * @example
 * socket.write(encodePagesHeader(0, [{ first: 16, count: 2, zero: false }, { first: 40, count: 8, zero: true }]));
 * socket.write(ram.subarray(16 * 4096, 18 * 4096));
 */
export function encodePagesHeader(blockIndex: number, runs: readonly PageRun[], pageSize = DEFAULT_PAGE_SIZE): Buffer {
  if (!isUint(blockIndex, 0xffff)) throw new StreamError('BAD_PAGES', `Block index ${blockIndex} does not fit in 16 bits`);
  if (runs.length < 1 || runs.length > MAX_RUNS_PER_FRAME) {
    throw new StreamError('BAD_PAGES', `A PAGES frame holds 1 to ${MAX_RUNS_PER_FRAME} runs, not ${runs.length}`);
  }
  const out = Buffer.allocUnsafe(FRAME_HEADER_SIZE + PAGES_SUBHEADER_SIZE + RUN_DESCRIPTOR_SIZE * runs.length);
  const { pages, dataPages } = writeRunDescriptors(out, FRAME_HEADER_SIZE + PAGES_SUBHEADER_SIZE, runs, blockIndex, badRun);
  if (pages > MAX_PAGES_PER_FRAME) {
    throw new StreamError('BAD_PAGES', `A PAGES frame holds at most ${MAX_PAGES_PER_FRAME} pages, not ${pages}`);
  }
  const dataBytes = dataPages * pageSize;
  if (dataBytes > MAX_PAGE_DATA_PER_FRAME) {
    throw new StreamError('FRAME_TOO_LARGE', `A PAGES frame carries at most ${MAX_PAGE_DATA_PER_FRAME} bytes of pages, not ${dataBytes}`);
  }
  writeFrameHeader(out, FrameType.PAGES, out.length - FRAME_HEADER_SIZE + dataBytes);
  out.writeUInt16BE(blockIndex, FRAME_HEADER_SIZE);
  out.writeUInt16BE(runs.length, FRAME_HEADER_SIZE + 2);
  out.writeUInt32BE(0, FRAME_HEADER_SIZE + 4);
  return out;
}

function writeFrameHeader(out: Buffer, type: FrameType, bodyLength: number): void {
  out[0] = type;
  out[1] = 0;
  out.writeUInt16BE(0, 2);
  out.writeUInt32BE(bodyLength, 4);
}

function badRun(message: string): StreamError {
  return new StreamError('BAD_PAGES', message);
}

function isUint(value: number, max: number): boolean {
  return Number.isInteger(value) && value >= 0 && value <= max;
}
