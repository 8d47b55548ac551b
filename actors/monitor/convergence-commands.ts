/**
 * `__org.livemig_query-convergence` (beyond QEMU): whether precopy would
 * reach the switchover, in how many passes and with what downtime, and
 * which lever would bring it (actors/convergence/). Every figure may be
 * given; otherwise, during a precopy that has synced once, the migration's
 * own (its dirty-pages-rate unless calc-dirty-rate measured the guest since
 * it started, the bandwidth it achieves, what is pending); before one, the
 * last calc-dirty-rate and max-bandwidth, for a migration started now with
 * the parameters set now.
 */
import { defineCommand, type QmpCommand } from '../../protocols/qmp/command.js';
import { genericError } from '../../protocols/qmp/errors.js';
import { CONVERGENCE_COMMAND } from '../../protocols/qmp/livemig-extensions.js';
import { qapi, type ArgumentsOf } from '../../protocols/qmp/schema.js';
import { PAGES_PER_MB, predictConvergence, type FigureSource, type LeverSettings } from '../convergence/convergence-prediction.js';
import { writeRateOfDistinct } from '../convergence/precopy-model.js';
import type { DirtyRateMeasurement } from '../dirty-rate/measurement.js';
import { TARGET_PAGE_SIZE } from '../guest/constants.js';
import { windowPagesAt } from '../outgoing/rate-limit.js';
import { MAX_DATA_PAGES } from '../ram/page-runs.js';
import { FIRST_PASS_END_SYNC } from '../ram/ram-stats.js';
import type { MonitorHost } from './host.js';

const ARGUMENTS = qapi.object({
  /** MB/s (MiB), as calc-dirty-rate reports it. */
  'dirty-rate': qapi.optional(qapi.uint64),
  /** Bytes per second. */
  bandwidth: qapi.optional(qapi.size),
  /** ms. */
  'downtime-limit': qapi.optional(qapi.uint64),
  /** Bytes the guest writes over. */
  'working-set': qapi.optional(qapi.size),
});

/** migrate_params_check's bound on downtime-limit. */
const MAX_DOWNTIME_LIMIT_MS = 2_000_000n;

export function convergenceCommands(host: MonitorHost, measurement: DirtyRateMeasurement): [string, QmpCommand][] {
  return [
    [CONVERGENCE_COMMAND, defineCommand({
      args: ARGUMENTS,
      run: (args) => predict(host, measurement, args),
    })],
  ];
}

