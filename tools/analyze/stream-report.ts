/**
 * What `livemig analyze` found in a stream: the sections in the order a
 * reader meets them, each filled in as far as the stream was read (a
 * report with an `error` still holds everything before it).
 */
import { ChannelKind } from '../../protocols/hello/constants.js';
import type { ChannelHello } from '../../protocols/hello/types.js';
import type { HeaderMessage } from '../../protocols/stream/messages.js';
import type { AnalyzeError } from './analyze-error.js';
import type { CommandEntry } from './command-log.js';
import type { PageCounts } from './page-counter.js';

/** The channel kinds of the hello, by the names the report gives them. */
export const CHANNEL_KIND_NAMES: Readonly<Record<number, string>> = {
  [ChannelKind.MAIN]: 'main',
  [ChannelKind.MULTIFD]: 'multifd',
  [ChannelKind.POSTCOPY_PREEMPT]: 'postcopy-preempt',
};

export interface BlockReport extends PageCounts {
  /** Index in the stream header: how PAGES frames name the block. */
  index: number;
  name: string;
  size: number;
  pageCount: number;
}

export interface DeviceReport {
  name: string;
  instance: number;
  /** As the stream header lists it; undefined for a state the header did not announce. */
  headerVersion?: number;
  /** Of the last state sent. */
  version?: number;
  /** Bytes of the last state sent. */
  size?: number;
  /** States sent (more than one with COLO checkpoints); 0 when only the header names it. */
  count: number;
  /** Of those, states inside the postcopy package. */
  packaged: number;
  /** Where the first state's frame starts. */
  offset?: number;
}

export interface StreamReport {
  /** The file read ('-': standard input), and where the stream starts in it (file:PATH,offset=N). */
  file: string;
  start: number;
  /** The file's size, when it is a file. */
  fileSize?: number;
  /** Bytes of stream read (from `start`). */
  bytes: number;
  hello?: ChannelHello & { offset: number };
  header?: Omit<HeaderMessage, 'type' | 'blocks' | 'devices'> & { offset: number };
  blocks: BlockReport[];
  devices: DeviceReport[];
  /** Device states of names and instances past the most listed (a hostile stream's), counted only. */
  devicesUnlisted: number;
  /** Whole frames read, and of them those of pages (PAGES and XBZRLE frames). */
  frames: number;
  pagesFrames: number;
  commands: CommandEntry[];
  /** Command entries past the most listed (command-log.ts), counted in `commandTotals` only. */
  commandsUnlisted: number;
  /** Each command's total, in order of first appearance. */
  commandTotals: Record<string, number>;
  /** Where the postcopy package starts, if the stream has one (pages after it are postcopy's). */
  packageOffset?: number;
  /** Where the EOF frame starts; undefined when the stream has none. */
  eofOffset?: number;
  /** Frames after the EOF (COLO checkpoints follow it on the same stream). */
  framesAfterEof: number;
  error?: AnalyzeError;
}
