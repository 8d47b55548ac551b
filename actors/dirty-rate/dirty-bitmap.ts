import type { DirtyRateLog } from '../guest/dirty-rate-log.js';
import { pagesDirtyRate } from './dirty-pages-rate.js';
import type { MeasuringRun } from './types.js';

/**
 * dirty-bitmap mode (QEMU's calculate_dirtyrate_dirty_bitmap): dirty
 * logging on, with the log cleared, for the calc time; the pages set in
 * the log's bitmaps at the end are the distinct pages the guest wrote.
 * The log is the guest's own, apart from the migration's dirty bitmap
 * (dirty-rate-log.ts): measuring in the middle of a migration takes no
 * page from its dirty sync.
 */
export function startDirtyBitmap(log: DirtyRateLog): MeasuringRun {
  log.start();
  return {
    end(calcTimeMs) {
      const pages = log.dirtyPages();
      log.stop();
      return { dirtyRate: pagesDirtyRate(pages, calcTimeMs) };
    },
  };
}
