import { TARGET_PAGE_SIZE } from '../constants.js';
import { REG0 } from '../cpu-state.js';
import { vcpuSlice, type Workload, type WorkloadContext } from './workload.js';

/** Register holding the index (within this vCPU's slice) of the next page to increment. */
const POSITION = REG0;
/** Pages incremented per step: small enough that a stop is seen at once. */
const PAGES_PER_STEP = 64;

/**
 * QEMU's migration-test guest: forever, for each page of the range, add 1 to
 * its first byte, page after page. A stopped guest therefore holds one value
 * in every page of its slice except a lower one (by 1, mod 256) from the
 * position on: anything else is a lost or stale page.
 */
export function abWorkload(ctx: WorkloadContext, start: number, end: number): Workload {
  const { mmu, regs } = ctx;
  const slice = vcpuSlice(start / TARGET_PAGE_SIZE, (end - start) / TARGET_PAGE_SIZE, ctx.vcpu, ctx.smp);
  return {
    step(_sleep, budget) {
      if (slice.count === 0) return 0;
      const pages = Math.min(PAGES_PER_STEP, budget);
      let pos = regs[POSITION]!;
      for (let i = 0; i < pages; i++) {
        const addr = (slice.first + pos) * TARGET_PAGE_SIZE;
        mmu.write8(0, addr, (mmu.read8(0, addr) + 1) & 0xff);
        pos = pos + 1 === slice.count ? 0 : pos + 1;
        regs[POSITION] = pos;
      }
      return pages;
    },
    resumed() {},
  };
}
