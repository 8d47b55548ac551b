/**
 * The answer of `__org.livemig_query-convergence`: precopy's predicted
 * course (precopy-model.ts) from measured figures, and for each lever QEMU
 * offers against a guest that dirties too fast whether it would bring the
 * switchover, and with what setting. Members in QMP's kebab-case.
 */
import { TARGET_PAGE_SIZE } from '../guest/constants.js';
import { maxConvergingRate, minConvergingEncodingRate, pendingAfterFirstPass, predictPrecopy, type PrecopyInput } from './precopy-model.js';

/** vcpu-dirty-limit and calc-dirty-rate count MB as MiB (QEMU's qemu_target_pages_to_MiB). */
export const PAGES_PER_MB = (1 << 20) / TARGET_PAGE_SIZE;
/** An encoding rate beyond one byte per page is no encoding: the search for the one xbzrle needs stops there. */
const MAX_ENCODING_RATE = TARGET_PAGE_SIZE;

/** Where the figures came from. */
export type FigureSource = 'argument' | 'migration' | 'calc-dirty-rate' | 'max-bandwidth';

/** The migration parameters and guest figures the levers are judged with. */
export interface LeverSettings {
  /** Capabilities on now. */
  enabled: Record<LeverName, boolean>;
  cpuThrottleInitial: number;
  cpuThrottleIncrement: number;
  maxCpuThrottle: number;
  /** MB/s per vCPU. */
  vcpuDirtyLimit: number;
  smp: number;
  /** Bytes. */
  xbzrleCacheSize: number;
  /** Pages per second after a switch to postcopy. */
  postcopyPagesPerSecond: number;
}

export const LEVERS = ['auto-converge', 'dirty-limit', 'xbzrle', 'postcopy-ram'] as const;
export type LeverName = (typeof LEVERS)[number];

export interface LeverOutlook {
  /** The capability is on already. */
  enabled: boolean;
  /** Precopy would reach the switchover with it (postcopy: the switch needs no convergence). */
  converges: boolean;
}

export interface ConvergencePrediction {
  /** Page writes per second the prediction assumes, and in MB/s. */
  'dirty-pages-rate': number;
  'dirty-rate': number;
  'dirty-rate-source': FigureSource;
  /** Bytes per second in precopy. */
  bandwidth: number;
  'bandwidth-source': FigureSource;
  'downtime-limit': number;
  'working-set': number;
  /** Bytes: switchover bandwidth × downtime limit, below which a dirty sync switches over. */
  'threshold-size': number;
  converges: boolean;
  /** Passes until the switchover, or until precopy stalls. */
  passes: number;
  /** What query-migrate's dirty-sync-count would read once completed. */
  'dirty-sync-count'?: number;
  /** ms. */
  'expected-downtime'?: number;
  /** ms of precopy until the switchover. */
  'precopy-time'?: number;
  /** Not converging: bytes each dirty sync still finds pending. */
  'stall-size'?: number;
  levers: {
    'auto-converge': LeverOutlook & { 'cpu-throttle-percentage'?: number };
    'dirty-limit': LeverOutlook & { 'vcpu-dirty-limit'?: number };
    xbzrle: LeverOutlook & { 'xbzrle-cache-size': number; 'encoding-rate'?: number };
    'postcopy-ram': LeverOutlook & { 'postcopy-bytes': number; 'postcopy-time': number };
  };
}

export interface PredictionFigures {
  model: PrecopyInput;
  dirtyRateSource: FigureSource;
  bandwidthSource: FigureSource;
  /** dirty-sync-count so far: 0 before a migration. */
  dirtySyncCount: number;
}

