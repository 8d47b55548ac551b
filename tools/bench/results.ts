/**
 * The shape of the benchmark's results: what one run measured, what a
 * scenario reports over its repeats (medians), and the whole run's file
 * (bench-results/results.json).
 */
import type { CompressionMethod } from '../../protocols/multifd/constants.js';
import type { ConvergenceMedians, ConvergenceMetrics, ConvergenceRatios } from './convergence-plan.js';
import type { PairStats, RoundDrift } from './pair-ratios.js';
import type { PredictorPoint } from './predictor-plan.js';

/** The moments of one start-to-done run (start-to-done.ts), in ms from the destination's start. */
export interface StartToDoneMetrics {
  /** Its monitor answered (QEMU: after pre-allocating its RAM). */
  monitorMs: number;
  /** `migrate` was sent. */
  migrateMs: number;
  /** The migration completed: `migrate` plus the source's total-time. */
  doneMs: number;
}

/** One query-migrate sample of the source while the migration runs. */
export interface Sample {
  /** ms since the migration started (the migrating side's total-time). */
  t: number;
  status: string;
  transferred: number;
  remaining: number;
  mbps: number;
  dirtyPagesRate: number;
  /** dirty-sync-count: the pass the migration is in. */
  pass: number;
  /** auto-converge's throttle in force, when query-migrate shows one. */
  cpuThrottlePercentage?: number;
  /** expected-downtime, ms, while precopy iterates (query-migrate shows it then). */
  expectedDowntimeMs?: number;
}

/** CPU and memory of one process over one run. */
export interface ProcessUsage {
  /** user + system CPU seconds spent during the migration (all threads). */
  cpuSeconds: number;
  /** Peak resident set (VmHWM) over the process's life, guest RAM included. */
  peakRssBytes: number;
  /** cpuSeconds by thread role, user and system apart (thread-profile.ts): livemig and the loopback reference. */
  threads?: RoleCpu[];
}

/** CPU seconds the threads of one role spent while a process migrated. */
export interface RoleCpu {
  /**
   * main: the process's main thread; channel: a thread owning one connection
   * (a multifd channel, a loopback connection); vcpu; other: V8's and
   * libuv's threads, and whatever no role names.
   */
  role: string;
  /** How many threads took the role ('other': those seen while it ran). */
  threads: number;
  user: number;
  system: number;
}

export interface RunMetrics {
  ok: boolean;
  error?: string;
  totalTimeMs: number;
  setupTimeMs?: number;
  downtimeMs?: number;
  /** The last expected-downtime the source showed before its switchover: its promise (downtime-table.ts). */
  expectedDowntimeMs?: number;
  /** Guest RAM the migration covered (query-migrate ram.total). */
  ramBytes: number;
  /** Bytes on the wire for RAM (query-migrate ram.transferred). */
  wireBytes: number;
  /**
   * Bytes the loopback of the run's own network namespace carried while it
   * migrated (loopback-namespace.ts): the bytes on the wire as the kernel
   * counts them, for both engines alike. Compression scenarios only, and
   * only where a namespace could be made (root).
   */
  loopbackBytes?: number;
  /** ramBytes and wireBytes per second of total time, in GB/s (10^9). */
  guestGBps: number;
  wireGBps: number;
  dirtySyncCount?: number;
  /** Pages moved (with data and zero) per second of total time. */
  pagesPerSecond?: number;
  zeroPages?: number;
  normalPages?: number;
  /** For the loopback reference: sender and receiver; for a snapshot, the instance that loads it (from its start to the end of the load) is the destination. */
  source: ProcessUsage;
  destination: ProcessUsage;
  /**
   * Destination memory equals the source's (cmp, digests, keystream), or for
   * a postcopy run or a loaded snapshot the running guest's pattern holds
   * (the ab check), or for COLO the net-out peer saw the pair's output
   * whole and in order; null when not checked.
   */
  verified: boolean | null;
  series: Sample[];
  /** Postcopy scenarios only: the switch and what it cost the guest. */
  postcopy?: PostcopyMetrics;
  /** Background-snapshot scenarios only. */
  snapshot?: SnapshotMetrics;
  /** COLO scenarios only. */
  colo?: ColoMetrics;
  /** Convergence scenarios only. */
  convergence?: ConvergenceMetrics;
  /** The convergence predictor's sweep only: each rate's prediction and outcome. */
  predictor?: PredictorPoint[];
  /** Start-to-done scenarios only: from the destination's start to the migration's end. */
  startToDone?: StartToDoneMetrics;
  /** The guest-size series' livemig runs only: a dirty sync's cost at the run's guest size. */
  dirtySync?: DirtySyncCost;
}

