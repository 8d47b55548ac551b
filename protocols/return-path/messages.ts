/**
 * Return-path messages (destination → source), one schema per type. The
 * frame carries the type number; the msgpack body holds the other fields.
 */
import { bytes, checkFields, listOf, oneOf, optional, text, uint, U16_MAX, U32_MAX, type Fields } from '../message-schema/schema.js';
import { ReturnPathType } from './constants.js';

/** The destination will send no more (0: clean end; otherwise its error). */
export interface ShutMessage {
  type: 'shut';
  status: number;
  /** livemig: the destination's load error, so the source can say why (QEMU sends only the status). */
  error?: string;
}

/** Answer to the stream's PING with the same value. */
export interface PongMessage {
  type: 'pong';
  value: number;
}

/** Postcopy page request naming its block; later REQ_PAGES refer to it. */
export interface ReqPagesIdMessage {
  type: 'req-pages-id';
  block: string;
  /** Byte offset in the block. */
  start: number;
  /** Bytes requested. */
  len: number;
}

/** Postcopy page request in the block of the last REQ_PAGES_ID. */
export interface ReqPagesMessage {
  type: 'req-pages';
  start: number;
  len: number;
}

/** The destination's received bitmap of `block`, for postcopy recovery. */
export interface RecvBitmapMessage {
  type: 'recv-bitmap';
  block: string;
  bitmap: Uint8Array;
}

/** The destination is ready to resume a recovered postcopy (value 1). */
export interface ResumeAckMessage {
  type: 'resume-ack';
  value: number;
}

/** The destination allows the switchover (capability switchover-ack). */
export interface SwitchoverAckMessage {
  type: 'switchover-ack';
}

/**
 * livemig: the tcp ports of multifd channels first..first+ports.length-1,
 * in messages of up to 64 (0 for unix channels, whose paths derive from the
 * main channel's).
 */
export interface MultifdChannelsMessage {
  type: 'multifd-channels';
  first: number;
  count: number;
  ports: number[];
}

/**
 * livemig: the tcp port the postcopy-preempt channel connects to (0 for a
 * unix channel, whose path derives from the main channel's).
 */
export interface PreemptChannelMessage {
  type: 'preempt-channel';
  port: number;
}

/** QEMU's COLOMessage values the secondary sends back. */
export const COLO_RETURN_MESSAGES = ['checkpoint-ready', 'checkpoint-reply', 'vmstate-received', 'vmstate-loaded'] as const;
export type ColoReturnMessage = (typeof COLO_RETURN_MESSAGES)[number];

/** A COLO checkpoint step from the secondary. */
export interface ColoReturnPathMessage {
  type: 'colo';
  message: ColoReturnMessage;
}

/**
 * livemig: the secondary's output packets (16 bytes each), for the
 * primary's colo-compare (QEMU carries them on a socket of their own).
 */
export interface ColoPacketsMessage {
  type: 'colo-packets';
  packets: Uint8Array;
}

export type ReturnPathMessage =
  | ShutMessage
  | PongMessage
  | ReqPagesIdMessage
  | ReqPagesMessage
  | RecvBitmapMessage
  | ResumeAckMessage
  | SwitchoverAckMessage
  | MultifdChannelsMessage
  | PreemptChannelMessage
  | ColoReturnPathMessage
  | ColoPacketsMessage;

export type ReturnPathMessageType = ReturnPathMessage['type'];

/** Byte offsets within a RAM block (blocks are at most 2^48 bytes). */
const offset = uint(2 ** 48);

interface TypeInfo {
  number: ReturnPathType;
  /** QEMU's name, for error messages. */
  qemuName: string;
  /** Fields of the msgpack body; the bitmap of RECV_BITMAP travels after it. */
  body: Fields;
}

export const RETURN_PATH_TYPES: { readonly [T in ReturnPathMessageType]: TypeInfo } = {
  shut: { number: ReturnPathType.SHUT, qemuName: 'SHUT', body: { status: uint(U32_MAX), error: optional(text(400)) } },
  pong: { number: ReturnPathType.PONG, qemuName: 'PONG', body: { value: uint(U32_MAX) } },
  'req-pages-id': {
    number: ReturnPathType.REQ_PAGES_ID,
    qemuName: 'REQ_PAGES_ID',
    body: { block: text(255), start: offset, len: uint(U32_MAX) },
  },
  'req-pages': { number: ReturnPathType.REQ_PAGES, qemuName: 'REQ_PAGES', body: { start: offset, len: uint(U32_MAX) } },
  'recv-bitmap': { number: ReturnPathType.RECV_BITMAP, qemuName: 'RECV_BITMAP', body: { block: text(255) } },
  'resume-ack': { number: ReturnPathType.RESUME_ACK, qemuName: 'RESUME_ACK', body: { value: uint(U32_MAX) } },
  'switchover-ack': { number: ReturnPathType.SWITCHOVER_ACK, qemuName: 'SWITCHOVER_ACK', body: {} },
  'multifd-channels': {
    number: ReturnPathType.MULTIFD_CHANNELS,
    qemuName: 'MULTIFD_CHANNELS',
    body: { first: uint(255), count: uint(255), ports: listOf(uint(U16_MAX), 64) },
  },
  'preempt-channel': { number: ReturnPathType.PREEMPT_CHANNEL, qemuName: 'PREEMPT_CHANNEL', body: { port: uint(U16_MAX) } },
  colo: { number: ReturnPathType.COLO_MESSAGE, qemuName: 'COLO_MESSAGE', body: { message: oneOf(COLO_RETURN_MESSAGES) } },
  'colo-packets': { number: ReturnPathType.COLO_PACKETS, qemuName: 'COLO_PACKETS', body: { packets: bytes() } },
};

/** Message type by wire number. */
export const TYPE_BY_NUMBER: ReadonlyMap<number, ReturnPathMessageType> = new Map(
  Object.entries(RETURN_PATH_TYPES).map(([type, info]) => [info.number, type as ReturnPathMessageType]),
);

/** Checks a decoded body against its type's schema; a description of the problem, or undefined. */
export function checkBody(type: ReturnPathMessageType, body: unknown): string | undefined {
  return checkFields(body, RETURN_PATH_TYPES[type].body);
}

/**
 * How the visualizer's trace names a message: its type, COLO steps with
 * their step; undefined for the secondary's output packets, which are
 * data (as pages are) and would drown every other message.
 */
export function traceLabel(message: ReturnPathMessage): string | undefined {
  if (message.type === 'colo-packets') return undefined;
  return message.type === 'colo' ? `colo ${message.message}` : message.type;
}
