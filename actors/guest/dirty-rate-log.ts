import { DIRTY_PAGES, DIRTY_RATE_LOG, vcpuSlot } from './control.js';
import type { RamBlock } from './ram-block.js';

/**
 * The guest's dirty-rate log, what calc-dirty-rate's dirty-bitmap and
 * dirty-ring modes read (QEMU's dirty logging with GLOBAL_DIRTY_DIRTY_RATE):
 * while it is on, every vCPU write sets the page's bit in its block's
 * `dirtyRate` bitmap, and the write that sets a bit adds 1 to its vCPU's
 * DIRTY_PAGES counter (mmu.ts). The bitmaps are the log's own, apart from
 * the migration's dirty bitmap, so a measurement never takes a page from a
 * migration's dirty sync, and a migration never hides one from it.
 *
 * Off, it costs each write one plain load of a shared word.
 *
 * @example
 * guest.dirtyRateLog.start();        // bitmaps cleared, vCPUs log
 * const before = guest.dirtyRateLog.vcpuDirtyPages();
 * // … later
 * guest.dirtyRateLog.dirtyPages();   // distinct pages written since start()
 * guest.dirtyRateLog.stop();
 */
export class DirtyRateLog {
  constructor(
    private readonly blocks: readonly RamBlock[],
    private readonly ctrl: Int32Array,
    private readonly smp: number,
  ) {}

  /** Clears the bitmaps and has the vCPUs log (one more user of the log). */
  start(): void {
    this.reset();
    Atomics.add(this.ctrl, DIRTY_RATE_LOG, 1);
  }

  /** One user fewer; the vCPUs stop logging once none is left. */
  stop(): void {
    if (Atomics.load(this.ctrl, DIRTY_RATE_LOG) > 0) Atomics.sub(this.ctrl, DIRTY_RATE_LOG, 1);
  }

  get on(): boolean {
    return Atomics.load(this.ctrl, DIRTY_RATE_LOG) > 0;
  }

  /**
   * Clears the bitmaps, so a page written again counts again: KVM's reset of
   * the dirty rings after QEMU's reaper has collected them.
   */
  reset(): void {
    for (const block of this.blocks) block.dirtyRate.fill(false);
  }

  /** Pages set in the bitmaps now: the distinct pages written since the last reset. */
  dirtyPages(): number {
    let pages = 0;
    for (const block of this.blocks) pages += block.dirtyRate.count();
    return pages;
  }

  /** Per vCPU, the pages it logged since the guest started, mod 2^32 (differences over a window stay right across a wrap). */
  vcpuDirtyPages(): number[] {
    return Array.from({ length: this.smp }, (_, v) => Atomics.load(this.ctrl, vcpuSlot(v, DIRTY_PAGES)) >>> 0);
  }
}
