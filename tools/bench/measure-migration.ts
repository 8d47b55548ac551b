/**
 * One measured migration between two started instances, livemig's or
 * QEMU's (the same QMP): driven as an orchestrator drives QEMU, bounded by
 * the migration deadline, the source sampled every ~50 ms, the CPU and peak
 * RSS of both processes; with a postcopy plan, migrate-start-postcopy after
 * the first pass and the moments of the switch.
 */
import type { QmpClient } from '../../protocols/qmp/client.js';
import type { InstanceProcess } from '../instance-process.js';
import { orchestrateMigration, type MigrationPlan } from '../orchestrate.js';
import { withDeadline } from './migration-deadline.js';
import { sampleMigration } from './migration-sampler.js';
import { followPostcopy, type SwitchMoments } from './postcopy-plan.js';
import { cpuSeconds, cpuSecondsSince, peakRssBytes } from './process-usage.js';
import type { ProcessUsage, Sample } from './results.js';
import { ThreadProfile, threadRolesFromLog } from './thread-profile.js';
import { waitUntil } from './wait-until.js';

export interface Endpoint {
  qmp: QmpClient;
  pid: number;
  /** Thread id → role, asked once the migration ended: with it, the process's CPU is also given by thread role (thread-profile.ts). */
  threadRoles?: () => ReadonlyMap<number, string>;
}

/** A livemig instance as an endpoint, its threads' roles read from its log. */
export function livemigEndpoint(instance: InstanceProcess): Endpoint {
  return { qmp: instance.qmp, pid: instance.process.pid!, threadRoles: () => threadRolesFromLog(instance.stderr()) };
}

export interface MeasuredMigration {
  /** The source's final query-migrate (with its total-time). */
  source: Record<string, unknown>;
  /** The destination's query-migrate once it ended (or gave up waiting). */
  destination: Record<string, unknown>;
  series: Sample[];
  usage: { source: ProcessUsage; destination: ProcessUsage };
  /** With postcopy only. */
  switchover?: SwitchMoments;
}

/** `limitMs`: migrate_cancel past it (default: the bench's deadline for any migration). */
export async function measureMigration(source: Endpoint, destination: Endpoint, plan: MigrationPlan, postcopy = false, limitMs?: number): Promise<MeasuredMigration> {
  const pids = [source.pid, destination.pid];
  const cpuBefore = pids.map(cpuSeconds);
  const profiles = [source, destination].map((e) => (e.threadRoles ? new ThreadProfile(e.pid) : undefined));
  const sampler = sampleMigration(source.qmp);
  const follower = postcopy ? followPostcopy(source.qmp, destination.qmp) : undefined;
  const outcome = await withDeadline(orchestrateMigration(source.qmp, destination.qmp, plan), () => source.qmp.execute('migrate_cancel'), limitMs)
    .finally(() => Promise.all([sampler.stop(), follower?.stop()]));
  // QEMU announces `completed` before its migration thread has done the
  // accounting: until then query-migrate has no total-time, or (7.2) a
  // total-time and downtime of 0.
  let final = outcome.source;
  if (final.status === 'completed' && !accounted(final)) {
    await waitUntil(10_000, "QEMU's total-time", async () => {
      final = await source.qmp.execute<Record<string, unknown>>('query-migrate');
      return accounted(final);
    });
  }
  const series = await sampler.stop();
  const switchover = await follower?.stop();
  const cpu = pids.map((pid, i) => unlessGone(() => cpuSecondsSince(pid, cpuBefore[i]!)));
  const rss = pids.map((pid) => unlessGone(() => peakRssBytes(pid)));
  const threads = [source, destination].map((e, i) => profiles[i]?.finish(e.threadRoles!()));
  const usage = (i: number): ProcessUsage => ({ cpuSeconds: cpu[i]!, peakRssBytes: rss[i]!, ...(threads[i] ? { threads: threads[i] } : {}) });
  return {
    source: final,
    destination: outcome.destination,
    series,
    usage: { source: usage(0), destination: usage(1) },
    ...(switchover ? { switchover } : {}),
  };
}

/** A figure of a process, or 0 once it has exited: a QEMU destination exits when its migration is cancelled (7.2 has no exit-on-error). */
function unlessGone(read: () => number): number {
  try {
    return read();
  } catch {
    return 0;
  }
}

/** A completed migration's query-migrate with its times in (no migration over a socket takes 0 ms). */
function accounted(info: Record<string, unknown>): boolean {
  return typeof info['total-time'] === 'number' && info['total-time'] > 0;
}