/** What one dirty sync cost on a guest of a run's size, timed in the bench process (dirty-sync-cost.ts): medians, ms. */
export interface DirtySyncCost {
  /** Nothing written since the previous sync: the dirty log's scan alone. */
  cleanMs: number;
  /** `ab`'s default range written since the previous sync, page by page. */
  abRangeMs: number;
  /** The pages of that range. */
  abRangePages: number;
}

/** What one background snapshot cost the running guest. */
export interface SnapshotMetrics {
  /** Pages written ahead of the pass because the guest was about to write them (the source's "background snapshot written" log line). */
  faultedPages: number;
  /** The guest's pages/s summed over vCPUs (query-guest's vcpu-work), over ~1 s before `migrate`. */
  guestPagesPerSecondBefore: number;
  /** The same from `migrate` until the snapshot completed; unset if it ended before the first reading. */
  guestPagesPerSecondDuring?: number;
}

/** One COLO checkpoint as the primary's `__org.livemig_query-colo` reports it (its last-checkpoint). */
export interface ColoCheckpoint {
  id: number;
  /** periodic, mismatch, timeout (colo-compare asked for it) or request. */
  reason: string;
  /** From the checkpoint request until the secondary had loaded it. */
  ms: number;
  /** The primary guest stopped, until it ran again. */
  downtimeMs: number;
  pages: number;
  bytes: number;
}

/** One x-checkpoint-delay of a COLO run: a window of whole cycles of running and checkpointing. */
export interface ColoDelayMetrics {
  delayMs: number;
  /** From the end of the checkpoint the new delay took at once to the end of the window's last checkpoint. */
  windowMs: number;
  /** Checkpoints completed in the window (query-colo's count). */
  checkpoints: number;
  /** Medians over the checkpoints sampled. */
  checkpointMs: number;
  downtimeMs: number;
  pages: number;
  /** The primary guest's pages/s summed over vCPUs (vcpu-work) over the window. */
  guestPagesPerSecond: number;
  /** The window's checkpoints as query-colo showed them, polled every ~50 ms: one another followed within a poll is counted, not listed. */
  sampled: ColoCheckpoint[];
}

/** What checkpointing cost the running primary guest, at each x-checkpoint-delay in turn. */
export interface ColoMetrics {
  /** The primary guest's pages/s, over ~1 s before `migrate`. */
  guestPagesPerSecondBefore: number;
  delays: ColoDelayMetrics[];
  /** The primary's colo-compare at the end: packets released matched, released by a checkpoint, and mismatches. */
  compare: { matched: number; releasedAtCheckpoint: number; mismatches: number };
  /** Packets the net-out peer took, every one in order (a violation fails the run). */
  packetsReceived: number;
}

/** What one postcopy run measured (source and destination query-migrate, the source's MIGRATION events). */
export interface PostcopyMetrics {
  /** ms from the source's MIGRATION postcopy-active event to its completed event (their QMP timestamps). */
  switchoverToCompleteMs: number;
  /** ms from the source's STOP event to the destination's RESUME event: the guest's pause as seen from outside (both engines). */
  stopToResumeMs?: number;
  /** livemig only (`__org.livemig_postcopy`): ms from the stop until the source heard that the destination runs the guest. */
  stopToRunMs?: number;
  /** The source's ram.postcopy-requests: pages the destination asked for. */
  requests: number;
  /** The source's ram.postcopy-bytes: bytes sent after the switch. */
  postcopyBytes: number;
  /** livemig only (the destination's `__org.livemig_incoming.fault-latency-us`): each postcopy fault's wait, µs. */
  faultLatencyUs?: { count: number; p50: number; p99: number; max: number };
  /** The destination's postcopy-blocktime (ms all vCPUs waited at once; capability postcopy-blocktime). */
  blocktimeMs?: number;
  /** The destination's postcopy-vcpu-blocktime, ms per vCPU. */
  vcpuBlocktimeMs?: number[];
}

export type Family = 'loopback' | 'qemu' | 'livemig';

/**
 * multifd with a compression method, on random RAM or (-text) on RAM that
 * compresses like a real guest's (compressible-fill.ts).
 */
export type CompressionShape = `multifd-${Exclude<CompressionMethod, 'none'>}${'' | '-text'}`;

