/**
 * The postcopy plan both engines run (scenarios.ts's PostcopyPlan): the
 * capabilities and parameters, migrate-start-postcopy sent once the first
 * pass is through, the moments of the switch from the source's MIGRATION
 * events, and the figures of a completed run.
 */
import type { QmpClient } from '../../protocols/qmp/client.js';
import type { QmpEvent } from '../../protocols/qmp/types.js';
import { EXTENSION_PREFIX } from '../../protocols/qmp/livemig-extensions.js';
import type { MigrationPlan } from '../orchestrate.js';
import type { PostcopyMetrics } from './results.js';
import type { PostcopyPlan } from './scenarios.js';
import { waitUntil } from './wait-until.js';

/** How often the source is asked whether its first pass is through. */
const FIRST_PASS_POLL_MS = 10;
/** QEMU may send its MIGRATION completed event a little after query-migrate says completed, or before. */
const COMPLETED_EVENT_GRACE_MS = 2000;
const FINAL = ['completed', 'failed', 'cancelled'];

/**
 * postcopy-ram on both sides (set before incoming starts, as QEMU needs),
 * postcopy-blocktime (a destination capability; the source ignores it),
 * postcopy-preempt as the plan says; max-bandwidth for precopy and
 * max-postcopy-bandwidth after the switch.
 */
export function postcopyMigrationPlan(uri: string, plan: PostcopyPlan): MigrationPlan {
  return {
    uri,
    caps: [
      { capability: 'postcopy-ram', state: true },
      { capability: 'postcopy-blocktime', state: true },
      ...(plan.preempt ? [{ capability: 'postcopy-preempt', state: true } as const] : []),
    ],
    params: [{ 'max-bandwidth': plan.maxBandwidth, 'max-postcopy-bandwidth': plan.maxPostcopyBandwidth }],
  };
}

/**
 * The moments of the switch, ms, from the events' QMP timestamps (both
 * processes stamp them from the host's wall clock): the source's MIGRATION
 * postcopy-active and completed, its STOP, the destination's RESUME; and any
 * refusal of migrate-start-postcopy.
 */
export interface SwitchMoments {
  postcopyActiveAt?: number;
  completedAt?: number;
  sourceStopAt?: number;
  destinationResumeAt?: number;
  requestError?: string;
}

export interface PostcopyFollower {
  /** Stops asking; resolves with the moments seen (waiting briefly for a completed event still to come). */
  stop(): Promise<SwitchMoments>;
}

/**
 * Follows a migration the source has just been told to start: once its
 * dirty-sync-count reaches 2 (the first pass is through, on QEMU and on
 * livemig alike) it sends migrate-start-postcopy; meanwhile it notes the
 * moments of the switch. Call it before `migrate`, so no event is missed:
 * the source's guest runs until the switch, so its first STOP is the
 * switch's, and the destination's first RESUME is the guest running there.
 */
export function followPostcopy(src: QmpClient, dst: QmpClient): PostcopyFollower {
  const moments: SwitchMoments = {};
  const ms = (event: QmpEvent) => event.timestamp.seconds * 1000 + event.timestamp.microseconds / 1000;
  const onMigration = (event: QmpEvent) => {
    if (event.data?.status === 'postcopy-active') moments.postcopyActiveAt ??= ms(event);
    if (event.data?.status === 'completed') moments.completedAt ??= ms(event);
  };
  const onStop = (event: QmpEvent) => (moments.sourceStopAt ??= ms(event));
  const onResume = (event: QmpEvent) => (moments.destinationResumeAt ??= ms(event));
  src.events.on('MIGRATION', onMigration);
  src.events.on('STOP', onStop);
  dst.events.on('RESUME', onResume);
  let stopped = false;
  const loop = (async () => {
    while (!stopped) {
      const info = await src.execute<Record<string, unknown>>('query-migrate').catch(() => undefined);
      if (!info || FINAL.includes(info.status as string)) return;
      const ram = info.ram as Record<string, unknown> | undefined;
      if (Number(ram?.['dirty-sync-count'] ?? 0) >= 2) {
        await src.execute('migrate-start-postcopy').catch((err: Error) => (moments.requestError = err.message));
        return;
      }
      await new Promise((r) => setTimeout(r, FIRST_PASS_POLL_MS));
    }
  })();
  return {
    async stop() {
      stopped = true;
      await loop;
      if (moments.postcopyActiveAt !== undefined) {
        await waitUntil(COMPLETED_EVENT_GRACE_MS, 'the MIGRATION completed event', () => moments.completedAt !== undefined).catch(() => {});
      }
      src.events.off('MIGRATION', onMigration);
      src.events.off('STOP', onStop);
      dst.events.off('RESUME', onResume);
      return moments;
    },
  };
}

/**
 * The figures of a completed postcopy run, from the source's and the
 * destination's final query-migrate (QEMU's members, and livemig's
 * extensions where livemig has them), or why the run is no postcopy run.
 */
export function postcopyFigures(
  source: Record<string, unknown>,
  destination: Record<string, unknown>,
  moments: SwitchMoments,
): PostcopyMetrics | { error: string } {
  if (moments.postcopyActiveAt === undefined) {
    const why = moments.requestError ? `migrate-start-postcopy: ${moments.requestError}` : 'precopy finished first';
    return { error: `the migration never switched to postcopy (${why})` };
  }
  if (moments.completedAt === undefined) return { error: 'the source sent no MIGRATION completed event' };
  const ram = (source.ram ?? {}) as Record<string, unknown>;
  const livemig = source[`${EXTENSION_PREFIX}postcopy`] as Record<string, number> | undefined;
  const incoming = destination[`${EXTENSION_PREFIX}incoming`] as Record<string, unknown> | undefined;
  const faults = incoming?.['fault-latency-us'] as PostcopyMetrics['faultLatencyUs'] | undefined;
  const blocktime = destination['postcopy-blocktime'];
  const vcpuBlocktime = destination['postcopy-vcpu-blocktime'];
  const { sourceStopAt, destinationResumeAt } = moments;
  return {
    switchoverToCompleteMs: toTenths(moments.completedAt - moments.postcopyActiveAt),
    ...(sourceStopAt !== undefined && destinationResumeAt !== undefined ? { stopToResumeMs: toTenths(destinationResumeAt - sourceStopAt) } : {}),
    ...(typeof livemig?.['stop-to-run'] === 'number' ? { stopToRunMs: livemig['stop-to-run'] } : {}),
    requests: Number(ram['postcopy-requests'] ?? 0),
    postcopyBytes: Number(ram['postcopy-bytes'] ?? 0),
    ...(faults ? { faultLatencyUs: { count: faults.count, p50: faults.p50, p99: faults.p99, max: faults.max } } : {}),
    ...(typeof blocktime === 'number' ? { blocktimeMs: blocktime } : {}),
    ...(Array.isArray(vcpuBlocktime) ? { vcpuBlocktimeMs: vcpuBlocktime.map(Number) } : {}),
  };
}

/** ms to 0.1 ms: event timestamps are in µs, two processes' clocks agree to a fraction of a ms. */
function toTenths(ms: number): number {
  return Math.round(ms * 10) / 10;
}
