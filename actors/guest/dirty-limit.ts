/**
 * The vCPUs' dirty page rate limits (QEMU's system/dirtylimit.c): each
 * vCPU's quota in MB/s, set by set-vcpu-dirty-limit or by a dirty-limit
 * migration, and each vCPU's current dirty rate, measured while any limit
 * is in force (QEMU's dirtyrate-stat thread) every period: 1000 ms, or
 * x-vcpu-dirty-limit-period while a dirty-limit migration runs.
 *
 * livemig's stand-in for KVM's dirty ring: QEMU needs the ring (KVM
 * `dirty-ring-size`) because a vCPU can only be made to sleep when its ring
 * fills, and it adjusts that sleep by feedback each period. A livemig vCPU
 * counts every page it writes (the guest's WORK counter, one ring entry per
 * page) and keeps under its cap itself, window by window, sleeping out the
 * rest of a window once its share is written (vcpu-worker.ts): the limit
 * acts at once, with no feedback loop, and the ring is always there. Its
 * size, for QEMU's per-round figures, is DIRTY_RING_ENTRIES pages per vCPU.
 * MB are MiB, as QEMU counts them (qemu_target_pages_to_MiB).
 */
import { TARGET_PAGE_SIZE } from './constants.js';
import type { Guest } from './guest.js';

/** The dirty-ring-size a livemig vCPU stands for (the size QEMU's migration-test and libvirt's examples set for KVM). */
export const DIRTY_RING_ENTRIES = 4096;
/** QEMU's DIRTYLIMIT_CALC_TIME_MS: the measurement period outside a dirty-limit migration. */
export const DIRTYLIMIT_CALC_TIME_MS = 1000;
const PAGES_PER_MB = (1 << 20) / TARGET_PAGE_SIZE;
/** A vCPU's cap is an Int32 of pages/s: a larger quota limits nothing anyway (8 TiB/s). */
const MAX_PAGES_PER_SECOND = 0x7fffffff;

/** query-vcpu-dirty-limit's DirtyLimitInfo. */
export interface DirtyLimitInfo {
  'cpu-index': number;
  'limit-rate': bigint;
  'current-rate': number;
}

type LimitedGuest = Pick<Guest, 'smp' | 'running' | 'setDirtyLimit' | 'workDone' | 'dirtyLimitSleptUs'>;

interface Sample {
  at: number;
  work: number[];
  slept: number[];
}

/**
 * @example
 * const limits = new VcpuDirtyLimits(guest, () => 1000);
 * limits.set(200n, 1);     // vCPU 1 dirties at most 200 MB/s
 * limits.query();          // [{ 'cpu-index': 1, 'limit-rate': 200n, 'current-rate': … }]
 * limits.cancel();         // every vCPU free again; the measuring stops
 */
export class VcpuDirtyLimits {
  /** Each vCPU's quota (MB/s), undefined where none is set. */
  private readonly quotas: (bigint | undefined)[];
  /** Each vCPU's dirty rate over the last period, pages/s. */
  private readonly rates: number[];
  /** Each vCPU's sleep per DIRTY_RING_ENTRIES pages written over the last period, µs (QEMU's throttle_us_per_full). */
  private readonly throttleUs: number[];
  private timer: NodeJS.Timeout | undefined;
  private last: Sample | undefined;

  constructor(
    private readonly guest: LimitedGuest,
    /** The measurement period now, ms. */
    private readonly period: () => number,
  ) {
    this.quotas = new Array<bigint | undefined>(guest.smp).fill(undefined);
    this.rates = new Array<number>(guest.smp).fill(0);
    this.throttleUs = new Array<number>(guest.smp).fill(0);
  }

  /** QEMU's dirtylimit_in_service: some vCPU is limited. */
  get inService(): boolean {
    return this.quotas.some((q) => q !== undefined);
  }

  /** QEMU's dirtylimit_vcpu_index_valid (livemig has no CPU hotplug: max-cpus is smp). */
  validIndex(cpuIndex: number | bigint): boolean {
    return cpuIndex >= 0 && cpuIndex < this.guest.smp;
  }

