/**
 * The channel hello: the 32 bytes every migration connection opens with
 * (main, multifd, postcopy-preempt), so a destination can tell connections
 * apart whatever order they arrive in. All integers big-endian:
 *
 * | offset | size | field                                                |
 * | ------ | ---- | ---------------------------------------------------- |
 * | 0      | 4    | magic 0x4C564D47 ("LVMG")                            |
 * | 4      | 2    | stream version (1)                                   |
 * | 6      | 1    | channel kind (0 main, 1 multifd, 2 postcopy-preempt) |
 * | 7      | 1    | channel id (0-based, < channel count)                |
 * | 8      | 1    | channel count (of this kind, ≥ 1)                    |
 * | 9      | 3    | reserved, zero                                       |
 * | 12     | 16   | guest UUID, all zero when the guest has none         |
 * | 28     | 4    | reserved, zero                                       |
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

/** Which job a connection does. */
export const ChannelKind = {
  MAIN: 0,
  MULTIFD: 1,
  POSTCOPY_PREEMPT: 2,
} as const;
export type ChannelKind = (typeof ChannelKind)[keyof typeof ChannelKind];
