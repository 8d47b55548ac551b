/**
 * One soak round, against the source that lives through the whole soak: a
 * fresh destination for the round's kind, the source switched to that kind,
 * `migrate`, then either
 * - completion, judged exact: both sides `completed`, the source left
 *   `postmigrate` and the destination (started with -S) paused, every RAM
 *   block's digest the same on both, the destination's guest passing the ab
 *   check (the product's and the independent one) and, once let go, running
 *   its workload; the destination is then shut down (`quit`, exit 0) and
 *   the source's guest goes on with `cont`; or
 * - a `migrate_cancel` while `active` (a drawn delay after it became so):
 *   the source `cancelled`, its guest
 *   still running, intact (ab check); the destination never completed.
 * Either way the round ends with the source's guest seen running and the
 * source sampled (after its threads and descriptors held still), and the
 * destination's process gone. Any check that fails throws, saying which.
 */
import { readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { startInstance, type TestInstance } from '../support/instances.js';
import {
  allDigests, boundTcpUri, exitCode, memoryKeepsChanging, runState, sleep, waitForMigration, waitForRunState,
} from '../support/migration-driver.js';
import { uncaughtTrace } from '../support/multifd-pair.js';
import { abGuestArgs, expectAbHolds, type AbGuest } from '../support/postcopy-pair.js';
import { settle } from '../chaos/settle.js';
import { destinationArgs, sourceSettings, transportOf } from './kinds.js';
import type { RoundPlan } from './plan.js';
import { sampleNow, sampleSteady, type Sample } from './samples.js';

/** The soak's link: unlimited, as the precopy tests' (QEMU's default 128 MiB/s would only slow it down). */
const UNLIMITED_BANDWIDTH = 100_000_000_000;
/** QEMU's default downtime limit, ms: what the completed rounds converge under. */
const DOWNTIME_LIMIT_MS = 300;
/**
 * A cancelled round's link: 8 MB/s and no downtime allowed. The guest
 * dirties pages during every pass, so precopy goes round and round and
 * the cancel always lands in `active`, before the source could send its
 * end of stream (however well the pages compress: one byte in each page
 * of the ab range is not zero, so zstd makes a pass of it a few KB, and a
 * bandwidth limit alone would let the migration converge).
 */
const CANCEL_LINK = { 'max-bandwidth': 8_000_000, 'downtime-limit': 0 };
const COMPLETE_LINK = { 'max-bandwidth': UNLIMITED_BANDWIDTH, 'downtime-limit': DOWNTIME_LIMIT_MS };
/** Bounds on each wait of a round. */
const MIGRATION_MS = 30_000;
const DESTINATION_MS = 10_000;
const RUNS_WITHIN_MS = 5_000;
const EXIT_MS = 10_000;

/** What a round runs against: the long-lived source and the soak's fixed setup. */
export interface SoakContext {
  source: TestInstance;
  ram: string;
  ab: AbGuest;
  /** The PKI's server directory, when TLS rounds run. */
  serverDir?: string;
  /** Where unix sockets go. */
  scratch: string;
}

export interface RoundOutcome {
  outcome: 'completed' | 'cancelled';
  /** From `migrate` to the source's end state, ms. */
  migrationMs: number;
  /** The source's query-migrate total-time and downtime of a completed round. */
  totalTimeMs?: number;
  downtimeMs?: number;
  source: Sample;
  /** The destination's, at completion (none for a cancelled round). */
  destination?: Sample;
}

/** Runs one round; `onDestination` learns the destination as soon as it started (for the evidence of a failure). */
export async function runRound(ctx: SoakContext, plan: RoundPlan, onDestination: (d: TestInstance) => void): Promise<RoundOutcome> {
  const { source, ab } = ctx;
  const unixPath = join(ctx.scratch, `round-${plan.index}.sock`);
  const destination = await startInstance(
    [...abGuestArgs(ctx.ram, ab, false), ...destinationArgs(plan.kind, { serverDir: ctx.serverDir, unixPath })],
    { name: `dst-${plan.index}` },
  );
  onDestination(destination);
  try {
    const settings = sourceSettings(plan.kind);
    await source.qmp.execute('migrate-set-capabilities', { capabilities: settings.capabilities });
    const link = plan.cancelAfterMs === undefined ? COMPLETE_LINK : CANCEL_LINK;
    await source.qmp.execute('migrate-set-parameters', { ...settings.parameters, ...link });
    const uri = transportOf(plan.kind) === 'unix' ? `unix:${unixPath}` : await boundTcpUri(destination.qmp);
    const started = performance.now();
    await source.qmp.execute('migrate', { uri });
    const ended =
      plan.cancelAfterMs === undefined
        ? await completed(ctx, destination, started)
        : await cancelled(ctx, destination, plan.cancelAfterMs, started);
    await retire(destination, ended.outcome === 'completed');
    if (ended.outcome === 'completed') await source.qmp.execute('cont');
    await waitForRunState(source.qmp, 'running');
    if (!(await memoryKeepsChanging(source, ab.start, 64 * 1024, RUNS_WITHIN_MS))) throw new Error('the source guest does not run its workload after the round');
    const crash = uncaughtTrace(source.stderr());
    if (crash.length > 0) throw new Error(`the source logged an uncaught exception: ${crash[0]!.trim()}`);
    return { ...ended, source: await sampleSteady(source.process.pid!) };
  } finally {
    rmSync(unixPath, { force: true });
  }
}

type Ended = Omit<RoundOutcome, 'source'>;

async function completed(ctx: SoakContext, destination: TestInstance, started: number): Promise<Ended> {
  const { source, ab } = ctx;
  const done = await waitForMigration(source.qmp, ['completed', 'failed', 'cancelled'], MIGRATION_MS);
  const migrationMs = Math.round(performance.now() - started);
  if (done.status !== 'completed') throw new Error(`the source's migration ended '${done.status}': ${done['error-desc']}`);
  const arrived = await waitForMigration(destination.qmp, ['completed', 'failed'], DESTINATION_MS);
  if (arrived.status !== 'completed') throw new Error(`the destination's migration ended '${arrived.status}': ${arrived['error-desc']}`);
  const atCompletion = sampleNow(destination.process.pid!);
  const states = [await runState(source.qmp), await runState(destination.qmp)];
  if (states.join() !== 'postmigrate,paused') throw new Error(`run states after completion: source '${states[0]}', destination '${states[1]}' (expected postmigrate, paused)`);
  const [there, here] = await Promise.all([allDigests(destination.qmp), allDigests(source.qmp)]);
  const differing = Object.keys({ ...there, ...here }).filter((block) => there[block] !== here[block]);
  if (differing.length > 0) throw new Error(`the destination's RAM differs from the source's in ${differing.join(', ')}`);
  await expectAbHolds(destination, ab, 'destination');
  await destination.qmp.execute('cont');
  if (!(await memoryKeepsChanging(destination, ab.start, 64 * 1024, RUNS_WITHIN_MS))) throw new Error('the destination guest does not run its workload once let go');
  return {
    outcome: 'completed',
    migrationMs,
    ...(done['total-time'] === undefined ? {} : { totalTimeMs: done['total-time'] }),
    ...(done.downtime === undefined ? {} : { downtimeMs: done.downtime }),
    destination: atCompletion,
  };
}

async function cancelled(ctx: SoakContext, destination: TestInstance, afterMs: number, started: number): Promise<Ended> {
  const { source, ab } = ctx;
  const running = await waitForMigration(source.qmp, ['active', 'completed', 'failed', 'cancelled'], MIGRATION_MS);
  if (running.status !== 'active') throw new Error(`the migration to cancel went '${running.status}' before it was active: ${running['error-desc']}`);
  await sleep(afterMs);
  await source.qmp.execute('migrate_cancel');
  const done = await waitForMigration(source.qmp, ['completed', 'failed', 'cancelled'], MIGRATION_MS);
  const migrationMs = Math.round(performance.now() - started);
  if (done.status !== 'cancelled') throw new Error(`migrate_cancel during active: the source's migration ended '${done.status}': ${done['error-desc']}`);
  // The source owns the guest: running, its workload going on, and intact.
  const state = await runState(source.qmp);
  if (state !== 'running') throw new Error(`after the cancel the source's run state is '${state}'`);
  if (!(await memoryKeepsChanging(source, ab.start, 64 * 1024, RUNS_WITHIN_MS))) throw new Error('after the cancel the source guest does not run its workload');
  await source.qmp.execute('stop');
  try {
    await expectAbHolds(source, ab, 'source after the cancel');
  } finally {
    removeDumps(source);
    await source.qmp.execute('cont');
  }
  // The destination must not have completed: it fails (and exits 1, QEMU's exit-on-error) or still waits.
  const d = await settle(destination, { timeoutMs: DESTINATION_MS, exitsWhenFailed: true, alsoResting: ['none', 'setup'] });
  if (d.unsettled) throw new Error(`after the cancel the destination is still '${d.status}'`);
  if (d.status === 'completed') throw new Error('the source cancelled, yet the destination completed: both hold the guest');
  if (d.uncaught.length > 0) throw new Error(`the destination logged an uncaught exception: ${d.uncaught[0]!.trim()}`);
  if (d.exit && !(d.exit.code === 1 && d.failedLoad !== undefined)) throw new Error(`the destination died (${d.exit.signal ?? `exit ${d.exit.code}`}) without a failed load`);
  return { outcome: 'cancelled', migrationMs };
}

/**
 * Shuts the destination down: `quit` and its exit, bounded (SIGKILL past
 * the bound); it must exit 0 when it ran the guest (a completed round) and
 * log no uncaught exception. Its directory goes with it.
 */
async function retire(destination: TestInstance, mustExitCleanly: boolean): Promise<void> {
  const alive = () => destination.process.exitCode === null && destination.process.signalCode === null;
  try {
    if (alive()) await destination.qmp.execute('quit').catch(() => undefined);
    let code: number | null;
    try {
      code = await exitCode(destination, EXIT_MS);
    } catch (error) {
      destination.process.kill('SIGKILL');
      throw error;
    }
    const crash = uncaughtTrace(destination.stderr());
    if (crash.length > 0) throw new Error(`the destination logged an uncaught exception: ${crash[0]!.trim()}`);
    if (mustExitCleanly && code !== 0) throw new Error(`the destination exited ${code ?? destination.process.signalCode} on quit`);
  } finally {
    await destination.qmp.close().catch(() => undefined);
    rmSync(destination.dir, { recursive: true, force: true });
  }
}

/** The pmemsave dumps the ab check leaves in an instance's directory. */
export function removeDumps(instance: TestInstance): void {
  for (const name of readdirSync(instance.dir)) if (/^ab-\d+\.bin$/.test(name)) rmSync(join(instance.dir, name), { force: true });
}
