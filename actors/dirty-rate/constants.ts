/** QEMU's limits and defaults for dirty-rate measurement (migration/dirtyrate.h, QEMU 8.2). */

/** calc-time's range, in milliseconds whatever calc-time-unit it was given in. */
export const MIN_CALC_TIME_MS = 50;
export const MAX_CALC_TIME_MS = 60_000;

/** sample-pages' range, pages per GiB. */
export const MIN_SAMPLE_PAGE_COUNT = 128;
export const MAX_SAMPLE_PAGE_COUNT = 16_384;
/** sample-pages when not given. */
export const DIRTYRATE_DEFAULT_SAMPLE_PAGES = 512;

/** Page-sampling skips RAM blocks smaller than this (QEMU's MIN_RAMBLOCK_SIZE << 10 bytes: 128 KiB). */
export const MIN_SAMPLED_BLOCK_BYTES = 128 << 10;

/**
 * How often the dirty rings are reaped and reset: QEMU's reaper thread
 * (kvm_dirty_ring_reaper_thread) wakes every second. A page dirtied again
 * after a reset is logged again.
 */
export const DIRTY_RING_REAP_MS = 1000;
