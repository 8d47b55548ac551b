/**
 * The messages that cross the thread boundary between the migration (main
 * thread) and its multifd channel workers. Page data never crosses: workers
 * read pages straight from the guest's SharedArrayBuffers.
 */
import type { MessagePort } from 'node:worker_threads';
import type { RamBlockShared } from '../guest/ram-block.js';
import type { CompressionMethod } from '../../protocols/multifd/constants.js';
import type { TlsClient } from '../../protocols/tls/session.js';
import type { TlsServerData } from '../objects/migration-tls.js';


/** Where a channel connects: a tcp port on the main channel's host, or a unix socket path. */
export type ChannelAddress = { host: string; port: number } | { path: string };

/** The long-lived task each source channel runs, for the whole migration (a worker may run several: channel-threads.ts). */
export interface SendChannelTask {
  index: number;
  count: number;
  address: ChannelAddress;
  /** tls-creds set: the channel is TLS (the same settings as the main channel's). */
  tls: TlsClient | undefined;
  uuid: string | undefined;
  blocks: RamBlockShared[];
  compression: CompressionMethod;
  level: number;
  /** Main → worker: ToSendChannel; worker → main: FromSendChannel. */
  control: MessagePort;
  /** Float64 counters, CHANNEL_STATS per channel (see STAT_*). */
  stats: SharedArrayBuffer;
}

export type ToSendChannel =
  /** Pages of one dirty-sync round: flat (first, count) pairs of one block. */
  | { type: 'pages'; block: number; round: number; ranges: Uint32Array }
  /** End the round on this channel: a SYNC packet. */
  | { type: 'sync'; round: number }
  | { type: 'end' };

export type FromSendChannel =
  /** `tid`: the worker's OS thread id (query-migrationthreads); `threadId`: Node's id of it (which pool thread hosts the channel). */
  | { type: 'connected'; tid: number; threadId: number }
  /** A pages message has been written (the socket took it). */
  | { type: 'sent' }
  | { type: 'synced'; round: number };

/** What a destination channel becomes (its `start` message). */
export interface RecvChannelData {
  index: number;
  count: number;
  /** Listen here: a host with port 0, or a unix path. */
  listen: { host: string } | { path: string };
  /** tls-creds set: the channel is TLS, its client checked as the main channel's is. */
  tls: TlsServerData | undefined;
  blocks: RamBlockShared[];
  compression: CompressionMethod;
  uuid: string | undefined;
  stats: SharedArrayBuffer;
}

/**
 * To a destination channel thread: host channel `data.index`, talking over
 * `control` (main → channel: ToRecvChannel; channel → main: FromRecvChannel).
 */
export interface StartRecvChannel {
  type: 'start';
  data: RecvChannelData;
  control: MessagePort;
}

export type ToRecvChannel =
  /** The stream header's block order, as indexes of the destination's blocks. */
  | { type: 'layout'; order: number[] }
  /** Every channel has reached the SYNC of `round`: read on. */
  | { type: 'proceed'; round: number }
  | { type: 'close' };

export type FromRecvChannel =
  /** The channel listens, on this tcp port (none for unix); `tid`: its thread's OS id. */
  | { type: 'listening'; port: number | undefined; tid: number }
  | { type: 'connected' }
  | { type: 'synced'; round: number }
  | { type: 'error'; message: string };

export const STAT_BYTES = 0;
export const STAT_NORMAL_PAGES = 1;
export const STAT_ZERO_PAGES = 2;
export const STAT_PACKETS = 3;
/** Source, compressing: pages that went through the compressor, and the bytes their compressed data took. */
export const STAT_COMPRESSED_PAGES = 4;
export const STAT_COMPRESSED_BYTES = 5;
/** Source, compressing: data pages sent raw because they would not shrink (IncompressiblePageCheck). */
export const STAT_RAW_PAGES = 6;
export const CHANNEL_STATS = 7;

/** Sums one counter over every channel. */
export function sumStat(stats: Float64Array, stat: number): number {
  let n = 0;
  for (let i = stat; i < stats.length; i += CHANNEL_STATS) n += stats[i]!;
  return n;
}
