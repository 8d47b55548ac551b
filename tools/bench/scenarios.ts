/**
 * What the bench measures, after QEMU's guestperf: livemig scenarios along
 * guest size, workload, transport, capabilities, max-bandwidth and
 * downtime-limit, postcopy with and without preempt, TLS, background
 * snapshots, COLO; and the references measured in the same run (the
 * machine's loopback limit, real QEMU).
 */
import { MULTIFD_COMPRESSION_LEVEL } from './compression-plan.js';
import type { CompressionShape, Shape } from './results.js';
import type { CompressionMethod } from '../../protocols/multifd/constants.js';
import type { TlsMode } from './tls-credentials.js';
import {
  CONVERGENCE_BANDWIDTH, CONVERGENCE_DIRTY_RANGE, CONVERGENCE_DOWNTIME_LIMIT_MS, CONVERGENCE_RAM, CONVERGENCE_VCPU_DIRTY_LIMIT, CONVERGENCE_XBZRLE_CACHE,
  LEVER_BOUND_MS, NO_LEVER_BOUND_MS, type ConvergenceLever, type ConvergencePlan,
} from './convergence-plan.js';
import type { PredictorSweepPlan } from './predictor-plan.js';
import type { StartToDonePlan } from './start-to-done.js';
import { downtimeScenarios, type DowntimeSweepPoint } from './downtime-plan.js';

/** What the guest does and holds while it migrates. */
export type GuestWorkload =
  /** Stopped guest, every page holding random bytes (QEMU's -S guest with a urandom-filled memory file). */
  | { kind: 'random-filled' }
  /** Stopped guest, every page holding data that compresses like a real guest's (`--fill compressible`; QEMU: a memory file of the same pages). */
  | { kind: 'compressible-filled' }
  /** Stopped guest whose RAM was never written. */
  | { kind: 'zero' }
  /** Running: QEMU's migration-test guest, incrementing one byte of every page of a range (unset: ab's default, [1M, 100M)). */
  | { kind: 'ab'; range?: { start: number; end: number } }
  /** Running: dirtying `rate` random pages a second over `workingSet` bytes. */
  | { kind: 'dirty'; rate: number; workingSet: number };

/**
 * A postcopy migration as both engines run it (postcopy-plan.ts): precopy
 * held to `maxBandwidth`, so a guest that keeps dirtying its range never
 * converges; migrate-start-postcopy once the first pass is through (the
 * source's dirty-sync-count reaches 2); then the rest at
 * `maxPostcopyBandwidth` while the guest runs on the destination.
 */
export interface PostcopyPlan {
  preempt: boolean;
  /** bytes/s in precopy. */
  maxBandwidth: bigint;
  /** bytes/s after the switch; 0: unlimited (QEMU's default). */
  maxPostcopyBandwidth: bigint;
}

/**
 * A background snapshot instead of a migration (livemig-snapshot.ts): the
 * running guest written as of the instant `migrate` started, to this sink.
 */
export type SnapshotSink =
  /** file: on tmpfs: as fast as livemig writes. */
  | { kind: 'file' }
  /** exec: a reader copying the stream to such a file at `bytesPerSecond` (throttled-sink.mjs), slower than the pass: the guest's writes wait. */
  | { kind: 'exec'; bytesPerSecond: number };

/**
 * COLO instead of a migration (livemig-colo.ts): the guest migrated into a
 * primary/secondary pair, then checkpointed at each x-checkpoint-delay in
 * turn. Each delay is measured over a window that ends at a checkpoint's
 * end once it holds at least `minCheckpoints` and lasted `minWindowMs`.
 */
export interface ColoPlan {
  delaysMs: number[];
  minCheckpoints: number;
  minWindowMs: number;
}

