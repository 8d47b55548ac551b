/**
 * What crosses the thread boundary between the migration (main thread) and
 * its postcopy-preempt thread, on each side. Pages never cross: the threads
 * read and place them in the guest's SharedArrayBuffers; counters are
 * Float64 cells in a shared buffer (STAT_*).
 */
import type { RamBlockShared } from '../guest/ram-block.js';
import type { MigrationBitmapShared } from '../ram/migration-bitmap.js';
import type { ChannelAddress } from '../multifd/messages.js';
import type { TlsClient } from '../../protocols/tls/session.js';
import type { TlsServerData } from '../objects/migration-tls.js';

/** Counters, one Float64 cell each. */
export const STAT_BYTES = 0;
export const STAT_NORMAL_PAGES = 1;
export const STAT_ZERO_PAGES = 2;
export const STAT_REQUESTS = 3;
/** Source: bytes of guest memory given back (release-ram). */
export const STAT_RELEASED_BYTES = 4;
export const PREEMPT_STATS = 5;

/** The destination's thread, as started (workerData). */
export interface PreemptRecvData {
  /** Listen here: a host with port 0, or a unix path. */
  listen: { host: string } | { path: string };
  /** tls-creds set: the channel is TLS, its client checked as the main channel's is. */
  tls: TlsServerData | undefined;
  /** The guest's blocks in the guest's order (faults name them so). */
  blocks: RamBlockShared[];
  /** The guest's control block and vCPU count: the thread handles the faults. */
  ctrl: SharedArrayBuffer;
  smp: number;
  uuid: string | undefined;
  stats: SharedArrayBuffer;
}

export type ToPreemptRecv =
  /** The stream header's block order, as indexes of the guest's blocks. */
  | { type: 'layout'; order: number[] }
  /** POSTCOPY_LISTEN: faults become requests on the preempt connection from now on. */
  | { type: 'listen' }
  /** Postcopy is over or paused: no more requests. */
  | { type: 'stop' }
  | { type: 'close' };

export type FromPreemptRecv =
  | { type: 'listening'; port: number | undefined }
  | { type: 'connected' }
  /** A page request went out (for the trace). */
  | { type: 'requested'; message: 'req-pages' | 'req-pages-id' }
  /** The source ended the connection and every page on it is placed. */
  | { type: 'ended' }
  | { type: 'error'; message: string };

/** The source's thread, as started (workerData). */
export interface PreemptSendData {
  address: ChannelAddress;
  /** tls-creds set: the channel is TLS (the same settings as the main channel's). */
  tls: TlsClient | undefined;
  uuid: string | undefined;
  /** The guest's blocks in stream order (requests and frames name them so). */
  blocks: RamBlockShared[];
  stats: SharedArrayBuffer;
  /** The migration bitmap requested pages are taken from. */
  bitmap: MigrationBitmapShared;
  /** Requested pages that went already are sent again (not with release-ram: their memory may be gone). */
  resendSentPages: boolean;
  /** release-ram: a page's memory is given back once it is sent. */
  releaseRam: boolean;
  /** Int32 cells (CTRL_*). */
  ctrl: SharedArrayBuffer;
}

/** ctrl cell, set by the migration thread at the switch: page requests are refused before it. */
export const CTRL_POSTCOPY = 0;
export const PREEMPT_CTRL = 1;

export type ToPreemptSend =
  /** Every page has gone: write what is queued, end the connection, say `finished`. */
  | { type: 'finish' }
  | { type: 'close' };

export type FromPreemptSend =
  | { type: 'connected' }
  /** A page request was read and served (for the trace). */
  | { type: 'served'; message: 'req-pages' | 'req-pages-id' }
  | { type: 'finished' }
  /** After `finished`: the connection closed (the destination's end too), so every request it made has been read. */
  | { type: 'peer-closed' }
  | { type: 'error'; message: string };
