/**
 * What one dirty sync costs on a guest of a given size (the guest-size
 * series, scale-table.ts), timed in the bench process on the source's own
 * code: a RAM block of that size allocated as the guest allocates it
 * (memory is committed only where written), pages written through the
 * guest's MMU, and RamSaver.sync(), QEMU's migration_bitmap_sync (fetch and
 * clear the dirty log, merge it into the migration bitmap). The source
 * reports no sync timing of its own, and the QMP API is no place to add one
 * for a benchmark, so this times the same code outside a migration.
 *
 * A sync reads bitmaps, one bit a page, never guest bytes: its cost grows
 * with guest size even when nothing was written (clean), plus a part per
 * dirty word (`ab`'s range written between syncs, as a running `ab` guest
 * writes it).
 */
import { TARGET_PAGE_SIZE } from '../../actors/guest/constants.js';
import { allocateControl } from '../../actors/guest/control.js';
import { FaultLatencyLog } from '../../actors/guest/fault-latency.js';
import { defaultAb } from '../../actors/guest/guest.js';
import { Mmu } from '../../actors/guest/mmu.js';
import { RamBlock } from '../../actors/guest/ram-block.js';
import { RamSaver } from '../../actors/ram/ram-saver.js';
import { median } from './median.js';
import type { DirtySyncCost, RunMetrics } from './results.js';

/** Syncs timed per case: their median is the figure. */
const SYNCS = 31;

export function measureDirtySyncCost(ram: number): DirtySyncCost {
  const block = RamBlock.allocate('pc.ram', ram);
  const saver = new RamSaver([block]);
  saver.startDirtyLogging();
  // The first pass sent: each sync merges into a clear bitmap, as in the passes after it.
  sendAll(saver);
  const mmu = new Mmu([block], allocateControl(1), 0, 1, new FaultLatencyLog(), () => {});
  const ab = defaultAb(ram) as { start: number; end: number };
  let value = 0;
  const writeAbRange = () => {
    value = (value + 1) & 0xff;
    for (let addr = ab.start; addr < ab.end; addr += TARGET_PAGE_SIZE) mmu.write8(0, addr, value);
  };
  return {
    cleanMs: median(timeSyncs(saver, () => {})),
    abRangeMs: median(timeSyncs(saver, writeAbRange)),
    abRangePages: (ab.end - ab.start) / TARGET_PAGE_SIZE,
  };
}

/**
 * A guest-size series run, then the sync cost at its size, measured once
 * the run's instances are gone so that the two never share the machine.
 */
export async function withDirtySyncCost(run: Promise<RunMetrics>, ram: number): Promise<RunMetrics> {
  const metrics = await run;
  return { ...metrics, dirtySync: measureDirtySyncCost(ram) };
}

/** ms of each sync, after `write` (not timed) and with what it merged sent again. */
function timeSyncs(saver: RamSaver, write: () => void): number[] {
  const ms: number[] = [];
  for (let i = 0; i < SYNCS; i++) {
    write();
    const start = performance.now();
    saver.sync();
    ms.push(performance.now() - start);
    sendAll(saver);
  }
  return ms;
}

/** Takes every page out of the migration bitmap as multifd's sender does, reading no byte. */
function sendAll(saver: RamSaver): void {
  while (saver.nextRanges(1 << 20)) {
    // Taken.
  }
}