export interface LivemigScenario {
  family: 'livemig';
  name: string;
  description: string;
  ram: number;
  workload: GuestWorkload;
  /** To the destination; unset for a snapshot, which has its sink instead. */
  transport?: 'tcp' | 'unix';
  multifd?: { channels: number; compression: CompressionMethod };
  /** Every channel over TLS with the bench's credentials (tls-credentials.ts); unset: plain. */
  tls?: TlsMode;
  /** bytes/s; unset: raised far above loopback, as for QEMU. */
  maxBandwidth?: bigint;
  /** ms; unset: the default (300). */
  downtimeLimit?: number;
  /** The reference it is compared with (same amount of like data only). */
  shape?: Shape;
  /** A postcopy migration (then max-bandwidth and downtime-limit above are unused), and the QEMU scenario running the same plan, if any. */
  postcopy?: PostcopyPlan & { reference?: string };
  /** A background snapshot to this sink instead of a migration (then transport, multifd, bandwidths and downtime-limit are unused). */
  snapshot?: SnapshotSink;
  /** COLO with this plan instead of a migration (then transport, multifd, bandwidths and downtime-limit are unused). */
  colo?: ColoPlan;
  /** A convergence run (convergence-plan.ts; then max-bandwidth and downtime-limit above are unused), and the QEMU scenario running the same plan. */
  convergence?: ConvergencePlan & { reference?: string };
  /** The convergence predictor's sweep (predictor-sweep.ts) instead of one migration (then workload, transport, bandwidths and downtime-limit above are unused). */
  predictorSweep?: PredictorSweepPlan;
  /** Timed from the destination's start (start-to-done.ts), and the QEMU scenario timed so. */
  startToDone?: { plan: StartToDonePlan; reference: string };
  /** vCPUs; unset: 1. */
  smp?: number;
  /** One point of a scaling series (scale-table.ts): along guest size against the QEMU run of that size, or along vCPUs. */
  scale?: { axis: 'ram' | 'vcpus'; reference?: string };
  /** One point of the downtime sweep (downtime-plan.ts). */
  downtimeSweep?: DowntimeSweepPoint;
  /** Part of the --quick set (the smoke test). */
  quick: boolean;
}

export interface QemuScenario {
  family: 'qemu';
  name: string;
  description: string;
  ram: number;
  /**
   * random / compressible / zero: a stopped guest (-S) whose RAM holds
   * random bytes, livemig's compressible pages (compressible-fill.ts), or
   * was never written; dirtying: the boot sector in qemu-dirty-guest/
   * running, adding 1 to the first byte of every page of [1 MiB, 100 MiB).
   */
  memory: 'random' | 'compressible' | 'zero' | 'dirtying';
  multifdChannels?: number;
  /** multifd-compression, at MULTIFD_COMPRESSION_LEVEL (compression-plan.ts); unset: none. */
  multifdCompression?: Exclude<CompressionMethod, 'none'>;
  /** Every channel over TLS with the bench's credentials, as for livemig; unset: plain. */
  tls?: TlsMode;
  /** Which livemig scenarios it is the reference of (precopy shapes). */
  shape?: Shape;
  postcopy?: PostcopyPlan;
  /** A convergence run of the dirtying guest (convergence-plan.ts). */
  convergence?: ConvergencePlan;
  /** Timed from the destination's start, migrated into as soon as its monitor answers (start-to-done.ts). */
  startToDone?: true;
  /** The QEMU point of a scaling series along guest size (scale-table.ts). */
  scale?: { axis: 'ram' };
  /** The downtime sweep's QEMU point at one limit: a convergence run with no lever (downtime-plan.ts). */
  downtimeSweep?: ConvergencePlan;
}

export interface LoopbackScenario {
  family: 'loopback';
  name: string;
  description: string;
  size: number;
  connections: number;
  shape: 'single' | 'multifd';
}

export type Scenario = LivemigScenario | QemuScenario | LoopbackScenario;

/** The references each shape is compared with. */
export const REFERENCES: Record<Shape, { qemu: string; limit?: string }> = {
  single: { qemu: 'qemu-precopy', limit: 'loopback-1' },
  multifd: { qemu: 'qemu-multifd2', limit: 'loopback-2' },
  zero: { qemu: 'qemu-zero' },
  // The loopback limit is plain TCP: no yardstick for TLS.
  'tls-single': { qemu: 'qemu-tls-precopy' },
  'tls-multifd': { qemu: 'qemu-tls-multifd2' },
  // The loopback limit moves bytes, not guest RAM compressed: no yardstick either.
  'multifd-zlib': { qemu: 'qemu-multifd2-zlib' },
  'multifd-zstd': { qemu: 'qemu-multifd2-zstd' },
  'multifd-zlib-text': { qemu: 'qemu-multifd2-zlib-text' },
  'multifd-zstd-text': { qemu: 'qemu-multifd2-zstd-text' },
};

const MiB = 1 << 20;

/**
 * What the postcopy guests dirty, over and over, one byte of every page:
 * QEMU's dirtying boot sector (qemu-dirty-guest/dirty.asm, where the range is fixed) and
 * livemig's `ab` guest, given the same range.
 */
