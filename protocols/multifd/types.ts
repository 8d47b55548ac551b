import type { PageRun } from '../page-runs/types.js';
import type { CompressionMethod } from './constants.js';

/** The fields of a packet header, as encodePacketHeader takes them. */
export interface PacketHeader {
  /** Ends the round `round` on this channel (after its pages, if any). */
  sync: boolean;
  compression: CompressionMethod;
  /** 0 for the channel's first packet, then +1 each packet. */
  packetNumber: number;
  round: number;
  /** Block index; 0 when there are no runs. */
  block: number;
  /** At least one, except in a SYNC packet without pages. */
  runs: readonly PageRun[];
  /** Bytes following the descriptors: raw page bytes, or the compressed stream. */
  dataLength: number;
  /** Target page size, to check `dataLength` against the runs; default 4096. */
  pageSize?: number;
}

/** What a decoded packet held, for counters and traces; reported once its pages are in place. */
export interface PacketInfo {
  packetNumber: number;
  round: number;
  sync: boolean;
  block: number;
  runs: number;
  /** Pages that carried bytes. */
  pages: number;
  zeroPages: number;
  /** Bytes on the wire for this packet: header, descriptors and data. */
  wireBytes: number;
}
