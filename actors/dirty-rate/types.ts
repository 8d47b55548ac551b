/**
 * The shapes of dirty-rate measurement (QEMU's migration/dirtyrate.h and
 * the DirtyRate* types of qapi/migration.json), as QMP sends them.
 */

/** QEMU's DirtyRateMeasureMode. */
export const DIRTY_RATE_MODES = ['page-sampling', 'dirty-ring', 'dirty-bitmap'] as const;
export type DirtyRateMeasureMode = (typeof DIRTY_RATE_MODES)[number];

/** QEMU's DirtyRateStatus. */
export type DirtyRateStatus = 'unstarted' | 'measuring' | 'measured';

/** QEMU 8.2's TimeUnit. */
export const TIME_UNITS = ['second', 'millisecond'] as const;
export type TimeUnit = (typeof TIME_UNITS)[number];

/** One measurement's settings, once calc-dirty-rate's arguments passed their checks (QEMU's DirtyRateConfig). */
export interface DirtyRateConfig {
  /** How long to measure. */
  calcTimeMs: number;
  /** Page-sampling: pages sampled per GiB of each RAM block (512 when not given, whatever the mode, as QEMU keeps it). */
  samplePagesPerGiB: number;
  mode: DirtyRateMeasureMode;
}

/** QEMU's DirtyRateVcpu: one vCPU's dirty rate, MB/s. */
export interface DirtyRateVcpu {
  id: number;
  'dirty-rate': number;
}

/** QEMU's DirtyRateInfo, the answer of query-dirty-rate, members in QAPI's order. */
export interface DirtyRateInfo {
  /** MB/s (MiB, as QEMU counts them); only once measured, -1 when there was nothing to sample. */
  'dirty-rate'?: number;
  status: DirtyRateStatus;
  /** When the measurement started, seconds since the epoch (QEMU_CLOCK_HOST). */
  'start-time': number;
  /** How long it measured (asked for, while it measures), in calc-time-unit, rounded down. */
  'calc-time': number;
  'calc-time-unit': TimeUnit;
  /** Pages sampled per GiB; 0 once measured in a mode that samples none. */
  'sample-pages': number;
  mode: DirtyRateMeasureMode;
  /** dirty-ring mode, once measured: each vCPU's rate. */
  'vcpu-dirty-rate'?: DirtyRateVcpu[];
}

/** What one mode found over the calc time. */
export interface DirtyRateResult {
  /** MB/s, -1 when there was nothing to measure. */
  dirtyRate: number;
  /** dirty-ring: each vCPU's rate. */
  vcpus?: DirtyRateVcpu[];
}

/** A mode's measurement under way: `end` is called once the calc time is over, with how long it really lasted. */
export interface MeasuringRun {
  end(calcTimeMs: number): Promise<DirtyRateResult> | DirtyRateResult;
}