export const POSTCOPY_DIRTY_RANGE = { start: MiB, end: 100 * MiB } as const;
/** Postcopy guests get at least this much RAM, whatever --size, so the whole range is RAM. */
export const POSTCOPY_MIN_RAM = 128 * MiB;
/**
 * Precopy's max-bandwidth in the postcopy scenarios: QEMU's default, at which
 * the dirtying guest never converges (its 99 MiB stay dirty while only
 * 128 MiB/s × the 300 ms downtime-limit, 38 MiB, could go in the downtime).
 */
export const POSTCOPY_PRECOPY_BANDWIDTH = 128n << 20n;
/** The paced scenarios' max-postcopy-bandwidth: the bulk flows steadily for ~0.8 s while the guest faults. */
export const POSTCOPY_PACED_BANDWIDTH = 128n << 20n;

/** The snapshot guests' vCPUs, each running `ab` over its half of the range. */
export const SNAPSHOT_SMP = 2;
/** Where the snapshot guests' `ab` range starts (it ends with RAM): most of RAM is written over and over. */
export const SNAPSHOT_AB_START = MiB;
/** The slow sink's rate: below the pass's speed to tmpfs, so the guest meets protected pages. */
export const SNAPSHOT_SLOW_SINK_RATE = 256 * MiB;

/**
 * The COLO guest, whatever --size: a primary and a secondary share this
 * machine's two cores, each guest running `ab` over the range below.
 */
export const COLO_RAM = 256 * MiB;
/** What the COLO guests' `ab` writes over and over: every checkpoint carries all of it. */
export const COLO_AB_RANGE = { start: MiB, end: 100 * MiB } as const;
/**
 * x-checkpoint-delay 200 ms to 5 s; each window holds at least 5
 * checkpoints and lasts at least 4 s (so the short delay is measured over
 * more): ~35 s of windows in all.
 */
export const COLO_PLAN: ColoPlan = { delaysMs: [200, 1000, 5000], minCheckpoints: 5, minWindowMs: 4000 };

/**
 * The predictor sweep's guest, whatever --size: every page data, so the
 * first pass lasts as the model takes it (4 s at 32 MiB/s). With half of it
 * written at random and a 300 ms downtime limit, precopy converges below
 * about 9600 writes/s: the sweep goes from a fifth of that to three times.
 */
export const PREDICTOR_RAM = 128 * MiB;
export const PREDICTOR_SWEEP: PredictorSweepPlan = {
  rates: [2000, 5000, 8000, 14_000, 30_000],
  workingSet: 64 * MiB,
  maxBandwidth: 32n * BigInt(MiB),
  downtimeLimit: 300,
  calcTimeMs: 1000,
  boundMs: 30_000,
};

/** How the TLS scenarios (both engines) describe their credentials. */
const TLS_X509 = 'TLS x509, verify-peer on both ends';

/** 1G, 256M, 64K: a size as the options take it. */
export function formatSize(bytes: number): string {
  for (const [unit, shift] of [['G', 30], ['M', 20], ['K', 10]] as const) {
    if (bytes >= 2 ** shift && bytes % 2 ** shift === 0) return `${bytes / 2 ** shift}${unit}`;
  }
  return `${bytes}`;
}

