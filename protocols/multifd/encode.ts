/**
 * Encoder of multifd packets (encode only; decode.ts reads them).
 *
 * Hot path: encodePacketHeader runs once per packet in a channel worker. It
 * must never look at page bytes nor allocate per page: the caller writes the
 * header it returns, then the packet's data (views of guest memory for the
 * non-zero runs in run order, or the one compressed stream).
 */
import { DEFAULT_PAGE_SIZE, RUN_DESCRIPTOR_SIZE } from '../page-runs/constants.js';
import { writeRunDescriptors } from '../page-runs/encode.js';
import {
  compressionCode,
  COMPRESSION_SLACK,
  type CompressionMethod,
  FLAG_COMPRESSION_SHIFT,
  FLAG_SYNC,
  MAX_PAGE_DATA_PER_PACKET,
  MAX_PAGES_PER_PACKET,
  MAX_RUNS_PER_PACKET,
  MULTIFD_MAGIC,
  MULTIFD_VERSION,
  PACKET_BLOCK_OFFSET,
  PACKET_DATA_LENGTH_OFFSET,
  PACKET_FLAGS_OFFSET,
  PACKET_HEADER_SIZE,
  PACKET_MAGIC_OFFSET,
  PACKET_NUMBER_OFFSET,
  PACKET_ROUND_OFFSET,
  PACKET_RUN_COUNT_OFFSET,
  PACKET_VERSION_OFFSET,
} from './constants.js';
import { MultifdError } from './errors.js';
import type { PacketHeader } from './types.js';

/**
 * The 24-byte packet header and the run descriptors, checked against the
 * packet limits; `dataLength` must match the runs (exactly for `none`, at
 * most the raw size plus 64 KiB when compressed, 0 without non-zero pages).
 *
 * @example
 * const runs = [{ first: 16, count: 2, zero: false }, { first: 40, count: 8, zero: true }];
 * socket.write(encodePacketHeader({ sync: false, compression: 'none', packetNumber: 7, round: 2, block: 0, runs, dataLength: 2 * 4096 }));
 * socket.write(ram.subarray(16 * 4096, 18 * 4096));
 */
export function encodePacketHeader(header: PacketHeader): Buffer {
  const { sync, compression, packetNumber, round, block, runs, dataLength } = header;
  const pageSize = header.pageSize ?? DEFAULT_PAGE_SIZE;
  const code = compressionCode(compression);
  if (!isUint(packetNumber, 0xffffffff)) throw new RangeError(`Packet number ${packetNumber} does not fit in 32 bits`);
  if (!isUint(round, 0xffffffff)) throw new RangeError(`Round ${round} does not fit in 32 bits`);
  if (!isUint(pageSize, MAX_PAGE_DATA_PER_PACKET) || pageSize < 1) throw new RangeError(`Bad page size ${pageSize}`);
  if (!isUint(block, 0xffff)) throw new MultifdError('BAD_BLOCK', `Block index ${block} does not fit in 16 bits`);
  if (runs.length > MAX_RUNS_PER_PACKET) {
    throw new MultifdError('TOO_LARGE', `A multifd packet holds at most ${MAX_RUNS_PER_PACKET} runs, not ${runs.length}`);
  }
  if (runs.length === 0 && !sync) throw new MultifdError('BAD_RUN', 'A multifd packet without pages must be a SYNC packet');
  if (runs.length === 0 && block !== 0) throw new MultifdError('BAD_BLOCK', `A multifd packet without pages names block 0, not ${block}`);

  const out = Buffer.allocUnsafe(PACKET_HEADER_SIZE + RUN_DESCRIPTOR_SIZE * runs.length);
  const { pages, dataPages } = writeRunDescriptors(out, PACKET_HEADER_SIZE, runs, block, badRun);
  if (pages > MAX_PAGES_PER_PACKET) {
    throw new MultifdError('TOO_LARGE', `A multifd packet holds at most ${MAX_PAGES_PER_PACKET} pages, not ${pages}`);
  }
  const raw = dataPages * pageSize;
  if (raw > MAX_PAGE_DATA_PER_PACKET) {
    throw new MultifdError('TOO_LARGE', `A multifd packet carries at most ${MAX_PAGE_DATA_PER_PACKET} bytes of pages, not ${raw}`);
  }
  const fits =
    raw === 0 || compression === 'none'
      ? dataLength === raw
      : isUint(dataLength, raw + COMPRESSION_SLACK) && dataLength >= 1;
  if (!fits) {
    throw new MultifdError(
      'BAD_LENGTH',
      `Data length ${dataLength} does not fit ${dataPages} pages of ${pageSize} bytes with compression ${compression}`,
    );
  }

  out.writeUInt32BE(MULTIFD_MAGIC, PACKET_MAGIC_OFFSET);
  out.writeUInt16BE(MULTIFD_VERSION, PACKET_VERSION_OFFSET);
  out.writeUInt16BE((sync ? FLAG_SYNC : 0) | (code << FLAG_COMPRESSION_SHIFT), PACKET_FLAGS_OFFSET);
  out.writeUInt32BE(packetNumber, PACKET_NUMBER_OFFSET);
  out.writeUInt32BE(round, PACKET_ROUND_OFFSET);
  out.writeUInt16BE(block, PACKET_BLOCK_OFFSET);
  out.writeUInt16BE(runs.length, PACKET_RUN_COUNT_OFFSET);
  out.writeUInt32BE(dataLength, PACKET_DATA_LENGTH_OFFSET);
  return out;
}

/**
 * A SYNC packet without pages: ends `round` on this channel.
 *
 * @example socket.write(encodeSyncPacket(channel.nextPacketNumber++, dirtySyncCount, 'zstd'))
 */
export function encodeSyncPacket(packetNumber: number, round: number, compression: CompressionMethod): Buffer {
  return encodePacketHeader({ sync: true, compression, packetNumber, round, block: 0, runs: [], dataLength: 0 });
}

function badRun(message: string): MultifdError {
  return new MultifdError('BAD_RUN', message);
}

function isUint(value: number, max: number): boolean {
  return Number.isInteger(value) && value >= 0 && value <= max;
}
