/**
 * The control messages of the main stream: one msgpack map per CONTROL
 * frame, told apart by its `type`, each checked against its own schema when
 * decoded (and when encoded, so a source never sends what a destination
 * would refuse).
 */
import { UUID_TEXT } from '../hello/uuid.js';
import {
  bytes, checkFields, listOf, mapOf, oneOf, optional, text, uint, U16_MAX, U32_MAX, type Fields,
} from '../message-schema/schema.js';

/** QEMU's RunState values (8.2). */
export const RUN_STATES = [
  'debug',
  'inmigrate',
  'internal-error',
  'io-error',
  'paused',
  'postmigrate',
  'prelaunch',
  'finish-migrate',
  'restore-vm',
  'running',
  'save-vm',
  'shutdown',
  'suspended',
  'watchdog',
  'guest-panicked',
  'colo',
] as const;
export type RunState = (typeof RUN_STATES)[number];

/** Describes the guest: the destination checks it against its own before any page lands. */
export interface HeaderMessage {
  type: 'header';
  pageSize: number;
  /** RAM blocks in stream order; PAGES frames name a block by its index here. */
  blocks: { name: string; size: number }[];
  vcpus: number;
  devices: { name: string; instance: number; version: number }[];
  /** The source guest's UUID, for `validate-uuid`. */
  uuid?: string;
  /** The source's run state when the header was sent. */
  runState: RunState;
  capabilities: string[];
}

/** One device section's saved state. */
export interface DeviceMessage {
  type: 'device';
  name: string;
  instance: number;
  version: number;
  state: Uint8Array;
}

/** All pages of dirty-sync round `round` have been sent. */
export interface RoundEndMessage {
  type: 'round-end';
  round: number;
}

/** No more RAM follows in precopy; device state comes next. */
export interface RamCompleteMessage {
  type: 'ram-complete';
}

export interface EofMessage {
  type: 'eof';
}

/** The source asks the destination to start sending on the return path. */
export interface OpenReturnPathMessage {
  type: 'open-return-path';
}

/** Answered with a PONG carrying the same value on the return path. */
export interface PingMessage {
  type: 'ping';
  value: number;
}

export interface PostcopyAdviseMessage {
  type: 'postcopy-advise';
  hostPageSize: number;
  targetPageSize: number;
}

/**
 * The pages of block `block` (stream order) the destination must drop before
 * postcopy runs (QEMU's POSTCOPY_RAM_DISCARD): bit b of byte j of `bitmap`
 * (least significant first) is page firstPage + 8j + b. `firstPage` is a
 * multiple of 32; a block's bitmap is sent in chunks of at most 4 MiB.
 */
export interface PostcopyDiscardMessage {
  type: 'postcopy-discard';
  block: number;
  firstPage: number;
  bitmap: Uint8Array;
}

export interface PostcopyListenMessage {
  type: 'postcopy-listen';
}

export interface PostcopyRunMessage {
  type: 'postcopy-run';
}

export interface PostcopyResumeMessage {
  type: 'postcopy-resume';
}

/** A stream-in-a-message: the device state (and commands) of the postcopy switchover, loaded as a whole. */
export interface PackagedMessage {
  type: 'packaged';
  data: Uint8Array;
}

/** Asks the destination to send its received bitmap of `block` (postcopy recovery). */
export interface RecvBitmapMessage {
  type: 'recv-bitmap';
  block: string;
}

export interface EnableColoMessage {
  type: 'enable-colo';
}

/** QEMU's COLOMessage values the primary sends on the main stream. */
export const COLO_STREAM_MESSAGES = ['checkpoint-request', 'vmstate-send', 'vmstate-size'] as const;
export type ColoStreamMessage = (typeof COLO_STREAM_MESSAGES)[number];

/**
 * A COLO checkpoint step from the primary: CHECKPOINT_REQUEST carries the
 * checkpoint's number, VMSTATE_SIZE the count of device sections that follow.
 */
export interface ColoMessage {
  type: 'colo';
  message: ColoStreamMessage;
  value: number;
}

/**
 * livemig: the primary's output packets not yet released as of this
 * checkpoint (16 bytes each), so a secondary that takes over from it can
 * release them.
 */
export interface ColoOutputMessage {
  type: 'colo-output';
  packets: Uint8Array;
}

export type StreamMessage =
  | HeaderMessage
  | DeviceMessage
  | RoundEndMessage
  | RamCompleteMessage
  | EofMessage
  | OpenReturnPathMessage
  | PingMessage
  | PostcopyAdviseMessage
  | PostcopyDiscardMessage
  | PostcopyListenMessage
  | PostcopyRunMessage
  | PostcopyResumeMessage
  | PackagedMessage
  | RecvBitmapMessage
  | EnableColoMessage
  | ColoMessage
  | ColoOutputMessage;

export type StreamMessageType = StreamMessage['type'];

/** Block and device names, like QEMU's idstr (up to 255 bytes). */
const name = text(255);
/** Byte sizes: RAM blocks up to 256 TiB. */
export const MAX_BLOCK_SIZE = 2 ** 48;
const pageSize = uint(1 << 30);

const MESSAGE_FIELDS: { readonly [T in StreamMessageType]: Fields } = {
  header: {
    pageSize,
    // A PAGES frame names its block with a u16 index.
    blocks: listOf(mapOf({ name, size: uint(MAX_BLOCK_SIZE) }), U16_MAX + 1),
    vcpus: uint(U16_MAX),
    devices: listOf(mapOf({ name, instance: uint(U32_MAX), version: uint(U32_MAX) }), U16_MAX + 1),
    uuid: optional(text(36, UUID_TEXT)),
    runState: oneOf(RUN_STATES),
    capabilities: listOf(text(64), 256),
  },
  device: { name, instance: uint(U32_MAX), version: uint(U32_MAX), state: bytes() },
  'round-end': { round: uint(Number.MAX_SAFE_INTEGER) },
  'ram-complete': {},
  eof: {},
  'open-return-path': {},
  ping: { value: uint(U32_MAX) },
  'postcopy-advise': { hostPageSize: pageSize, targetPageSize: pageSize },
  'postcopy-discard': { block: uint(U16_MAX), firstPage: uint(MAX_BLOCK_SIZE), bitmap: bytes() },
  'postcopy-listen': {},
  'postcopy-run': {},
  'postcopy-resume': {},
  packaged: { data: bytes() },
  'recv-bitmap': { block: name },
  'enable-colo': {},
  colo: { message: oneOf(COLO_STREAM_MESSAGES), value: uint(U32_MAX) },
  'colo-output': { packets: bytes() },
};

/** The outcome of checking a decoded value against the message schemas. */
export type MessageCheck =
  | { ok: true; message: StreamMessage }
  | { ok: false; unknownType: boolean; problem: string };

/** Checks that `value` is a known control message that matches its type's schema. */
export function checkStreamMessage(value: unknown): MessageCheck {
  const type = typeof value === 'object' && value !== null ? (value as { type?: unknown }).type : undefined;
  if (typeof type !== 'string') {
    return { ok: false, unknownType: false, problem: "control message has no string 'type' field" };
  }
  if (!Object.hasOwn(MESSAGE_FIELDS, type)) {
    return { ok: false, unknownType: true, problem: `unknown control message type ${JSON.stringify(type.slice(0, 64))}` };
  }
  const fields = MESSAGE_FIELDS[type as StreamMessageType];
  const problem = checkFields(value, { type: oneOf([type]), ...fields });
  if (problem) return { ok: false, unknownType: false, problem: `bad '${type}' message: ${problem}` };
  return { ok: true, message: value as StreamMessage };
}