/** Every scenario for a guest of `size` bytes, references first (but the compression and convergence ones, each engine's beside the other's). */
export function allScenarios(size: number): Scenario[] {
  const s = formatSize(size);
  const small = Math.max(16 * MiB, Math.floor(size / 4 / MiB) * MiB);
  const workingSet = Math.min(256 * MiB, small);
  const filled = { kind: 'random-filled' } as const;
  const pcRam = Math.max(size, POSTCOPY_MIN_RAM);
  const pc = formatSize(pcRam);
  const plan = (preempt: boolean, maxPostcopyBandwidth = 0n): PostcopyPlan => ({ preempt, maxBandwidth: POSTCOPY_PRECOPY_BANDWIDTH, maxPostcopyBandwidth });
  const pcPlan = 'precopy at 128 MiB/s, migrate-start-postcopy after the first pass';
  const postcopy = (name: string, preempt: boolean, paced: boolean, quick = false) =>
    livemig(
      name,
      `${pc}, running 'ab' over [1M, 100M), ${pcPlan}, ${preempt ? 'preempt' : 'no preempt'}, postcopy bulk ${paced ? 'at 128 MiB/s' : 'unlimited'}`,
      {
        ram: pcRam,
        workload: { kind: 'ab' },
        // QEMU runs the unlimited plans only: the paced ones are for livemig's fault latency under a steady bulk flow.
        postcopy: paced
          ? plan(preempt, POSTCOPY_PACED_BANDWIDTH)
          : { ...plan(preempt), reference: preempt ? 'qemu-postcopy-preempt' : 'qemu-postcopy' },
        quick,
      },
    );
  const qemuPostcopy = (name: string, preempt: boolean): QemuScenario => ({
    family: 'qemu',
    name,
    description: `QEMU: ${pc}, dirtying boot sector over [1M, 100M) (TCG), ${pcPlan}, ${preempt ? 'preempt' : 'no preempt'}, postcopy bulk unlimited`,
    ram: pcRam,
    memory: 'dirtying',
    postcopy: plan(preempt),
  });
  const livemig = (
    name: string,
    description: string,
    rest: Partial<LivemigScenario> & Pick<LivemigScenario, 'workload'>,
  ): LivemigScenario => ({ family: 'livemig', name, description, ram: size, transport: 'tcp', quick: false, ...rest });
  const snapshot = (name: string, sink: SnapshotSink, to: string): LivemigScenario => ({
    family: 'livemig',
    name,
    description: `${s}, ${SNAPSHOT_SMP} vCPUs running 'ab' over [${formatSize(SNAPSHOT_AB_START)}, ${s}), background snapshot to ${to}`,
    ram: size,
    workload: { kind: 'ab' },
    snapshot: sink,
    quick: false,
  });
  const multifd = (channels: number, shape?: Shape, quick = false) =>
    livemig(
      `multifd${channels}`,
      `${s} random RAM, multifd ×${channels}, compression none`,
      { workload: filled, multifd: { channels, compression: 'none' }, ...(shape ? { shape } : {}), quick },
    );
  const qemuRandom = (name: string, shape: Shape, multifdChannels?: number, tls?: TlsMode): QemuScenario => ({
    family: 'qemu',
    name,
    description: `QEMU: ${s} random RAM, ${multifdChannels ? `multifd ×${multifdChannels}` : '1 channel'}, warm destination${tls ? `, ${TLS_X509}` : ''}`,
    ram: size,
    memory: 'random',
    ...(multifdChannels ? { multifdChannels } : {}),
    ...(tls ? { tls } : {}),
    shape,
  });
  return [
    { family: 'loopback', name: 'loopback-1', description: `Node.js limit: ${s} SAB → pre-faulted SAB, 1 connection`, size, connections: 1, shape: 'single' },
    { family: 'loopback', name: 'loopback-2', description: `Node.js limit: ${s}, 2 connections, a worker per connection each side`, size, connections: 2, shape: 'multifd' },
    qemuRandom('qemu-precopy', 'single'),
    qemuRandom('qemu-multifd2', 'multifd', 2),
    qemuRandom('qemu-tls-precopy', 'tls-single', undefined, 'x509'),
    qemuRandom('qemu-tls-multifd2', 'tls-multifd', 2, 'x509'),
    { family: 'qemu', name: 'qemu-zero', description: `QEMU: ${s} never-touched RAM, 1 channel`, ram: size, memory: 'zero', shape: 'zero' },
    qemuPostcopy('qemu-postcopy', false),
    qemuPostcopy('qemu-postcopy-preempt', true),
    livemig('precopy', `${s} random RAM, idle, tcp, 1 channel`, { workload: filled, shape: 'single', quick: true }),
    livemig('precopy-zero', `${s} never-touched RAM, idle, tcp`, { workload: { kind: 'zero' }, shape: 'zero', quick: true }),
    livemig('precopy-unix', `${s} random RAM, idle, unix socket`, { workload: filled, transport: 'unix' }),
    livemig('precopy-small', `${formatSize(small)} random RAM, idle, tcp (guest size)`, { workload: filled, ram: small }),
    livemig('ab', `${s}, running 'ab' (QEMU's migration-test guest), tcp`, { workload: { kind: 'ab' }, quick: true }),
    livemig('dirty-25k', `${s}, dirtying 25000 pages/s over ${formatSize(workingSet)}, tcp`, { workload: { kind: 'dirty', rate: 25_000, workingSet } }),
    livemig('dirty-25k-downtime-50', `as dirty-25k, downtime-limit 50 ms`, { workload: { kind: 'dirty', rate: 25_000, workingSet }, downtimeLimit: 50 }),
    livemig('bandwidth-512M', `${s} random RAM, max-bandwidth 512 MiB/s`, { workload: filled, maxBandwidth: 512n << 20n }),
    multifd(2, 'multifd', true),
    multifd(4),
    ...startToDoneScenarios(size),
    ...scaleScenarios(size),
    ...compressionScenarios(size),
    livemig('tls-precopy', `${s} random RAM, idle, tcp, 1 channel, ${TLS_X509}`, { workload: filled, tls: 'x509', shape: 'tls-single' }),
    livemig('tls-multifd2', `${s} random RAM, multifd ×2, compression none, ${TLS_X509}`, {
      workload: filled,
      multifd: { channels: 2, compression: 'none' },
      tls: 'x509',
      shape: 'tls-multifd',
    }),
    postcopy('postcopy', false, false),
    postcopy('postcopy-preempt', true, false, true),
    postcopy('postcopy-paced', false, true),
    postcopy('postcopy-preempt-paced', true, true),
    snapshot('snapshot', { kind: 'file' }, 'file: on tmpfs'),
    snapshot('snapshot-throttled', { kind: 'exec', bytesPerSecond: SNAPSHOT_SLOW_SINK_RATE }, `exec: a reader taking ${SNAPSHOT_SLOW_SINK_RATE / MiB} MiB/s`),
    {
      family: 'livemig',
      name: 'colo',
      description: `${formatSize(COLO_RAM)}, running 'ab' over [${formatSize(COLO_AB_RANGE.start)}, ${formatSize(COLO_AB_RANGE.end)}), migrated over tcp into a COLO pair, x-checkpoint-delay ${COLO_PLAN.delaysMs.join(', ')} ms in turn`,
      ram: COLO_RAM,
      workload: { kind: 'ab' },
      colo: COLO_PLAN,
      quick: false,
    },
    ...convergenceScenarios(),
    ...downtimeScenarios(),
    {
      family: 'livemig',
      name: 'predictor-sweep',
      description: `${formatSize(PREDICTOR_RAM)} random RAM, 'random' over its first ${formatSize(PREDICTOR_SWEEP.workingSet)} at ${PREDICTOR_SWEEP.rates.join(', ')} writes/s, ` +
        `max-bandwidth ${Number(PREDICTOR_SWEEP.maxBandwidth) / MiB} MiB/s: query-convergence's prediction, then the migration (cancelled after ${PREDICTOR_SWEEP.boundMs / 1000} s)`,
      ram: PREDICTOR_RAM,
      workload: { kind: 'dirty', rate: PREDICTOR_SWEEP.rates[0]!, workingSet: PREDICTOR_SWEEP.workingSet },
      predictorSweep: PREDICTOR_SWEEP,
      quick: false,
    },
  ];
}

