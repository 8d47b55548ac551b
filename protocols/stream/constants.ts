/**
 * The main migration stream's wire constants.
 *
 * Every connection opens with a 32-byte channel hello (all integers
 * big-endian):
 *
 * | offset | size | field                                              |
 * | ------ | ---- | -------------------------------------------------- |
 * | 0      | 4    | magic 0x4C564D47 ("LVMG")                          |
 * | 4      | 2    | stream version (1)                                 |
 * | 6      | 1    | channel kind (0 main, 1 multifd, 2 postcopy-preempt) |
 * | 7      | 1    | channel id (0-based, < channel count)              |
 * | 8      | 1    | channel count (of this kind, ≥ 1)                  |
 * | 9      | 3    | reserved, zero                                     |
 * | 12     | 16   | guest UUID, all zero when the guest has none       |
 * | 28     | 4    | reserved, zero                                     |
 *
 * Then frames, each an 8-byte header followed by its body:
 *
 * | offset | size | field                            |
 * | ------ | ---- | -------------------------------- |
 * | 0      | 1    | frame type (CONTROL 1, PAGES 2)  |
 * | 1      | 1    | flags (none defined: zero)       |
 * | 2      | 2    | reserved, zero                   |
 * | 4      | 4    | body length                      |
 *
 * A CONTROL body is one msgpack-encoded message (messages.ts). A PAGES body
 * is a sub-header (u16 block index, u16 run count, u32 reserved zero), one
 * 8-byte descriptor per run (u32 first page, u32 page count with
 * ZERO_RUN_FLAG set when the run is all zero pages), then the bytes of the
 * non-zero runs back to back, in run order.
 */

export const STREAM_MAGIC = 0x4c564d47;
export const STREAM_VERSION = 1;

export const HELLO_SIZE = 32;
export const HELLO_MAGIC_OFFSET = 0;
export const HELLO_VERSION_OFFSET = 4;
export const HELLO_KIND_OFFSET = 6;
export const HELLO_CHANNEL_ID_OFFSET = 7;
export const HELLO_CHANNEL_COUNT_OFFSET = 8;
export const HELLO_RESERVED1_OFFSET = 9;
export const HELLO_UUID_OFFSET = 12;
export const HELLO_RESERVED2_OFFSET = 28;
export const UUID_SIZE = 16;

/** Which job a connection does; sent in the hello so connections can arrive in any order. */
export const ChannelKind = {
  MAIN: 0,
  MULTIFD: 1,
  POSTCOPY_PREEMPT: 2,
} as const;
export type ChannelKind = (typeof ChannelKind)[keyof typeof ChannelKind];

export const FRAME_HEADER_SIZE = 8;

export const FrameType = {
  CONTROL: 1,
  PAGES: 2,
} as const;
export type FrameType = (typeof FrameType)[keyof typeof FrameType];

/** Largest CONTROL body: room for big device sections and the postcopy package. */
export const MAX_CONTROL_BODY = 16 * 1024 * 1024;

export const PAGES_SUBHEADER_SIZE = 8;
export const RUN_DESCRIPTOR_SIZE = 8;
export const ZERO_RUN_FLAG = 0x80000000;
export const RUN_COUNT_MASK = 0x7fffffff;
export const MAX_RUNS_PER_FRAME = 1024;
export const MAX_PAGES_PER_FRAME = 2048;
/** Page bytes one PAGES frame may carry (2048 pages of 4 KiB). */
export const MAX_PAGE_DATA_PER_FRAME = 8 * 1024 * 1024;
export const MAX_PAGES_BODY =
  PAGES_SUBHEADER_SIZE + RUN_DESCRIPTOR_SIZE * MAX_RUNS_PER_FRAME + MAX_PAGE_DATA_PER_FRAME;

export const DEFAULT_PAGE_SIZE = 4096;
