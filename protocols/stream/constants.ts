/**
 * The main migration stream's wire constants.
 *
 * The connection opens with the channel hello (protocols/hello), then
 * carries frames, each an 8-byte header followed by its body (all integers
 * big-endian):
 *
 * | offset | size | field                            |
 * | ------ | ---- | -------------------------------- |
 * | 0      | 1    | frame type (CONTROL 1, PAGES 2, XBZRLE 3) |
 * | 1      | 1    | flags (none defined: zero)       |
 * | 2      | 2    | reserved, zero                   |
 * | 4      | 4    | body length                      |
 *
 * A CONTROL body is one msgpack-encoded message (messages.ts). A PAGES body
 * is a sub-header (u16 block index, u16 run count, u32 reserved zero), then
 * a batch of page runs: their descriptors and the bytes of the non-zero
 * runs (protocols/page-runs).
 *
 * An XBZRLE body (QEMU's RAM_SAVE_FLAG_XBZRLE pages, with the `xbzrle`
 * capability) carries re-sent pages as deltas against the copy the
 * destination already holds (protocols/xbzrle has the delta format):
 *
 * | size | field                                              |
 * | ---- | -------------------------------------------------- |
 * | 2    | block index                                        |
 * | 2    | page count (1 to MAX_XBZRLE_PAGES_PER_FRAME)       |
 * | 4    | reserved, zero                                     |
 * | then, per page:                                           |
 * | 4    | page index in the block                            |
 * | 2    | delta length (at most the page size)               |
 * | n    | the delta                                          |
 *
 * The pages must use the body exactly.
 */
import { MAX_PAGE_DATA_PER_BATCH, MAX_PAGES_PER_BATCH, MAX_RUNS_PER_BATCH, RUN_DESCRIPTOR_SIZE } from '../page-runs/constants.js';

export const FRAME_HEADER_SIZE = 8;

export const FrameType = {
  CONTROL: 1,
  PAGES: 2,
  XBZRLE: 3,
} as const;
export type FrameType = (typeof FrameType)[keyof typeof FrameType];

/** Largest CONTROL body: room for big device sections and the postcopy package. */
export const MAX_CONTROL_BODY = 16 * 1024 * 1024;

export const PAGES_SUBHEADER_SIZE = 8;
/** A PAGES frame is one batch of page runs. */
export const MAX_RUNS_PER_FRAME = MAX_RUNS_PER_BATCH;
export const MAX_PAGES_PER_FRAME = MAX_PAGES_PER_BATCH;
export const MAX_PAGE_DATA_PER_FRAME = MAX_PAGE_DATA_PER_BATCH;
export const MAX_PAGES_BODY =
  PAGES_SUBHEADER_SIZE + RUN_DESCRIPTOR_SIZE * MAX_RUNS_PER_FRAME + MAX_PAGE_DATA_PER_FRAME;

export const XBZRLE_SUBHEADER_SIZE = 8;
/** Before each page's delta: u32 page index, u16 delta length. */
export const XBZRLE_PAGE_HEADER_SIZE = 6;
export const MAX_XBZRLE_PAGES_PER_FRAME = MAX_PAGES_PER_BATCH;
/** Deltas are at most a page each, so an XBZRLE frame is never larger than a PAGES frame's data. */
export const MAX_XBZRLE_BODY =
  XBZRLE_SUBHEADER_SIZE + XBZRLE_PAGE_HEADER_SIZE * MAX_XBZRLE_PAGES_PER_FRAME + MAX_PAGE_DATA_PER_FRAME;
