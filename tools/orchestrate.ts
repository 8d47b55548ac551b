/**
 * Drives a migration between two instances the way an orchestrator drives
 * two QEMUs (libvirt's qemuMigrationSrcRun and virsh's job watch):
 * capabilities and parameters on both sides, migrate-incoming on the
 * destination, migrate on the source, then follow it to the end, acting on
 * the way as the plan says — the guest stopped first for a migration that is
 * not live, migrate-start-postcopy after the first pass, a timeout's action —
 * and at the end running the guest that livemig itself paused.
 */
import type { QmpClient } from '../protocols/qmp/client.js';
import type { QmpEvent } from '../protocols/qmp/types.js';
import { statusOfQueryMigrate } from '../protocols/qmp/migrate-status.js';
import type { MigrationCapabilityStatus } from '../actors/options/capabilities.js';
import type { MigrateSetParameters } from '../actors/options/parameters.js';

export interface MigrationPlan {
  uri: string;
  /** Set on both sides (after `events`, which is always on). */
  caps: MigrationCapabilityStatus[];
  /** Set on both sides, in order. */
  params: MigrateSetParameters[];
  /** Set on the source only, after `caps`: what acts there alone (auto-converge), as libvirt sets them. */
  sourceCaps?: MigrationCapabilityStatus[];
  /** Set on the source only, after `params`: what acts there alone (max-bandwidth, tls-hostname), as libvirt sets them. */
  sourceParams?: MigrateSetParameters[];
  /** false: `stop` the source guest before `migrate`, as virsh migrate without --live. Default true. */
  live?: boolean;
  /** `stop` the destination before `migrate` (its autostart off), and never `cont` it: virsh --suspend. */
  leaveDestinationPaused?: boolean;
  /** migrate-start-postcopy once the first pass is through: dirty-sync-count 2, virsh's "iteration 2". */
  postcopyAfterPrecopy?: boolean;
  /** Still in precopy this long after `migrate`: stop the source guest, or switch to postcopy (virsh --timeout). */
  timeout?: { ms: number; action: 'suspend' | 'postcopy' };
  /** Run just before `migrate`, both sides set up as the plan says (livemig migrate's convergence prediction). */
  beforeMigrate?: () => Promise<void>;
}

/** One sample of the source's query-migrate while it runs. */
export interface MigrationProgress {
  status: string;
  ram?: Record<string, number>;
  'total-time'?: number;
}

/** A command the orchestrator sent beyond the migration's own, and why. */
export interface OrchestratorAction {
  /** `stop` / `cont` on the source or destination, or migrate-start-postcopy on the source. */
  action: 'stop-source' | 'stop-destination' | 'migrate-start-postcopy' | 'cont-destination' | 'cont-source';
  /** no-live, suspend (the destination's autostart off), postcopy-after-precopy, timeout, resume, failed. */
  reason: string;
  /** ms after `migrate` was sent (negative: before it). */
  'at-ms': number;
  /** The monitor's refusal, when it refused. */
  error?: string;
}

export interface MigrationOutcome {
  source: Record<string, unknown>;
  destination: Record<string, unknown>;
  /** The URI the source actually used (a tcp port 0 resolved to the bound port). */
  uri: string;
  /** What the orchestrator did on the way, in order. */
  actions: OrchestratorAction[];
  /** Each guest's run state at the end (query-status), when its monitor answered. */
  runStates: { source?: string; destination?: string };
}

/** Where a migration stops moving: over, or (x-colo) checkpointing from now on. */
const FINAL = ['completed', 'failed', 'cancelled', 'colo'];
/** The source's statuses after which the destination has the guest. */
const THROUGH = ['completed', 'colo'];
/** Still precopy: where a timeout acts. */
const PRECOPY = ['setup', 'active'];
const POLL_MS = 100;

