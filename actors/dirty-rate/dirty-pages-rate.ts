import { TARGET_PAGE_BITS } from '../guest/constants.js';

/**
 * QEMU's do_calculate_dirtyrate: `pages` dirtied over `calcTimeMs` as MB/s
 * (MiB, qemu_target_pages_to_MiB), multiplied by 1000 before it is brought
 * down to MiB so small rates keep their precision, rounded down as QEMU's
 * integers are.
 */
export function pagesDirtyRate(pages: number, calcTimeMs: number): number {
  return Math.floor(Math.floor((pages * 1000) / 2 ** (20 - TARGET_PAGE_BITS)) / calcTimeMs);
}
