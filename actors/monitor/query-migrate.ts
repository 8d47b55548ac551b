import type { JsonObject } from '../../protocols/qmp/types.js';
import { EXTENSION_PREFIX } from '../../protocols/qmp/livemig-extensions.js';
import type { SourceMigrationInfo } from '../outgoing/source-migration.js';
import { TARGET_PAGE_SIZE } from '../guest/constants.js';
import { XbzrleCounters } from '../ram/xbzrle-counters.js';
import type { MonitorHost } from './host.js';

/**
 * query-migrate, filled per status as QEMU 8.2's fill_source_migration_info
 * and fill_destination_migration_info do (checked against QEMU's own
 * answers: tools/qmp-compare/). The source's status wins unless it
 * is `none`; then the destination's is shown. Figures beyond QEMU's go under
 * the livemig extension key.
 */
export function queryMigrate(host: MonitorHost): JsonObject {
  const info: JsonObject = {};
  const blockers = host.guest.blockers();
  if (blockers.length > 0) info['blocked-reasons'] = blockers;
  const status = host.sourceStatus;
  if (status !== 'none') return { ...info, ...sourceInfo(host) };
  const incoming = host.destinationStatus;
  if (incoming === 'none') return info;
  // While it only listens, QEMU's incoming state is still none: no status, only where it listens.
  if (incoming !== 'setup') info.status = incoming;
  const detail = host.incomingInfo();
  if (detail) {
    // Where it listens: for the stream, or (postcopy-paused, after migrate-recover) for the source's return.
    if (detail.socketAddress.length > 0 && ['setup', 'active', 'postcopy-paused', 'postcopy-recover'].includes(incoming)) {
      info['socket-address'] = detail.socketAddress as unknown as JsonObject[];
    }
    info[`${EXTENSION_PREFIX}incoming`] = {
      bytes: detail.bytes,
      pages: detail.pages,
      'zero-pages': detail.zeroPages,
      ...(detail.startTime && detail.endTime ? { 'load-time': detail.endTime - detail.startTime } : {}),
      ...(detail.postcopyRequests > 0 ? { 'postcopy-requests': detail.postcopyRequests } : {}),
      ...(detail.faultLatency ? { 'fault-latency-us': { ...detail.faultLatency } } : {}),
    };
  }
  // QEMU shows blocktime once the incoming migration has completed.
  if (incoming === 'completed' && detail?.blocktime) {
    info['postcopy-blocktime'] = detail.blocktime.total;
    info['postcopy-vcpu-blocktime'] = detail.blocktime.perVcpu;
  }
  const error = host.destinationError;
  if (incoming === 'failed' && error) info['error-desc'] = error;
  return info;
}

function sourceInfo(host: MonitorHost): JsonObject {
  const status = host.sourceStatus;
  const m = host.outgoing;
  const info: JsonObject = { status };
  switch (status) {
    case 'setup':
      return info;
    case 'active':
    case 'cancelling':
    case 'pre-switchover':
    case 'device':
    case 'postcopy-active':
    case 'postcopy-paused':
    case 'postcopy-recover':
      if (m) {
        info['total-time'] = Date.now() - m.startTime;
        // QEMU: an estimate while precopy iterates; postcopy has had its downtime.
        if (m.downtime !== undefined) info.downtime = m.downtime;
        else info['expected-downtime'] = m.expectedDowntime;
        if (m.setupTime !== undefined) info['setup-time'] = m.setupTime;
        info.ram = m.stats.toQmp(false);
        Object.assign(info, xbzrleFigures(host, m), compressionFigures(m));
        if (m.cpuThrottlePercentage > 0) info['cpu-throttle-percentage'] = m.cpuThrottlePercentage;
        Object.assign(info, dirtyLimitFigures(host));
        if (m.stopToRun !== undefined) info[`${EXTENSION_PREFIX}postcopy`] = postcopyFigures(m);
      }
      return info;
    case 'completed':
      if (m) {
        info['total-time'] = (m.endTime ?? Date.now()) - m.startTime;
        if (m.downtime !== undefined) info.downtime = m.downtime;
        if (m.setupTime !== undefined) info['setup-time'] = m.setupTime;
        info.ram = m.stats.toQmp(true);
        Object.assign(info, xbzrleFigures(host, m), compressionFigures(m));
        Object.assign(info, dirtyLimitFigures(host));
        if (m.stopToRun !== undefined) info[`${EXTENSION_PREFIX}postcopy`] = postcopyFigures(m);
      }
      return info;
    case 'failed': {
      const error = host.sourceError;
      if (error) info['error-desc'] = error;
      return info;
    }
    default:
      return info;
  }
}

/**
 * QEMU's populate_ram_info: with the xbzrle capability on (now: QEMU reads
 * it at each query), the page cache's figures, those of the last migration
 * that used it, else zeros.
 */
function xbzrleFigures(host: MonitorHost, m: SourceMigrationInfo): JsonObject {
  if (!host.options.caps.xbzrle) return {};
  const counters = m.xbzrle ?? new XbzrleCounters(0);
  return { 'xbzrle-cache': counters.toQmp(host.options.params['xbzrle-cache-size']) };
}

/**
 * QEMU's populate_ram_info: with the dirty-limit capability on and vCPU
 * limits in force, the longest a vCPU sleeps per dirty-ring-full round and
 * how long a ring takes to fill at the vCPUs' average dirty rate (µs).
 */
function dirtyLimitFigures(host: MonitorHost): JsonObject {
  const limits = host.dirtyLimits;
  if (!host.options.caps['dirty-limit'] || !limits.inService) return {};
  return { 'dirty-limit-throttle-time-per-round': limits.throttleTimePerRound(), 'dirty-limit-ring-full-time': limits.ringFullTime() };
}

/**
 * livemig's multifd compression figures, when the channels compressed:
 * pages through the compressor, their bytes on the wire and the ratio (as
 * QEMU's compression-rate for its compress threads), and the pages sent
 * raw because they would not shrink.
 */
function compressionFigures(m: SourceMigrationInfo): JsonObject {
  const c = m.stats.multifdCompression;
  if (c === undefined) return {};
  return {
    [`${EXTENSION_PREFIX}multifd-compression`]: {
      'compressed-pages': c.compressedPages,
      'compressed-bytes': c.compressedBytes,
      'compression-rate': c.compressedBytes === 0 ? 0 : (c.compressedPages * TARGET_PAGE_SIZE) / c.compressedBytes,
      'raw-pages': c.rawPages,
    },
  };
}

/** livemig's postcopy figures: how long the guest was stopped until it ran on the destination, and what release-ram gave back. */
function postcopyFigures(m: SourceMigrationInfo): JsonObject {
  return { 'stop-to-run': m.stopToRun ?? 0, 'released-bytes': m.releasedBytes };
}
