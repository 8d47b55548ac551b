/** The guest's target page size: the unit of dirty tracking and migration. */
export const TARGET_PAGE_SIZE = 4096;
export const TARGET_PAGE_BITS = 12;

/**
 * RAM is backed by slabs of at most this many bytes, one SharedArrayBuffer
 * each: Node 20 cannot make a typed-array view longer than 4 GiB, and 1 GiB
 * slabs keep every view and offset comfortably inside that limit.
 */
export const SLAB_SIZE = 1 << 30;
export const PAGES_PER_SLAB = SLAB_SIZE / TARGET_PAGE_SIZE;
