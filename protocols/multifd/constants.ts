/**
 * Wire constants of a multifd channel.
 *
 * A multifd connection opens with the 32-byte channel hello (kind MULTIFD,
 * channel id and count; protocols/hello), then carries packets.
 * Each packet is a 24-byte header (all integers big-endian):
 *
 * | offset | size | field                                                    |
 * | ------ | ---- | -------------------------------------------------------- |
 * | 0      | 4    | magic 0x11223344 (QEMU's MULTIFD_MAGIC)                  |
 * | 4      | 2    | version (1)                                              |
 * | 6      | 2    | flags: bit 0 SYNC, bits 1-3 compression, the rest zero   |
 * | 8      | 4    | packet number (per channel, 0, 1, 2, … without gaps)     |
 * | 12     | 4    | round: the dirty-sync round the packet belongs to; a     |
 * |        |      | SYNC packet carries the round it ends                    |
 * | 16     | 2    | block index                                              |
 * | 18     | 2    | run count (0 only for a SYNC packet without pages)       |
 * | 20     | 4    | data length                                              |
 *
 * then a batch of page runs as the main stream's PAGES frames carry them
 * (protocols/page-runs: one 8-byte descriptor per run), then `data length`
 * bytes: the non-zero runs' pages back to back, or one zlib / zstd stream of
 * exactly those bytes.
 * A packet without non-zero pages carries no data, compressed or not.
 *
 * The compression field says how this packet's own data travels: the
 * channel's `multifd-compression`, or none for the pages a compressing
 * sender found incompressible and sent raw (QEMU compresses every page and
 * refuses a packet whose field differs from its setting).
 */
import { MAX_PAGE_DATA_PER_BATCH, MAX_PAGES_PER_BATCH, MAX_RUNS_PER_BATCH } from '../page-runs/constants.js';

export const MULTIFD_MAGIC = 0x11223344;
export const MULTIFD_VERSION = 1;

export const PACKET_HEADER_SIZE = 24;
export const PACKET_MAGIC_OFFSET = 0;
export const PACKET_VERSION_OFFSET = 4;
export const PACKET_FLAGS_OFFSET = 6;
export const PACKET_NUMBER_OFFSET = 8;
export const PACKET_ROUND_OFFSET = 12;
export const PACKET_BLOCK_OFFSET = 16;
export const PACKET_RUN_COUNT_OFFSET = 18;
export const PACKET_DATA_LENGTH_OFFSET = 20;

/** The packet ends a dirty-sync round on this channel (QEMU's MULTIFD_FLAG_SYNC). */
export const FLAG_SYNC = 0x1;
export const FLAG_COMPRESSION_SHIFT = 1;
/** Bits 1-3: the compression method (COMPRESSION_METHODS). */
export const FLAG_COMPRESSION_MASK = 0xe;
export const FLAGS_KNOWN = FLAG_SYNC | FLAG_COMPRESSION_MASK;

/**
 * `multifd-compression` (QEMU's MultiFDCompression): how each packet's page
 * data travels. A method's index here is its value in the flags'
 * compression field, so zlib is 0x2 and zstd 0x4 as in QEMU.
 */
export const COMPRESSION_METHODS = ['none', 'zlib', 'zstd'] as const;
export type CompressionMethod = (typeof COMPRESSION_METHODS)[number];

/** The compression field's value for `method`; a RangeError for any other name. */
export function compressionCode(method: CompressionMethod): number {
  const code = COMPRESSION_METHODS.indexOf(method);
  if (code < 0) throw new RangeError(`Unknown multifd compression '${String(method)}'`);
  return code;
}

/** A packet is one batch of page runs. */
export const MAX_RUNS_PER_PACKET = MAX_RUNS_PER_BATCH;
export const MAX_PAGES_PER_PACKET = MAX_PAGES_PER_BATCH;
export const MAX_PAGE_DATA_PER_PACKET = MAX_PAGE_DATA_PER_BATCH;
/** Compressed data may exceed the raw pages by this much (incompressible input plus framing). */
export const COMPRESSION_SLACK = 64 * 1024;
/** The largest data length any packet may announce. */
export const MAX_DATA_LENGTH = MAX_PAGE_DATA_PER_PACKET + COMPRESSION_SLACK;

/** QEMU's `multifd-zlib-level` range. */
export const ZLIB_LEVEL_MAX = 9;
/** QEMU's `multifd-zstd-level` range. */
export const ZSTD_LEVEL_MAX = 20;
