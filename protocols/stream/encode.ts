/**
 * Encoder of the main migration stream's frames (encode only; decode.ts
 * reads them). The channel hello before them is protocols/hello's.
 *
 * Hot path: encodePagesHeader runs once per page batch. It must never copy
 * or look at page bytes, nor allocate per page: the caller writes the header
 * it returns, then views of guest memory for the non-zero runs, in run order.
 */
import { Packr } from 'msgpackr';
import { DEFAULT_PAGE_SIZE, RUN_DESCRIPTOR_SIZE } from '../page-runs/constants.js';
import { writeRunDescriptors } from '../page-runs/encode.js';
import type { PageRun } from '../page-runs/types.js';
import {
  FRAME_HEADER_SIZE,
  FrameType,
  MAX_CONTROL_BODY,
  MAX_PAGE_DATA_PER_FRAME,
  MAX_PAGES_PER_FRAME,
  MAX_RUNS_PER_FRAME,
  MAX_XBZRLE_PAGES_PER_FRAME,
  PAGES_SUBHEADER_SIZE,
  XBZRLE_PAGE_HEADER_SIZE,
  XBZRLE_SUBHEADER_SIZE,
} from './constants.js';
import { StreamError } from './errors.js';
import { checkStreamMessage, type StreamMessage } from './messages.js';

// One packer for every control message. Its output is a view into a shared
// scratch buffer, so encodeControl copies it into the frame at once.
const packr = new Packr({ useRecords: false, variableMapSize: true });

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

/** Bytes before an XBZRLE frame's first page: the frame header and the sub-header. */
export const XBZRLE_HEADER_SIZE = FRAME_HEADER_SIZE + XBZRLE_SUBHEADER_SIZE;

/**
 * An XBZRLE frame is built in place in one buffer: the caller leaves
 * XBZRLE_HEADER_SIZE bytes, writes each page with writeXbzrlePageHeader and
 * its delta, then fills the start with writeXbzrleHeader.
 *
 * @example
 * let at = XBZRLE_HEADER_SIZE;
 * at = writeXbzrlePageHeader(frame, at, 7, n); frame.set(delta.subarray(0, n), at); at += n;
 * writeXbzrleHeader(frame, 0, 1, at - XBZRLE_HEADER_SIZE);
 */
export function writeXbzrleHeader(out: Buffer, blockIndex: number, pageCount: number, pagesBytes: number): void {
  if (!isUint(blockIndex, 0xffff)) throw new StreamError('BAD_XBZRLE', `Block index ${blockIndex} does not fit in 16 bits`);
  if (pageCount < 1 || pageCount > MAX_XBZRLE_PAGES_PER_FRAME) {
    throw new StreamError('BAD_XBZRLE', `An XBZRLE frame holds 1 to ${MAX_XBZRLE_PAGES_PER_FRAME} pages, not ${pageCount}`);
  }
  writeFrameHeader(out, FrameType.XBZRLE, XBZRLE_SUBHEADER_SIZE + pagesBytes);
  out.writeUInt16BE(blockIndex, FRAME_HEADER_SIZE);
  out.writeUInt16BE(pageCount, FRAME_HEADER_SIZE + 2);
  out.writeUInt32BE(0, FRAME_HEADER_SIZE + 4);
}

/** Writes the header of a page whose `length`-byte delta follows; returns where the delta goes. */
export function writeXbzrlePageHeader(out: Buffer, at: number, page: number, length: number): number {
  out.writeUInt32BE(page, at);
  out.writeUInt16BE(length, at + 4);
  return at + XBZRLE_PAGE_HEADER_SIZE;
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