/** Which reference a livemig scenario is compared with (tls-: the same over x509 TLS). */
export type Shape = 'single' | 'multifd' | 'zero' | 'tls-single' | 'tls-multifd' | CompressionShape;

/** The numbers a scenario reports: the median of each over its successful runs. */
export interface Medians {
  totalTimeMs: number;
  setupTimeMs: number | null;
  downtimeMs: number | null;
  guestGBps: number;
  wireGBps: number;
  wireBytes: number;
  dirtySyncCount: number | null;
  pagesPerSecond: number | null;
  sourceCpuSeconds: number;
  destinationCpuSeconds: number;
  sourcePeakRssBytes: number;
  destinationPeakRssBytes: number;
  /** Compression scenarios whose bytes on the wire were counted: guest RAM ÷ loopbackBytes. */
  compressionRatio?: number;
  /** Postcopy scenarios only. */
  postcopy?: PostcopyMedians;
  /** Background-snapshot scenarios only. */
  snapshot?: SnapshotMedians;
  /** COLO scenarios only: one per x-checkpoint-delay, in the order run. */
  colo?: ColoDelayMedians[];
  /** Convergence scenarios only. */
  convergence?: ConvergenceMedians;
  /** Start-to-done scenarios only: each moment's median. */
  startToDone?: StartToDoneMetrics;
}

/** The medians of a postcopy scenario's PostcopyMetrics (null: the engine does not give the figure). */
export interface PostcopyMedians {
  switchoverToCompleteMs: number;
  stopToResumeMs: number | null;
  stopToRunMs: number | null;
  requests: number;
  postcopyBytes: number;
  faultCount: number | null;
  faultP50Us: number | null;
  faultP99Us: number | null;
  faultMaxUs: number | null;
  blocktimeMs: number | null;
}

/** The medians of a snapshot scenario's SnapshotMetrics. */
export interface SnapshotMedians {
  faultedPages: number;
  guestPagesPerSecondBefore: number;
  guestPagesPerSecondDuring: number | null;
  /** The median of each run's during ÷ before: the share of its speed the guest kept. */
  duringOverBefore: number | null;
}

/** The medians of one x-checkpoint-delay's ColoDelayMetrics over a COLO scenario's runs, with the guest's speed before and during. */
export type ColoDelayMedians = Omit<ColoDelayMetrics, 'guestPagesPerSecond' | 'sampled'> & {
  guestPagesPerSecondBefore: number;
  guestPagesPerSecondDuring: number;
  /** The median of each run's during ÷ before: the share of its speed the primary guest kept. */
  duringOverBefore: number;
};

export interface Ratio {
  /** The reference scenario's name. */
  reference: string;
  /**
   * guest GB/s of this scenario ÷ guest GB/s of the reference; for
   * postcopyVsQemu, the reference's switchover → completion time ÷ this
   * scenario's (above 1: livemig finishes postcopy sooner). The median of
   * the per-round pairs when `pairs` is set, else of the two medians.
   */
  value: number;
  /** Each round's ratio of the two runs taken side by side, their range, and which were flagged (pair-ratios.ts). */
  pairs?: PairStats;
}

export interface ScenarioResult {
  name: string;
  family: Family;
  description: string;
  /** What was set up: sizes, workload, transport, capabilities, parameters. */
  config: Record<string, unknown>;
  status: 'ok' | 'failed' | 'not-available';
  /** Why it failed or is not available. */
  note?: string;
  runs: RunMetrics[];
  median?: Medians;
  /** Index into runs of the run whose total time is the median (the one plotted). */
  medianRun?: number;
  vsQemu?: Ratio;
  vsLimit?: Ratio;
  /** Postcopy scenarios: against the same plan run by real QEMU. */
  postcopyVsQemu?: Ratio;
  /** Convergence scenarios: livemig ÷ QEMU under the same lever and limits. */
  convergenceVsQemu?: ConvergenceRatios;
}

export interface BenchResults {
  startedAt: string;
  finishedAt: string;
  machine: { cpus: number; memoryBytes: number; node: string; qemu: string | null; loadBefore: number[]; loadAfter: number[] };
  options: Record<string, unknown>;
  scenarios: ScenarioResult[];
  /** The rounds in which a reference moved more than `tolerance` (a fraction) from its median over the run, and the pairs each flagged. */
  drift?: { tolerance: number; rounds: RoundDrift[] };
}
