import { TARGET_PAGE_SIZE } from '../constants.js';
import { REG0 } from '../cpu-state.js';
import { vcpuSlice, type Workload, type WorkloadContext } from './workload.js';

/** Registers: the PRNG state, and how many pages this vCPU has written. */
const PRNG = REG0;
const WRITTEN = REG0 + 1;
/** Most pages written in one step, so a stop is seen quickly even at high rates. */
const MAX_PAGES_PER_STEP = 256;
/** A backlog longer than this is dropped instead of written in a burst. */
const MAX_BACKLOG_S = 0.02;

/**
 * Dirties pages at a target rate over a working set: each write picks a page
 * with a seeded PRNG (mulberry32, whose whole state is one 32-bit register)
 * and stores a fresh 32-bit value at its start. The page sequence depends only
 * on the seed; the rate is paced against the time the vCPU runs (a CPU
 * throttle slows it, as it slows a CPU-bound guest).
 */
export function randomWorkload(
  ctx: WorkloadContext,
  rate: number,
  start: number,
  workingSet: number,
  seed: number,
): Workload {
  const { mmu, regs } = ctx;
  const slice = vcpuSlice(start / TARGET_PAGE_SIZE, workingSet / TARGET_PAGE_SIZE, ctx.vcpu, ctx.smp);
  const perVcpuRate = rate / ctx.smp;
  if (regs[PRNG] === 0) regs[PRNG] = ((seed >>> 0) ^ Math.imul(ctx.vcpu + 1, 0x9e3779b9)) >>> 0 || 1;
  let t0 = performance.now();
  let doneSinceT0 = 0;

  const next = (): number => {
    const s = (regs[PRNG]! + 0x6d2b79f5) >>> 0;
    regs[PRNG] = s;
    let t = Math.imul(s ^ (s >>> 15), s | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  };

  return {
    step(sleep, budget) {
      if (slice.count === 0 || perVcpuRate <= 0) {
        sleep(50);
        return 0;
      }
      const now = performance.now();
      const due = Math.floor((perVcpuRate * (now - t0)) / 1000) - doneSinceT0;
      if (due > perVcpuRate * MAX_BACKLOG_S) {
        // Fell behind (start-up, a busy host): resume the rate from now
        // rather than burst above it to catch up.
        t0 = now;
        doneSinceT0 = 0;
        return 0;
      }
      if (due < 1) {
        sleep(Math.max(1, Math.min(50, 1000 / perVcpuRate)));
        return 0;
      }
      const n = Math.min(due, MAX_PAGES_PER_STEP, budget);
      for (let i = 0; i < n; i++) {
        const page = slice.first + (next() % slice.count);
        mmu.write32(0, page * TARGET_PAGE_SIZE, next());
      }
      doneSinceT0 += n;
      regs[WRITTEN] = regs[WRITTEN]! + n;
      return n;
    },
    resumed() {
      t0 = performance.now();
      doneSinceT0 = 0;
    },
  };
}
