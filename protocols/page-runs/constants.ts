/**
 * Page runs on the wire, as the main stream's PAGES frames and multifd
 * packets both carry them: one 8-byte descriptor per run (u32 first page,
 * u32 page count with ZERO_RUN_FLAG set for a run of zero pages, which
 * carries no bytes), then the bytes of the other runs back to back, in run
 * order. One batch (a frame, a packet) holds at most the limits below.
 */

export const RUN_DESCRIPTOR_SIZE = 8;
export const ZERO_RUN_FLAG = 0x80000000;
export const RUN_COUNT_MASK = 0x7fffffff;

export const MAX_RUNS_PER_BATCH = 1024;
export const MAX_PAGES_PER_BATCH = 2048;
/** Page bytes one batch may carry (2048 pages of 4 KiB). */
export const MAX_PAGE_DATA_PER_BATCH = 8 * 1024 * 1024;

/** The target page size, unless a decoder is told otherwise. */
export const DEFAULT_PAGE_SIZE = 4096;
