/**
 * Page compression for multifd packets: zlib (node:zlib, zlib format) and
 * zstd (@bokuweb/zstd-wasm, one WebAssembly instance per thread).
 *
 * Decompression reads hostile bytes, so its output is bounded by the size the
 * packet's runs need before any of it is produced: zlib output is capped at
 * that size, and a zstd frame must declare exactly that content size before
 * the library reserves memory for it (it trusts the declared size).
 *
 * Hot path: one call per packet in a channel worker, never one per page; the
 * concatenation buffer is reused, so the only allocations are the results.
 */
import { compress, decompress, init } from '@bokuweb/zstd-wasm';
import { deflateSync, inflateSync } from 'node:zlib';
import { ZLIB_LEVEL_MAX, ZSTD_LEVEL_MAX, type CompressionMethod } from './constants.js';
import { MultifdError } from './errors.js';

/** The methods that compress; `none` never reaches this module. */
export type Compressor = Exclude<CompressionMethod, 'none'>;

const ZSTD_FRAME_MAGIC = 0xfd2fb528;

let zstdLoading: Promise<void> | undefined;
let zstdLoaded = false;
/** The concatenation of several views, reused across calls (compression runs one packet at a time per thread). */
let joined = new Uint8Array(0);

/**
 * Loads the zstd WebAssembly module for this thread; await it once before
 * using zstd here. zlib needs nothing.
 *
 * @example await ready(); const packed = compressPages('zstd', 1, [page]);
 */
export function ready(): Promise<void> {
  zstdLoading ??= init().then(
    () => {
      zstdLoaded = true;
    },
    (error: unknown) => {
      zstdLoading = undefined;
      throw error;
    },
  );
  return zstdLoading;
}

/** Throws unless `method` can be used on this thread now (zstd needs `ready()` first). */
export function checkReady(method: CompressionMethod): void {
  if (method === 'zstd' && !zstdLoaded) throw new Error('zstd is not loaded on this thread: await ready() first');
}

/**
 * Compresses the concatenation of `views` (the non-zero runs' pages, in run
 * order) into one zlib or zstd stream. `level` is `multifd-zlib-level`
 * (0-9) or `multifd-zstd-level` (0-20).
 */
export function compressPages(method: Compressor, level: number, views: readonly Uint8Array[]): Uint8Array {
  const max = method === 'zlib' ? ZLIB_LEVEL_MAX : ZSTD_LEVEL_MAX;
  if (!Number.isInteger(level) || level < 0 || level > max) throw new RangeError(`${method} level ${level} is out of range (0 to ${max})`);
  checkReady(method);
  const input = views.length === 1 ? (views[0] as Uint8Array) : join(views);
  return method === 'zlib' ? deflateSync(input, { level }) : compress(input, level);
}

/**
 * Decompresses `data` into `out`, which must come out exactly full; throws a
 * MultifdError (DECOMPRESS_FAILED) for corrupt data, trailing bytes or any
 * other size. Messages follow QEMU's "packet size received N size expected M".
 */
export function decompressInto(method: Compressor, data: Uint8Array, out: Uint8Array): void {
  checkReady(method);
  if (method === 'zlib') inflateInto(data, out);
  else zstdInto(data, out);
}

function inflateInto(data: Uint8Array, out: Uint8Array): void {
  let result: { buffer: Buffer; engine: { bytesWritten: number } };
  try {
    // One output chunk a byte larger than needed: a stream that fits is returned without a concat.
    const limit = Math.max(out.length, 1);
    result = inflateSync(data, { info: true, maxOutputLength: limit, chunkSize: Math.max(limit + 1, 64) }) as unknown as typeof result;
  } catch (error) {
    if ((error as { code?: unknown }).code === 'ERR_BUFFER_TOO_LARGE') throw sizeError(`more than ${out.length}`, out.length);
    throw new MultifdError('DECOMPRESS_FAILED', `zlib data is corrupt (${reason(error)})`);
  }
  if (result.buffer.length !== out.length) throw sizeError(String(result.buffer.length), out.length);
  if (result.engine.bytesWritten !== data.length) {
    throw new MultifdError('DECOMPRESS_FAILED', `zlib stream ends after ${result.engine.bytesWritten} of ${data.length} data bytes`);
  }
  out.set(result.buffer);
}

function zstdInto(data: Uint8Array, out: Uint8Array): void {
  const declared = zstdContentSize(data);
  if (declared === undefined) throw new MultifdError('DECOMPRESS_FAILED', 'zstd data does not start with a frame that declares its size');
  if (declared !== out.length) throw sizeError(String(declared), out.length);
  let result: Uint8Array;
  try {
    result = decompress(data);
  } catch (error) {
    throw new MultifdError('DECOMPRESS_FAILED', `zstd data is corrupt (${reason(error)})`);
  }
  if (result.length !== out.length) throw sizeError(String(result.length), out.length);
  out.set(result);
}

/** The content size a zstd frame header declares; undefined when it is not a frame or declares none. */
function zstdContentSize(data: Uint8Array): number | undefined {
  if (data.length < 5) return undefined;
  const view = new DataView(data.buffer, data.byteOffset, data.length);
  if (view.getUint32(0, true) !== ZSTD_FRAME_MAGIC) return undefined;
  const descriptor = view.getUint8(4);
  const singleSegment = (descriptor >> 5) & 1;
  const sizeFlag = descriptor >> 6;
  // Field sizes by flag: dictionary id 0, 1, 2, 4 bytes; content size 0 (1 in a single segment), 2, 4, 8.
  const dictionaryIdFlag = descriptor & 3;
  const at = 5 + (singleSegment ? 0 : 1) + (dictionaryIdFlag === 3 ? 4 : dictionaryIdFlag);
  const bytes = sizeFlag === 0 ? singleSegment : 1 << sizeFlag;
  if (bytes === 0 || data.length < at + bytes) return undefined;
  switch (bytes) {
    case 1:
      return view.getUint8(at);
    case 2:
      return view.getUint16(at, true) + 256;
    case 4:
      return view.getUint32(at, true);
    default:
      return view.getUint32(at + 4, true) * 2 ** 32 + view.getUint32(at, true);
  }
}

function join(views: readonly Uint8Array[]): Uint8Array {
  let total = 0;
  for (const view of views) total += view.length;
  if (joined.length < total) joined = new Uint8Array(total);
  let at = 0;
  for (const view of views) {
    joined.set(view, at);
    at += view.length;
  }
  return joined.subarray(0, total);
}

function sizeError(received: string, expected: number): MultifdError {
  return new MultifdError('DECOMPRESS_FAILED', `packet size received ${received} size expected ${expected}`);
}

function reason(error: unknown): string {
  return (error instanceof Error ? error.message : String(error)).slice(0, 120);
}
