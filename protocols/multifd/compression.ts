/**
 * Page compression for multifd packets: zlib (node:zlib, zlib format) and
 * zstd (zstd-napi: the native library, one context per thread, reused).
 *
 * Decompression reads hostile bytes, so its output is bounded by the size the
 * packet's runs need before any of it is produced: zlib output is capped at
 * that size, and a zstd frame must declare exactly that content size and is
 * decompressed into a buffer of exactly that size.
 *
 * Hot path: one call per packet in a channel worker, never one per page. A
 * packet whose data is one view (a run of consecutive pages) goes to the
 * compressor straight from guest memory; several views are joined first, in
 * a buffer reused across calls. The only allocation is the result.
 */
import { createRequire } from 'node:module';
import { deflateSync, inflateSync } from 'node:zlib';
import type * as ZstdBinding from 'zstd-napi/binding.js';
import { ZLIB_LEVEL_MAX, ZSTD_LEVEL_MAX, type CompressionMethod } from './constants.js';
import { MultifdError } from './errors.js';

/** The methods that compress; `none` never reaches this module. */
export type Compressor = Exclude<CompressionMethod, 'none'>;

type Zstd = typeof ZstdBinding;

/** The addon, its contexts, or why it could not be loaded: loaded once per thread, on first use. */
let zstd: { binding: Zstd; cctx: ZstdBinding.CCtx; dctx: ZstdBinding.DCtx } | { error: string } | undefined;

/** The concatenation of several views, reused across calls (compression runs one packet at a time per thread). */
let joined = new Uint8Array(0);

function loadZstd(): { binding: Zstd; cctx: ZstdBinding.CCtx; dctx: ZstdBinding.DCtx } {
  if (zstd === undefined) {
    try {
      const binding = createRequire(import.meta.url)('zstd-napi/binding.js') as Zstd;
      zstd = { binding, cctx: new binding.CCtx(), dctx: new binding.DCtx() };
    } catch (error) {
      zstd = { error: `the zstd-napi addon did not load (${reason(error)}); npm ci builds it with node-gyp, which needs python3, make and a C compiler` };
    }
  }
  if ('error' in zstd) throw new Error(`zstd compression is not available: ${zstd.error}`);
  return zstd;
}

/**
 * Why `method` cannot be used in this process, or undefined when it can
 * (zstd needs the native addon that `npm ci` builds; zlib is Node's own).
 */
export function unavailable(method: CompressionMethod): string | undefined {
  if (method !== 'zstd') return undefined;
  try {
    loadZstd();
    return undefined;
  } catch (error) {
    return (error as Error).message;
  }
}

/** Throws, saying why, unless `method` can be used in this process. */
export function checkAvailable(method: CompressionMethod): void {
  if (method === 'zstd') loadZstd();
}

/**
 * Compresses the concatenation of `views` (the non-zero runs' pages, in run
 * order) into one zlib or zstd stream. `level` is `multifd-zlib-level`
 * (0-9) or `multifd-zstd-level` (0-20).
 */
export function compressPages(method: Compressor, level: number, views: readonly Uint8Array[]): Uint8Array {
  const max = method === 'zlib' ? ZLIB_LEVEL_MAX : ZSTD_LEVEL_MAX;
  if (!Number.isInteger(level) || level < 0 || level > max) throw new RangeError(`${method} level ${level} is out of range (0 to ${max})`);
  const input = views.length === 1 ? (views[0] as Uint8Array) : join(views);
  if (method === 'zlib') return deflateSync(input, { level });
  const { binding, cctx } = loadZstd();
  const out = Buffer.allocUnsafe(binding.compressBound(input.length));
  // compress2 writes the content size into the frame header, which the destination requires.
  cctx.setParameter(binding.CParameter.compressionLevel, level);
  return out.subarray(0, cctx.compress2(out, input));
}

/**
 * Decompresses `data` into `out`, which must come out exactly full; throws a
 * MultifdError (DECOMPRESS_FAILED) for corrupt data, trailing bytes or any
 * other size. Messages follow QEMU's "packet size received N size expected M".
 */
export function decompressInto(method: Compressor, data: Uint8Array, out: Uint8Array): void {
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
  const { binding, dctx } = loadZstd();
  let declared: number | null;
  try {
    declared = binding.getFrameContentSize(data);
  } catch {
    declared = null;
  }
  if (declared === null) throw new MultifdError('DECOMPRESS_FAILED', 'zstd data does not start with a frame that declares its size');
  if (declared !== out.length) throw sizeError(String(declared), out.length);
  let written: number;
  try {
    const frame = binding.findFrameCompressedSize(data);
    if (frame !== data.length) throw new MultifdError('DECOMPRESS_FAILED', `zstd frame ends after ${frame} of ${data.length} data bytes`);
    // Never more than out holds, whatever the frame says.
    written = dctx.decompress(out, data);
  } catch (error) {
    if (error instanceof MultifdError) throw error;
    throw new MultifdError('DECOMPRESS_FAILED', `zstd data is corrupt (${reason(error)})`);
  }
  if (written !== out.length) throw sizeError(String(written), out.length);
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
