import type { Mmu } from '../mmu.js';
import type { NicTx } from '../nic.js';

/** What a guest runs on its vCPUs; each kind's options are plain numbers. */
export type WorkloadSpec =
  | { kind: 'idle' }
  /** QEMU's migration-test guest: add 1 to the first byte of each page of [start, end) of pc.ram, forever. */
  | { kind: 'ab'; start: number; end: number }
  /** Dirty `rate` pages per second of run time (per guest) at random over [start, start + workingSet), seeded. */
  | { kind: 'random'; rate: number; start: number; workingSet: number; seed: number };

export type WorkloadKind = WorkloadSpec['kind'];
export const WORKLOAD_KINDS: readonly WorkloadKind[] = ['idle', 'ab', 'random'];

/** The running side of a workload inside a vCPU worker. */
export interface Workload {
  /**
   * Does a small, bounded amount of work (so a stop request is seen within
   * microseconds), writing at most `budget` pages (≥ 1; the dirty limit's
   * share), and returns how many pages it wrote. `sleep` parks the thread for
   * up to `ms` but returns early when a stop is requested.
   */
  step(sleep: (ms: number) => void, budget: number): number;
  /**
   * Called when the vCPU gets the CPU back after being off it: resumed after
   * a stop, or woken after the CPU throttle's sleep. A workload paced against
   * the clock restarts its pacing, so that, like a CPU-bound guest, it only
   * works while it runs and a throttle slows it.
   */
  resumed(): void;
}

export interface WorkloadContext {
  mmu: Mmu;
  /** This vCPU's registers (shared memory): the workload's progress. */
  regs: Float64Array;
  vcpu: number;
  smp: number;
  /** The NIC's transmit side, on vCPU 0 only: workloads that send packets send them from there. */
  nic?: NicTx;
}

/**
 * A vCPU's share of a range of pages: vCPUs split a workload's range into
 * equal consecutive slices, so each keeps its own consistent pattern.
 */
export function vcpuSlice(firstPage: number, pages: number, vcpu: number, smp: number): { first: number; count: number } {
  const per = Math.floor(pages / smp);
  const first = firstPage + per * vcpu;
  const count = vcpu === smp - 1 ? pages - per * vcpu : per;
  return { first, count };
}