function predict(host: MonitorHost, measurement: DirtyRateMeasurement, args: ArgumentsOf<typeof ARGUMENTS>) {
  const { options, guest } = host;
  const ramPages = guest.blocks.reduce((n, b) => n + b.size, 0) / TARGET_PAGE_SIZE;
  const workingSetPages = args['working-set'] === undefined ? ramPages : Number(args['working-set']) / TARGET_PAGE_SIZE;
  if (args['working-set'] !== undefined && (workingSetPages < 1 || workingSetPages > ramPages)) {
    throw genericError(`Parameter 'working-set' expects a size between ${TARGET_PAGE_SIZE} and the guest's RAM (${ramPages * TARGET_PAGE_SIZE})`);
  }
  if (args.bandwidth !== undefined && BigInt(args.bandwidth) === 0n) throw genericError("Parameter 'bandwidth' expects a size above 0");
  if (args['downtime-limit'] !== undefined && BigInt(args['downtime-limit']) > MAX_DOWNTIME_LIMIT_MS) {
    throw genericError("Parameter 'downtime-limit' expects an integer in the range of 0 to (2000 * 1000) ms");
  }
  // A precopy past the sync that ends its first pass has measured both figures itself.
  const m = host.sourceStatus === 'active' && host.outgoing && host.outgoing.stats.dirtySyncCount >= FIRST_PASS_END_SYNC ? host.outgoing.stats : undefined;

  let dirtyPagesRate: number;
  let dirtyRateSource: FigureSource;
  if (args['dirty-rate'] !== undefined) {
    [dirtyPagesRate, dirtyRateSource] = [Number(args['dirty-rate']) * PAGES_PER_MB, 'argument'];
  } else if (m && !measuredSince(measurement, host.outgoing!.startTime)) {
    // Distinct pages per dirty-sync period: short of the writes when the guest rewrites pages within one.
    [dirtyPagesRate, dirtyRateSource] = [m.dirtyPagesRate, 'migration'];
  } else {
    [dirtyPagesRate, dirtyRateSource] = [measuredRate(measurement, workingSetPages), 'calc-dirty-rate'];
  }

  let bandwidth: number;
  let bandwidthSource: FigureSource;
  if (args.bandwidth !== undefined) [bandwidth, bandwidthSource] = [Number(args.bandwidth), 'argument'];
  // mbps is megabits: × 10^6 / 8 bytes.
  else if (m && m.mbps > 0) [bandwidth, bandwidthSource] = [m.mbps * 125_000, 'migration'];
  else [bandwidth, bandwidthSource] = [options.maxBandwidth(), 'max-bandwidth'];

  const params = options.params;
  const avail = options.availSwitchoverBandwidth();
  const bandwidthPages = bandwidth / TARGET_PAGE_SIZE;
  const settings: LeverSettings = {
    enabled: {
      'auto-converge': options.caps['auto-converge'],
      'dirty-limit': options.caps['dirty-limit'],
      xbzrle: options.caps.xbzrle,
      'postcopy-ram': options.caps['postcopy-ram'],
    },
    cpuThrottleInitial: params['cpu-throttle-initial'],
    cpuThrottleIncrement: params['cpu-throttle-increment'],
    maxCpuThrottle: params['max-cpu-throttle'],
    vcpuDirtyLimit: Number(params['vcpu-dirty-limit']),
    smp: guest.smp,
    xbzrleCacheSize: Number(params['xbzrle-cache-size']),
    // max-postcopy-bandwidth 0 is no limit: at least precopy's bandwidth.
    postcopyPagesPerSecond: Number(params['max-postcopy-bandwidth']) / TARGET_PAGE_SIZE || bandwidthPages,
  };
  return predictConvergence({
    model: {
      pendingPages: m ? m.remainingPages : ramPages,
      bulkStage: !m,
      firstDirtyPass: m?.dirtySyncCount === FIRST_PASS_END_SYNC,
      workingSetPages,
      dirtyPagesRate,
      bandwidthPagesPerSecond: bandwidthPages,
      switchoverPagesPerSecond: avail > 0 ? avail / TARGET_PAGE_SIZE : bandwidthPages,
      downtimeLimitMs: args['downtime-limit'] === undefined ? options.downtimeLimit() : Number(args['downtime-limit']),
      // What the migration sends between two looks at the threshold: a rate window's worth.
      batchPages: windowPagesAt(options.maxBandwidth(), MAX_DATA_PAGES, TARGET_PAGE_SIZE),
      resendEncodingRate: 1,
    },
    dirtyRateSource,
    bandwidthSource,
    dirtySyncCount: m?.dirtySyncCount ?? 0,
  }, settings);
}

/** calc-dirty-rate measured the guest since `time` (ms since the epoch): its count of writes beats the migration's. */
function measuredSince(measurement: DirtyRateMeasurement, time: number): boolean {
  const info = measurement.query('millisecond');
  return info.status === 'measured' && info['start-time'] * 1000 >= time;
}

/** The last calc-dirty-rate's figure as page writes per second, or the reason there is none. */
function measuredRate(measurement: DirtyRateMeasurement, workingSetPages: number): number {
  const info = measurement.query('millisecond');
  const hint = 'give dirty-rate, or measure it with calc-dirty-rate';
  if (info.status === 'unstarted') throw genericError(`No dirty rate measured yet: ${hint}`);
  if (info.status === 'measuring') throw genericError('The dirty rate is still being measured: query-dirty-rate shows when it is done');
  const rate = info['dirty-rate']!;
  if (rate < 0) throw genericError(`The last calc-dirty-rate measured nothing: ${hint}`);
  const seconds = info['calc-time'] / 1000;
  return writeRateOfDistinct(rate * PAGES_PER_MB * seconds, seconds, workingSetPages);
}