/**
 * Start-to-done (start-to-done.ts) of multifd ×2 on random RAM, QEMU's
 * destination pre-allocating its RAM at start, livemig's migrated into at
 * once and once pre-faulted; the three side by side in a round.
 * `--scenario start` selects them.
 */
function startToDoneScenarios(size: number): (LivemigScenario | QemuScenario)[] {
  const s = formatSize(size);
  const qemu: QemuScenario = {
    family: 'qemu',
    name: 'qemu-multifd2-start',
    description: `QEMU: ${s} random RAM, multifd ×2, from the destination's start (prealloc=on) to done, migrated into as soon as its monitor answers`,
    ram: size,
    memory: 'random',
    multifdChannels: 2,
    startToDone: true,
  };
  const livemig = (plan: StartToDonePlan, when: string): LivemigScenario => ({
    family: 'livemig',
    name: `multifd2-start-${plan}`,
    description: `${s} random RAM, multifd ×2, from the destination's start to done, migrated into ${when}`,
    ram: size,
    workload: { kind: 'random-filled' },
    transport: 'tcp',
    multifd: { channels: 2, compression: 'none' },
    startToDone: { plan, reference: qemu.name },
    quick: false,
  });
  return [qemu, livemig('at-once', 'as soon as its monitor answers'), livemig('after-prefault', 'once its RAM is pre-faulted')];
}

