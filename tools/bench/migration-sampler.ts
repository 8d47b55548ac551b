/**
 * Samples the source's query-migrate every ~50 ms while a migration runs
 * (what QEMU's guestperf records), giving the per-pass series the report
 * plots: transferred, remaining, mbps, dirty rate and pass over time; and
 * once more at each dirty sync (MIGRATION_PASS) and as the switchover
 * starts, since the last passes and the downtime are often shorter than the
 * period: the expected-downtime the source switched over on must be in the
 * series (downtime-table.ts).
 */
import type { QmpClient } from '../../protocols/qmp/client.js';
import type { QmpEvent } from '../../protocols/qmp/types.js';
import type { Sample } from './results.js';

const SAMPLE_EVERY_MS = 50;
const MOVING = new Set(['active', 'device', 'pre-switchover', 'postcopy-active', 'cancelling']);
/** The MIGRATION statuses that start a precopy switchover. */
const SWITCHOVER = new Set(['pre-switchover', 'device']);

export interface Sampler {
  /** Stops sampling; resolves with the samples taken, ordered by time. */
  stop(): Promise<Sample[]>;
}

export function sampleMigration(qmp: QmpClient): Sampler {
  const samples: Sample[] = [];
  let stopped = false;
  /** One query-migrate: false once the monitor stops answering (the process went away). */
  const take = async (): Promise<Sample | false | undefined> => {
    const info = await qmp.execute<Record<string, unknown>>('query-migrate').catch(() => undefined);
    if (!info) return false;
    const sample = toSample(info);
    if (sample) samples.push(sample);
    return sample;
  };
  const loop = (async () => {
    while (!stopped) {
      const started = Date.now();
      const sample = await take();
      // The end is one point; the final query-migrate closes the series.
      if (sample === false || sample?.status === 'completed') break;
      await new Promise((r) => setTimeout(r, Math.max(0, SAMPLE_EVERY_MS - (Date.now() - started))));
    }
  })();
  const extra: Promise<unknown>[] = [];
  const onPass = () => {
    if (!stopped) extra.push(take());
  };
  const onMigration = (event: QmpEvent) => {
    if (SWITCHOVER.has(String(event.data?.status))) onPass();
  };
  qmp.events.on('MIGRATION_PASS', onPass);
  qmp.events.on('MIGRATION', onMigration);
  return {
    async stop() {
      stopped = true;
      qmp.events.off('MIGRATION_PASS', onPass);
      qmp.events.off('MIGRATION', onMigration);
      await Promise.all([loop, ...extra]);
      return samples.sort((a, b) => a.t - b.t);
    },
  };
}

/** A query-migrate answer as a sample, when the migration is moving pages. */
export function toSample(info: Record<string, unknown>): Sample | undefined {
  const status = String(info.status);
  const ram = info.ram as Record<string, number> | undefined;
  const t = info['total-time'];
  if (!ram || typeof t !== 'number' || !(MOVING.has(status) || status === 'completed')) return undefined;
  return {
    t,
    status,
    transferred: Number(ram.transferred ?? 0),
    remaining: status === 'completed' ? 0 : Number(ram.remaining ?? 0),
    mbps: Number(ram.mbps ?? 0),
    dirtyPagesRate: Number(ram['dirty-pages-rate'] ?? 0),
    pass: Number(ram['dirty-sync-count'] ?? 0),
    ...(typeof info['cpu-throttle-percentage'] === 'number' ? { cpuThrottlePercentage: info['cpu-throttle-percentage'] } : {}),
    ...(typeof info['expected-downtime'] === 'number' ? { expectedDowntimeMs: info['expected-downtime'] } : {}),
  };
}