export async function orchestrateMigration(
  src: QmpClient,
  dst: QmpClient,
  plan: MigrationPlan,
  onProgress: (p: MigrationProgress) => void = () => {},
): Promise<MigrationOutcome> {
  // A refusal names the side and the command: the monitor's own words do not say which.
  const on = (side: 'source' | 'destination') => async <T>(command: string, args?: object): Promise<T> => {
    try {
      return await (side === 'source' ? src : dst).execute<T>(command, args);
    } catch (err) {
      throw new Error(`the ${side}: ${command}: ${(err as Error).message}`, { cause: err });
    }
  };
  const [atSource, atDestination] = [on('source'), on('destination')];
  const caps = [{ capability: 'events', state: true }, ...plan.caps];
  await atDestination('migrate-set-capabilities', { capabilities: caps });
  await atSource('migrate-set-capabilities', { capabilities: [...caps, ...(plan.sourceCaps ?? [])] });
  for (const params of plan.params) {
    await atDestination('migrate-set-parameters', params);
    await atSource('migrate-set-parameters', params);
  }
  for (const params of plan.sourceParams ?? []) await atSource('migrate-set-parameters', params);

  // A destination started with --incoming URI already listens: it shows where, and no status.
  let incoming = await dst.execute<Record<string, unknown>>('query-migrate');
  const listening = statusOfQueryMigrate(incoming) === 'setup';
  if (listening && plan.params.some((p) => p['tls-creds'])) {
    throw new Error('the destination already listens (started with --incoming URI), without TLS: for TLS start it with --incoming defer, ' +
      'so that its listener opens once tls-creds is set');
  }
  if (statusOfQueryMigrate(incoming) === 'none') {
    await atDestination('migrate-incoming', { uri: plan.uri });
    incoming = await dst.execute<Record<string, unknown>>('query-migrate');
  }
  const uri = resolveUri(plan.uri, incoming['socket-address']);

  // Stamped with the time now, made relative to `migrate` once it is sent.
  const actions: OrchestratorAction[] = [];
  const act = async (qmp: QmpClient, command: string, action: OrchestratorAction['action'], reason: string): Promise<boolean> => {
    const entry: OrchestratorAction = { action, reason, 'at-ms': Date.now() };
    actions.push(entry);
    try {
      await qmp.execute(command);
      return true;
    } catch (err) {
      entry.error = (err as Error).message;
      return false;
    }
  };
  // What livemig paused, and so runs again at the end.
  let stoppedSource = false;
  if (plan.leaveDestinationPaused) await act(dst, 'stop', 'stop-destination', 'suspend');
  if (plan.live === false && (await runState(src)) === 'running') stoppedSource = await act(src, 'stop', 'stop-source', 'no-live');
  await plan.beforeMigrate?.();

  let switched = false;
  const startPostcopy = async (reason: string) => {
    if (switched) return;
    switched = true;
    await act(src, 'migrate-start-postcopy', 'migrate-start-postcopy', reason);
  };
  // virsh switches on the MIGRATION_PASS event of pass 2; the polling below catches it too.
  const onPass = (event: QmpEvent) => {
    if (plan.postcopyAfterPrecopy && Number(event.data?.pass ?? 0) >= 2) void startPostcopy('postcopy-after-precopy');
  };
  src.events.on('MIGRATION_PASS', onPass);
  let timedOut = false;
  let source: Record<string, unknown>;
  const startedAt = Date.now();
  try {
    await atSource('migrate', { uri }).catch(async (err: unknown) => {
      if (stoppedSource) await src.execute('cont').catch(() => {});
      throw err;
    });
    for (;;) {
      source = await src.execute<Record<string, unknown>>('query-migrate');
      onProgress(source as unknown as MigrationProgress);
      const status = source.status as string;
      if (FINAL.includes(status)) break;
      const ram = source.ram as Record<string, number> | undefined;
      if (plan.postcopyAfterPrecopy && status === 'active' && (ram?.['dirty-sync-count'] ?? 0) >= 2) await startPostcopy('postcopy-after-precopy');
      if (plan.timeout && !timedOut && Date.now() - startedAt >= plan.timeout.ms && PRECOPY.includes(status)) {
        timedOut = true;
        if (plan.timeout.action === 'postcopy') await startPostcopy('timeout');
        else if ((await runState(src)) === 'running') stoppedSource = await act(src, 'stop', 'stop-source', 'timeout');
      }
      await new Promise((r) => setTimeout(r, POLL_MS));
    }
  } finally {
    src.events.off('MIGRATION_PASS', onPass);
  }
  // The destination finishes loading just after the source completes.
  let destination: Record<string, unknown> = {};
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    destination = await dst.execute<Record<string, unknown>>('query-migrate').catch(() => ({ status: 'failed' }));
    if (FINAL.includes(destination.status as string) || !THROUGH.includes(source.status as string)) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  // The guest livemig paused runs again: on the destination once it has it, else on the source.
  if (stoppedSource && !plan.leaveDestinationPaused && source.status === 'completed' && destination.status === 'completed' && (await runState(dst)) === 'paused') {
    await act(dst, 'cont', 'cont-destination', 'resume');
  } else if (stoppedSource && ['failed', 'cancelled'].includes(source.status as string) && (await runState(src)) === 'paused') {
    await act(src, 'cont', 'cont-source', 'failed');
  }
  for (const a of actions) a['at-ms'] -= startedAt;
  const runStates = { source: await runState(src), destination: await runState(dst) };
  return { source, destination, uri, actions, runStates };
}

/** The guest's run state (query-status), undefined when the monitor does not answer. */
async function runState(qmp: QmpClient): Promise<string | undefined> {
  return (await qmp.execute<{ status: string }>('query-status').catch(() => undefined))?.status;
}

/** A tcp URI with port 0 (or a wildcard host) becomes the address the destination really listens on. */
function resolveUri(uri: string, socketAddress: unknown): string {
  const m = /^tcp:(.*):(\d+)$/.exec(uri);
  const bound = Array.isArray(socketAddress) ? (socketAddress[0] as { type?: string; host?: string; port?: string }) : undefined;
  if (!m || bound?.type !== 'inet') return uri;
  let host = m[1]!;
  if (host === '' || host === '0.0.0.0' || host === '[::]') host = '127.0.0.1';
  return `tcp:${host}:${m[2] === '0' ? bound.port : m[2]}`;
}
