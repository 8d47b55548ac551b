/** Turns a migration's final query-migrate (QEMU's or livemig's: the same shape) into a run's metrics. */
import type { ProcessUsage, RunMetrics, Sample } from './results.js';

/**
 * Where a precopy source shows expected-downtime: while it iterates and
 * until its downtime ends (then it shows the downtime). The last of those
 * samples holds the estimate it switched over on: both engines work it out
 * from their last dirty sync while iterating, and livemig's monitor may
 * answer the query sent at the deciding sync only once the guest is stopped.
 */
const SHOWS_EXPECTED_DOWNTIME = new Set(['active', 'pre-switchover', 'device']);

export function migrationMetrics(
  final: Record<string, unknown>,
  usage: { source: ProcessUsage; destination: ProcessUsage },
  verified: boolean | null,
  series: Sample[],
): RunMetrics {
  const ram = (final.ram ?? {}) as Record<string, number>;
  const totalTimeMs = Number(final['total-time'] ?? 0);
  const ramBytes = Number(ram.total ?? 0);
  const wireBytes = Number(ram.transferred ?? 0);
  const seconds = totalTimeMs / 1000;
  const pages = Number(ram.normal ?? 0) + Number(ram.duplicate ?? 0);
  const ok = final.status === 'completed' && verified !== false;
  const error = final.status !== 'completed'
    ? `migration ${String(final.status)}${final['error-desc'] ? `: ${String(final['error-desc'])}` : ''}`
    : verified === false ? 'the destination memory differs from the source' : undefined;
  const last = series.at(-1);
  const promised = series.findLast((s) => SHOWS_EXPECTED_DOWNTIME.has(s.status) && s.expectedDowntimeMs !== undefined)?.expectedDowntimeMs;
  return {
    ok,
    ...(error ? { error } : {}),
    totalTimeMs,
    ...(typeof final['setup-time'] === 'number' ? { setupTimeMs: final['setup-time'] } : {}),
    ...(typeof final.downtime === 'number' ? { downtimeMs: final.downtime } : {}),
    ...(promised !== undefined ? { expectedDowntimeMs: promised } : {}),
    ramBytes,
    wireBytes,
    guestGBps: seconds > 0 ? ramBytes / 1e9 / seconds : 0,
    wireGBps: seconds > 0 ? wireBytes / 1e9 / seconds : 0,
    ...(ram['dirty-sync-count'] !== undefined ? { dirtySyncCount: Number(ram['dirty-sync-count']) } : {}),
    ...(seconds > 0 ? { pagesPerSecond: Math.round(pages / seconds) } : {}),
    ...(ram.duplicate !== undefined ? { zeroPages: Number(ram.duplicate) } : {}),
    ...(ram.normal !== undefined ? { normalPages: Number(ram.normal) } : {}),
    ...usage,
    verified,
    // The final answer closes the series (the sampler may have missed the last moments).
    series: final.status === 'completed' && (!last || last.t < totalTimeMs)
      ? [...series, { t: totalTimeMs, status: 'completed', transferred: wireBytes, remaining: 0, mbps: Number(ram.mbps ?? 0), dirtyPagesRate: 0, pass: Number(ram['dirty-sync-count'] ?? 0) }]
      : series,
  };
}

/** A failed run's metrics, its error followed by the last `lines` lines of each instance's log (those that wrote any). */
export function failedRunWithLogs(err: unknown, instances: readonly { stderr(): string }[], lines = 3): RunMetrics {
  const logs = instances.map((i) => i.stderr().trim().split('\n').slice(-lines).join('\n')).filter(Boolean).join('\n');
  return failedRun(`${(err as Error).message}${logs ? `\n${logs}` : ''}`);
}

/** The metrics of a run that did not get to migrate (setup failed, timed out). */
export function failedRun(error: string): RunMetrics {
  const none = { cpuSeconds: 0, peakRssBytes: 0 };
  return { ok: false, error, totalTimeMs: 0, ramBytes: 0, wireBytes: 0, guestGBps: 0, wireGBps: 0, source: none, destination: none, verified: null, series: [] };
}