/**
 * The guest sizes of the scaling series, as multiples of --size: 1G, 4G and
 * 8G by default. Only one pair lives at a time, and at 8G it takes 16 GiB of
 * this 24 GiB machine: livemig's two instances, or QEMU's two memory files
 * in /dev/shm (qemu-migration.ts removes both after each run of the series,
 * so neither waits there beside livemig's pair).
 */
const SCALE_RAM_FACTORS = [1, 4, 8];
/** The vCPU counts of the scaling series: up to four times this machine's cores. */
const SCALE_VCPUS = [1, 2, 4, 8];

/**
 * How cost grows: random RAM of one, four and eight times --size over one
 * channel, each beside QEMU's run of that size; and a guest of --size
 * running `ab` over its default range on 1, 2, 4 and 8 vCPUs (each vCPU its
 * slice: more vCPUs, more writes a second). `--scenario scale` selects them.
 */
function scaleScenarios(size: number): (LivemigScenario | QemuScenario)[] {
  const bySize = SCALE_RAM_FACTORS.flatMap((factor, i): (LivemigScenario | QemuScenario)[] => {
    const ram = size * factor;
    const s = formatSize(ram);
    const qemu: QemuScenario = {
      family: 'qemu',
      name: `qemu-scale-ram-${s}`,
      description: `QEMU: ${s} random RAM, 1 channel, warm destination (guest-size series)`,
      ram,
      memory: 'random',
      scale: { axis: 'ram' },
    };
    const livemig: LivemigScenario = {
      family: 'livemig',
      name: `scale-ram-${s}`,
      description: `${s} random RAM, idle, tcp, 1 channel (guest-size series)`,
      ram,
      workload: { kind: 'random-filled' },
      transport: 'tcp',
      scale: { axis: 'ram', reference: qemu.name },
      quick: false,
    };
    return i % 2 === 0 ? [qemu, livemig] : [livemig, qemu];
  });
  const byVcpus = SCALE_VCPUS.map((smp): LivemigScenario => ({
    family: 'livemig',
    name: `scale-vcpus-${smp}`,
    description: `${formatSize(size)}, ${smp} vCPU${smp > 1 ? 's' : ''} running 'ab' over its default range, tcp (vCPU series)`,
    ram: size,
    workload: { kind: 'ab' },
    transport: 'tcp',
    smp,
    scale: { axis: 'vcpus' },
    quick: false,
  }));
  return [...bySize, ...byVcpus];
}

/** The compression scenarios' channels, as qemu-multifd2's. */
const COMPRESSION_CHANNELS = 2;

/**
 * The compression scenarios, both engines', each livemig scenario beside
 * the QEMU one it is compared with (same method and level, channels, guest
 * size and bytes), the engine going first alternating from pair to pair, as
 * the convergence ones: zstd and zlib, on random RAM (what no codec
 * shrinks: the codec's cost alone) and on RAM that compresses like a real
 * guest's (-text). `--scenario zstd`, `zlib` or `text` selects theirs.
 */
function compressionScenarios(size: number): (LivemigScenario | QemuScenario)[] {
  const s = formatSize(size);
  const kinds = [
    { suffix: '', what: 'random RAM', memory: 'random', workload: { kind: 'random-filled' } },
    { suffix: '-text', what: 'compressible RAM (text, sparse, records, 15 % random)', memory: 'compressible', workload: { kind: 'compressible-filled' } },
  ] as const;
  const methods = ['zstd', 'zlib'] as const;
  return methods.flatMap((method) => kinds.map((kind) => ({ method, ...kind }))).flatMap(({ method, suffix, what, memory, workload }, i) => {
    const shape: CompressionShape = `multifd-${method}${suffix}`;
    const how = `multifd ×${COMPRESSION_CHANNELS}, ${method} level ${MULTIFD_COMPRESSION_LEVEL}`;
    const qemu: QemuScenario = {
      family: 'qemu',
      name: REFERENCES[shape].qemu,
      description: `QEMU: ${s} ${what}, ${how}, warm destination`,
      ram: size,
      memory,
      multifdChannels: COMPRESSION_CHANNELS,
      multifdCompression: method,
      shape,
    };
    const livemig: LivemigScenario = {
      family: 'livemig',
      name: `multifd${COMPRESSION_CHANNELS}-${method}${suffix}`,
      description: `${s} ${what}, ${how}`,
      ram: size,
      workload,
      transport: 'tcp',
      multifd: { channels: COMPRESSION_CHANNELS, compression: method },
      shape,
      quick: false,
    };
    return i % 2 === 0 ? [qemu, livemig] : [livemig, qemu];
  });
}

