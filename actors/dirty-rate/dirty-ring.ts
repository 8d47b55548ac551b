import type { DirtyRateLog } from '../guest/dirty-rate-log.js';
import { DIRTY_RING_REAP_MS } from './constants.js';
import { pagesDirtyRate } from './dirty-pages-rate.js';
import type { MeasuringRun } from './types.js';

/**
 * dirty-ring mode (QEMU's calculate_dirtyrate_dirty_ring): each vCPU's
 * count of the pages it dirtied (QEMU's cpu->dirty_pages, the entries its
 * dirty ring gave), read at the start and at the end; each vCPU's rate,
 * and the guest's as their sum. A vCPU logs a page once until the log is
 * reset, which happens every DIRTY_RING_REAP_MS, as KVM's rings are reset
 * after QEMU's reaper collects them: a page dirtied again a second later
 * counts again (where dirty-bitmap counts it once over the whole time).
 */
export function startDirtyRing(log: DirtyRateLog): MeasuringRun {
  log.start();
  const before = log.vcpuDirtyPages();
  const reaper = setInterval(() => log.reset(), DIRTY_RING_REAP_MS);
  // A measurement alone must not keep the process up.
  reaper.unref();
  return {
    end(calcTimeMs) {
      clearInterval(reaper);
      const after = log.vcpuDirtyPages();
      log.stop();
      // The counters wrap at 2^32: their differences stay right.
      const vcpus = after.map((pages, id) => ({ id, 'dirty-rate': pagesDirtyRate((pages - before[id]!) >>> 0, calcTimeMs) }));
      return { dirtyRate: vcpus.reduce((sum, v) => sum + v['dirty-rate'], 0), vcpus };
    },
  };
}
