import { TARGET_PAGE_SIZE } from '../constants.js';
import { REG0 } from '../cpu-state.js';
import { vcpuSlice, type Workload, type WorkloadContext } from './workload.js';

/** Register holding the index (within this vCPU's slice) of the next page to increment. */
const POSITION = REG0;
/** Pages incremented per step: small enough that a stop is seen at once. */
const PAGES_PER_STEP = 64;
/** vCPU 0 sends a packet each time it increments a page whose slice index is a multiple of this (the guest's output). */
export const AB_PACKET_PAGES = 4096;

/**
 * QEMU's migration-test guest: forever, for each page of the range, add 1 to
 * its first byte, page after page. A stopped guest therefore holds one value
 * in every page of its slice except a lower one (by 1, mod 256) from the
 * position on: anything else is a lost or stale page. vCPU 0 also sends
 * a packet every AB_PACKET_PAGES pages of its slice, made of the page's
 * position and new value: the guest's deterministic output (nic.ts).
 */
export function abWorkload(ctx: WorkloadContext, start: number, end: number): Workload {
  const { mmu, regs, nic } = ctx;
  const slice = vcpuSlice(start / TARGET_PAGE_SIZE, (end - start) / TARGET_PAGE_SIZE, ctx.vcpu, ctx.smp);
  return {
    step(_sleep, budget) {
      if (slice.count === 0) return 0;
      const pages = Math.min(PAGES_PER_STEP, budget);
      let pos = regs[POSITION]!;
      for (let i = 0; i < pages; i++) {
        const addr = (slice.first + pos) * TARGET_PAGE_SIZE;
        const sends = nic !== undefined && pos % AB_PACKET_PAGES === 0;
        // The slot first: a stop while waiting for it must find nothing of this page done. After a wait
        // (maybe parked, the registers maybe loaded anew) the step ends: the next one reads them again.
        if (sends && nic.reserve()) return i;
        const value = (mmu.read8(0, addr) + 1) & 0xff;
        mmu.write8(0, addr, value);
        if (sends) nic.send(pos, value);
        pos = pos + 1 === slice.count ? 0 : pos + 1;
        regs[POSITION] = pos;
      }
      return pages;
    },
    resumed() {},
  };
}