/** The prediction, and each lever's outlook. */
export function predictConvergence(figures: PredictionFigures, settings: LeverSettings): ConvergencePrediction {
  const { model } = figures;
  const precopy = predictPrecopy(model);
  const bytes = (pages: number) => Math.round(pages * TARGET_PAGE_SIZE);
  // QEMU counts a sync at setup, one after each pass, and one in the stop-and-copy.
  const syncsBefore = figures.dirtySyncCount > 0 ? figures.dirtySyncCount : 1;
  return {
    'dirty-pages-rate': Math.round(model.dirtyPagesRate),
    'dirty-rate': Math.round(model.dirtyPagesRate / PAGES_PER_MB),
    'dirty-rate-source': figures.dirtyRateSource,
    bandwidth: bytes(model.bandwidthPagesPerSecond),
    'bandwidth-source': figures.bandwidthSource,
    'downtime-limit': model.downtimeLimitMs,
    'working-set': bytes(model.workingSetPages),
    'threshold-size': bytes((model.switchoverPagesPerSecond * model.downtimeLimitMs) / 1000),
    converges: precopy.converges,
    passes: precopy.passes,
    ...(precopy.converges
      ? {
        'dirty-sync-count': syncsBefore + precopy.passes + 1,
        'expected-downtime': Math.round(precopy.expectedDowntimeMs!),
        'precopy-time': Math.round(precopy.precopyTimeMs!),
      }
      : { 'stall-size': bytes(precopy.stallPages!) }),
    levers: {
      'auto-converge': autoConverge(model, settings, precopy.converges),
      'dirty-limit': dirtyLimit(model, settings, precopy.converges),
      xbzrle: xbzrle(model, settings),
      'postcopy-ram': postcopy(model, settings),
    },
  };
}

/**
 * auto-converge throttles the vCPUs (cpu-throttle-initial, then up by
 * cpu-throttle-increment up to max-cpu-throttle), and a throttled guest
 * dirties in proportion to the CPU time it keeps: the first step at or
 * above the throttle the model needs.
 */
function autoConverge(model: PrecopyInput, s: LeverSettings, converges: boolean): ConvergencePrediction['levers']['auto-converge'] {
  const enabled = s.enabled['auto-converge'];
  if (converges) return { enabled, converges, 'cpu-throttle-percentage': 0 };
  const needed = 100 * (1 - maxConvergingRate(model) / model.dirtyPagesRate);
  for (let step = s.cpuThrottleInitial; ; step = Math.min(step + s.cpuThrottleIncrement, s.maxCpuThrottle)) {
    if (step >= needed) return { enabled, converges: true, 'cpu-throttle-percentage': step };
    if (step >= s.maxCpuThrottle) return { enabled, converges: false };
  }
}

/** dirty-limit caps each vCPU's page writes at vcpu-dirty-limit MB/s: whether the parameter's cap does, and the highest one that does. */
function dirtyLimit(model: PrecopyInput, s: LeverSettings, converges: boolean): ConvergencePrediction['levers']['dirty-limit'] {
  const enabled = s.enabled['dirty-limit'];
  if (converges) return { enabled, converges };
  const capped = Math.min(model.dirtyPagesRate, s.vcpuDirtyLimit * PAGES_PER_MB * s.smp);
  const works = Math.floor(maxConvergingRate(model) / PAGES_PER_MB / s.smp);
  return {
    enabled,
    converges: predictPrecopy({ ...model, dirtyPagesRate: capped }).converges,
    // QEMU's least vcpu-dirty-limit is 1 MB/s.
    ...(works >= 1 ? { 'vcpu-dirty-limit': works } : {}),
  };
}

/**
 * xbzrle sends a page again as its difference from the cached copy, which
 * needs the working set in xbzrle-cache-size: the encoding rate the resent
 * pages would need. How well the guest's writes encode only a migration
 * shows (query-migrate's xbzrle-cache encoding-rate).
 */
function xbzrle(model: PrecopyInput, s: LeverSettings): ConvergencePrediction['levers']['xbzrle'] {
  const cacheNeeded = Math.max(TARGET_PAGE_SIZE, 2 ** Math.ceil(Math.log2(model.workingSetPages * TARGET_PAGE_SIZE)));
  const rate = minConvergingEncodingRate(model, MAX_ENCODING_RATE);
  return {
    enabled: s.enabled.xbzrle,
    converges: rate !== undefined && s.xbzrleCacheSize >= cacheNeeded,
    'xbzrle-cache-size': cacheNeeded,
    ...(rate !== undefined ? { 'encoding-rate': Math.round(rate * 100) / 100 } : {}),
  };
}

/** Postcopy switches after the first pass whatever the guest dirties: what is pending then goes after the switch. */
function postcopy(model: PrecopyInput, s: LeverSettings): ConvergencePrediction['levers']['postcopy-ram'] {
  const pages = pendingAfterFirstPass(model);
  return {
    enabled: s.enabled['postcopy-ram'],
    converges: true,
    'postcopy-bytes': Math.round(pages * TARGET_PAGE_SIZE),
    'postcopy-time': Math.round((pages / s.postcopyPagesPerSecond) * 1000),
  };
}
