/**
 * What the source's return-path actor hands its owner: typed events, page
 * requests already checked against the guest. (The destination's end takes
 * protocols/return-path's ReturnPathMessage as they are.)
 */
import type { ColoReturnMessage, MultifdChannelsMessage, ReturnPathMessage } from '../../protocols/return-path/messages.js';

/** A postcopy page request, checked against the guest: `pages` pages of block `block` (stream order) from `firstPage`. */
export interface PageRequest {
  block: number;
  firstPage: number;
  pages: number;
}

/** The source's end hands these to the migration thread. */
export interface SourceReturnPathEvents {
  /** Every well-formed message, for the trace. */
  message: [ReturnPathMessage];
  pong: [value: number];
  'page-request': [PageRequest];
  'multifd-channels': [MultifdChannelsMessage];
  /** Where the destination's postcopy-preempt thread listens (tcp port; 0 for unix). */
  'preempt-channel': [port: number];
  /** Recovery: the destination's received bitmap of a block (bit i of byte k: page 8k+i). */
  'recv-bitmap': [block: string, bitmap: Uint8Array];
  'resume-ack': [value: number];
  /** SWITCHOVER_ACK: the destination's devices are ready for the switchover. */
  'switchover-ack': [];
  /** COLO: a checkpoint step from the secondary, told in the order of the path (coloMessage() takes them in turn). */
  colo: [ColoReturnMessage];
  /** COLO: the secondary guest's output packets (16 bytes each), for colo-compare. */
  'colo-packets': [Uint8Array];
  /** The path went bad: malformed input, a destination's error SHUT, or an end before SHUT. */
  bad: [Error];
}