const LEVERS: { lever: ConvergenceLever; name: string; what: string }[] = [
  { lever: 'none', name: 'no-lever', what: 'no lever' },
  { lever: 'auto-converge', name: 'auto-converge', what: 'auto-converge (cpu-throttle-* defaults: 20 %, +10 %, at most 99 %)' },
  { lever: 'dirty-limit', name: 'dirty-limit', what: `dirty-limit (vcpu-dirty-limit ${CONVERGENCE_VCPU_DIRTY_LIMIT} MB/s)` },
  { lever: 'xbzrle', name: 'xbzrle', what: `XBZRLE (xbzrle-cache-size ${CONVERGENCE_XBZRLE_CACHE >> 20n} MiB)` },
];

/**
 * The convergence scenarios, both engines', each lever's QEMU and livemig
 * scenarios side by side (each round runs a livemig scenario beside its
 * reference, in the list's order, reversed every other round:
 * round-plan.ts), the engine going first alternating from lever to lever.
 * `--scenario conv-` selects them all.
 */
function convergenceScenarios(): (LivemigScenario | QemuScenario)[] {
  const limits = `max-bandwidth ${CONVERGENCE_BANDWIDTH >> 20n} MiB/s, downtime-limit ${CONVERGENCE_DOWNTIME_LIMIT_MS} ms`;
  const range = `[${CONVERGENCE_DIRTY_RANGE.start / MiB}M, ${CONVERGENCE_DIRTY_RANGE.end / MiB}M)`;
  return LEVERS.flatMap(({ lever, name, what }, i) => {
    const convergence: ConvergencePlan = {
      lever,
      maxBandwidth: CONVERGENCE_BANDWIDTH,
      downtimeLimit: CONVERGENCE_DOWNTIME_LIMIT_MS,
      boundMs: lever === 'none' ? NO_LEVER_BOUND_MS : LEVER_BOUND_MS,
    };
    const bound = `cancelled after ${convergence.boundMs / 1000} s`;
    const qemu: QemuScenario = {
      family: 'qemu',
      name: `qemu-conv-${name}`,
      description: `QEMU: ${CONVERGENCE_RAM / MiB}M, dirtying boot sector over ${range} (TCG), ${limits}, ${what}, ${bound}`,
      ram: CONVERGENCE_RAM,
      memory: 'dirtying',
      convergence,
    };
    const livemig: LivemigScenario = {
      family: 'livemig',
      name: `conv-${name}`,
      description: `${CONVERGENCE_RAM / MiB}M, running 'ab' over ${range}, tcp, ${limits}, ${what}, ${bound}`,
      ram: CONVERGENCE_RAM,
      workload: { kind: 'ab' },
      transport: 'tcp',
      convergence: { ...convergence, reference: qemu.name },
      quick: false,
    };
    return i % 2 === 0 ? [qemu, livemig] : [livemig, qemu];
  });
}

/** The names of the references a livemig scenario is compared with. */
export function referencesOf(s: LivemigScenario): string[] {
  return [
    ...(s.shape ? Object.values(REFERENCES[s.shape]) : []),
    ...(s.postcopy?.reference ? [s.postcopy.reference] : []),
    ...(s.convergence?.reference ? [s.convergence.reference] : []),
    ...(s.startToDone ? [s.startToDone.reference] : []),
    ...(s.scale?.reference ? [s.scale.reference] : []),
    ...(s.downtimeSweep ? [s.downtimeSweep.reference] : []),
  ];
}

/**
 * The scenarios to run: the --quick set or all livemig scenarios, narrowed
 * by --scenario filters (substrings of names), plus the references they are
 * compared with (and any reference a filter names).
 */
export function selectScenarios(all: Scenario[], options: { quick: boolean; filters: string[]; qemu: boolean }): Scenario[] {
  const named = (s: Scenario) => options.filters.some((f) => s.name.includes(f));
  const livemig = all.filter((s) => s.family === 'livemig' && (options.filters.length === 0 || named(s)) && (!options.quick || s.quick));
  const needed = new Set(livemig.flatMap((s) => (s.family === 'livemig' ? referencesOf(s) : [])));
  return all.filter((s) => {
    if (s.family === 'livemig') return livemig.includes(s);
    if (s.family === 'qemu' && !options.qemu) return false;
    return needed.has(s.name) || named(s);
  });
}