  /** Caps vCPU `vcpu` (every vCPU when undefined) at `quota` MB/s (> 0); the caller checked the index. */
  set(quota: bigint, vcpu?: number): void {
    if (!this.inService) this.startMeasuring();
    const pages = quota * BigInt(PAGES_PER_MB);
    const pagesPerSecond = pages > BigInt(MAX_PAGES_PER_SECOND) ? MAX_PAGES_PER_SECOND : Number(pages);
    for (const v of this.targets(vcpu)) {
      this.quotas[v] = quota;
      this.guest.setDirtyLimit(pagesPerSecond, v);
    }
  }

  /** Lifts vCPU `vcpu`'s cap (every vCPU's when undefined); once none is left, the measuring stops. */
  cancel(vcpu?: number): void {
    if (!this.inService) return;
    for (const v of this.targets(vcpu)) {
      this.quotas[v] = undefined;
      this.guest.setDirtyLimit(0, v);
    }
    if (!this.inService) this.stopMeasuring();
  }

  /** query-vcpu-dirty-limit: the limited vCPUs, in index order; none when no limit is in force. */
  query(): DirtyLimitInfo[] {
    const infos: DirtyLimitInfo[] = [];
    this.quotas.forEach((quota, v) => {
      if (quota !== undefined) infos.push({ 'cpu-index': v, 'limit-rate': quota, 'current-rate': Math.trunc(this.rates[v]! / PAGES_PER_MB) });
    });
    return infos;
  }

  /** QEMU's dirtylimit_throttle_time_per_round: the longest a vCPU sleeps per ring-full round, µs. */
  throttleTimePerRound(): number {
    return Math.max(0, ...this.throttleUs);
  }

  /**
   * QEMU's dirtylimit_ring_full_time: how long a ring takes to fill at the
   * vCPUs' average dirty rate, µs; 0 when the guest dirties nothing (or is
   * stopped).
   */
  ringFullTime(): number {
    if (!this.guest.running) return 0;
    const average = this.rates.reduce((a, b) => a + b, 0) / this.rates.length;
    return average > 0 ? Math.round((DIRTY_RING_ENTRIES / average) * 1e6) : 0;
  }

  /** The instance is closing: no measuring may outlive it. */
  close(): void {
    this.stopMeasuring();
  }

  private targets(vcpu: number | undefined): number[] {
    return vcpu === undefined ? [...this.quotas.keys()] : [vcpu];
  }

  private sample(): Sample {
    return { at: performance.now(), work: this.guest.workDone(), slept: this.guest.dirtyLimitSleptUs() };
  }

  /** QEMU's dirtylimit_init: rates start at 0 and are measured from now on. */
  private startMeasuring(): void {
    this.rates.fill(0);
    this.throttleUs.fill(0);
    this.last = this.sample();
    this.schedule();
  }

  private stopMeasuring(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.last = undefined;
    this.rates.fill(0);
    this.throttleUs.fill(0);
  }

  /** The period is read for each round, so x-vcpu-dirty-limit-period acts on the next one. */
  private schedule(): void {
    this.timer = setTimeout(() => this.measure(), this.period());
    // Measuring alone must not keep the process up.
    this.timer.unref();
  }

  /** One period's end (QEMU's vcpu_dirty_rate_stat_collect): rates and throttle times from the counters' differences. */
  private measure(): void {
    const before = this.last!;
    const now = this.sample();
    const seconds = (now.at - before.at) / 1000;
    for (let v = 0; v < this.rates.length; v++) {
      // Both counters wrap at 2^32: their differences stay right.
      const pages = (now.work[v]! - before.work[v]!) >>> 0;
      const sleptUs = (now.slept[v]! - before.slept[v]!) >>> 0;
      this.rates[v] = seconds > 0 ? pages / seconds : 0;
      this.throttleUs[v] = pages > 0 ? Math.round((sleptUs * DIRTY_RING_ENTRIES) / pages) : 0;
    }
    this.last = now;
    this.schedule();
  }
}
