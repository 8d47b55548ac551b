/**
 * The judge of one campaign run. Once both sides rest (with bounds), exactly
 * one of them must own a running guest that passes the ab check: the source
 * after a failed or cancelled migration, or the destination after a
 * completed one — never both, never neither. In postcopy after the switch a
 * broken link leaves both sides `postcopy-paused`; the judge then recovers
 * the migration and it must complete. The only exception to "never
 * neither" is a fault that killed the process holding the guest (the source
 * before completion, the destination after it, either one after postcopy's
 * switch): the survivor must then not run a guest of its own.
 * Besides: no process died but the one killed (a destination exiting 1
 * after its failed load is QEMU's behaviour, not a crash), every `failed`
 * names its cause, and no process that lives on kept threads, sockets,
 * descriptors or files of the migration.
 * A `file:` target (fileTargetChecks) has no destination process while the
 * stream is written: the pair's destination is the restore side, waiting
 * with `--incoming defer`, and is given the file only once the source
 * completed its save; a save that failed must say why (a full filesystem:
 * ENOSPC), and no process may keep the target file open.
 */
import { openDescriptors } from '../../tools/bench/process-usage.js';
import type { FaultProxy } from '../support/fault-proxy.js';
import type { TestInstance } from '../support/instances.js';
import { memoryKeepsChanging, runState, sleep } from '../support/migration-driver.js';
import { expectAbHolds } from '../support/postcopy-pair.js';
import type { Strike } from './faults.js';
import { leaksOf } from './leaks.js';
import { AB, type MigrationPair } from './migration-pair.js';
import { recover } from './orchestrator.js';
import { settle, type Settled } from './settle.js';

export type Outcome =
  | 'completed' // the destination owns the guest
  | 'source-kept' // the migration failed or was cancelled; the source owns the guest
  | 'paused-recovered' // postcopy paused on both sides, recovered, completed
  | 'died-with-killed' // the killed process held the guest; the survivor rightly runs none
  | 'guest-lost'
  | 'both-running'
  | 'unsettled';

export type ProblemKind = 'guest-lost' | 'both-running' | 'crash' | 'leak' | 'state' | 'error-desc' | 'harness';

export interface Problem {
  kind: ProblemKind;
  detail: string;
}

export interface Verdict {
  outcome: Outcome;
  /** Where each side ended, for the report: a status, or how its process ended. */
  source: string;
  destination: string;
  problems: Problem[];
}

/** Bounds on each side coming to rest. */
const SOURCE_SETTLE_MS = 30_000;
const DESTINATION_SETTLE_MS = 20_000;
/** How long a guest that should run gets to show its memory changing. */
const RUNS_WITHIN_MS = 5_000;

export async function judge(pair: MigrationPair, strike: Strike, proxies: FaultProxy[]): Promise<Verdict> {
  const problems: Problem[] = [];
  let { source: s, destination: d } = await settleBoth(pair);
  let recovered = false;
  if (!s.exit && !d.exit && s.status === 'postcopy-paused' && d.status === 'postcopy-paused') {
    try {
      await recover(pair, proxies);
    } catch (error) {
      problems.push({ kind: 'state', detail: `the recovery of a paused postcopy failed: ${(error as Error).message}` });
    }
    ({ source: s, destination: d } = await settleBoth(pair));
    recovered = true;
  }
  const verdict = (outcome: Outcome): Verdict => ({ outcome, source: whereEnded(s), destination: whereEnded(d), problems });

  problems.push(...crashes('source', s, strike), ...crashes('destination', d, strike));
  problems.push(...unnamedCauses(s, d, strike, pair.mode));
  if (pair.file) problems.push(...(await fileTargetChecks(pair, s, strike)));
  for (const [side, settled] of [['source', s], ['destination', d]] as const) {
    if (settled.unsettled) problems.push({ kind: 'state', detail: `${side} still '${settled.status}' after its bound` });
  }
  if (s.unsettled || d.unsettled) return verdict('unsettled');

  const destinationClaims = !d.exit && d.status === 'completed';
  // A source that failed after its whole stream went out keeps its guest stopped, since the destination may run
  // it (source-migration.ts): as an orchestrator would, the harness lets it run again only if the destination does not.
  const inDoubt = !s.exit && s.status === 'failed' && (await runState(pair.source.qmp)) === 'postmigrate';
  if (inDoubt && !destinationClaims) await pair.source.qmp.execute('cont');
  const sourceClaims = !s.exit && (s.status === 'failed' || s.status === 'cancelled') && !(inDoubt && destinationClaims);
  let outcome: Outcome;
  if (sourceClaims && destinationClaims) {
    const states = `run states: source '${await runState(pair.source.qmp)}', destination '${await runState(pair.destination.qmp)}'`;
    problems.push({ kind: 'both-running', detail: `the source is '${s.status}' and the destination 'completed': both hold the guest (${states})` });
    outcome = 'both-running';
  } else if (destinationClaims) {
    outcome = recovered ? 'paused-recovered' : 'completed';
    if (!s.exit) problems.push(...(await leftThenStopped(pair.source, s)));
    if (s.status === 'completed' && !s.exit) problems.push(...(await leaksOf(pair.source, pair.baseline.source)).map(leak));
    problems.push(...(await leaksOf(pair.destination, pair.baseline.destination)).map(leak));
    problems.push(...(await ownsIntactGuest(pair.destination, 'destination')));
  } else if (sourceClaims) {
    outcome = 'source-kept';
    if (!d.exit && (await runState(pair.destination.qmp)) === 'running') {
      problems.push({ kind: 'both-running', detail: `the destination runs a guest while its migration is '${d.status}'` });
    }
    problems.push(...(await leaksOf(pair.source, pair.baseline.source)).map(leak));
    problems.push(...(await ownsIntactGuest(pair.source, 'source')));
  } else if (strike.killed && (await survivorRightlyEmpty(pair, strike.killed, s, d))) {
    outcome = 'died-with-killed';
    // A source that handed its guest over lives on: it must have let go of the migration.
    if (s.status === 'completed') problems.push(...(await leaksOf(pair.source, pair.baseline.source)).map(leak));
  } else {
    problems.push({ kind: 'guest-lost', detail: `no side owns a running guest: source ${whereEnded(s)}, destination ${whereEnded(d)}` });
    outcome = 'guest-lost';
  }
  problems.push(...expectedFor(strike, outcome));
  return verdict(outcome);
}

async function settleBoth(pair: MigrationPair): Promise<{ source: Settled; destination: Settled }> {
  const source = await settle(pair.source, { timeoutMs: SOURCE_SETTLE_MS });
  // A file target holds the guest once the save completed: restore it, as `migrate-incoming file:…` does.
  if (pair.file && !source.exit && source.status === 'completed') await restoreFromFile(pair.destination, pair.file.uri);
  // Once the source gave up (or died), a destination that never got a stream rightly waits for one.
  const sourceGaveUp = source.exit !== undefined || source.status === 'failed' || source.status === 'cancelled';
  const destination = await settle(pair.destination, {
    timeoutMs: DESTINATION_SETTLE_MS,
    exitsWhenFailed: true,
    alsoResting: sourceGaveUp ? ['none', 'setup'] : [],
  });
  return { source, destination };
}

function whereEnded(settled: Settled): string {
  if (settled.exit) {
    const how = settled.exit.signal ?? `exit ${settled.exit.code}`;
    return settled.status ? `${settled.status}, then ${how}` : how;
  }
  return settled.status ?? 'none';
}

const leak = (detail: string): Problem => ({ kind: 'leak', detail });

/** A process that died without being killed crashed, unless it is a destination exiting 1 after its failed load. */
function crashes(side: 'source' | 'destination', settled: Settled, strike: Strike): Problem[] {
  const found: Problem[] = [];
  if (settled.uncaught.length > 0) found.push({ kind: 'crash', detail: `${side} logged an uncaught exception: ${settled.uncaught[0]!.trim()}` });
  const orderlyExit = side === 'destination' && settled.exit?.code === 1 && settled.failedLoad !== undefined;
  if (settled.exit && strike.killed !== side && !orderlyExit) {
    found.push({ kind: 'crash', detail: `${side} died (${settled.exit.signal ?? `exit ${settled.exit.code}`}) and was not the one killed` });
  }
  return found;
}

/** Every failure and refusal must say why: a non-empty text with no "undefined" or "[object Object]" in it. */
function unnamedCauses(s: Settled, d: Settled, strike: Strike, mode: string): Problem[] {
  const found: Problem[] = [];
  const check = (what: string, text: string | undefined) => {
    if (text === undefined || text.trim() === '' || /undefined|\[object /.test(text)) found.push({ kind: 'error-desc', detail: `${what} names no cause: ${JSON.stringify(text)}` });
  };
  if (s.status === 'failed') check("source's error-desc", s.errorDesc);
  if (d.status === 'failed' && !d.exit) {
    check("destination's error-desc", d.errorDesc);
    found.push({ kind: 'state', detail: 'the destination failed and stayed up, though exit-on-error is on (QEMU exits 1)' });
  }
  if (d.exit?.code === 1) check('destination\'s "load of migration failed" line', d.failedLoad);
  if (strike.cancelRefused !== undefined) {
    check('the refusal of migrate_cancel', strike.cancelRefused);
    // QEMU refuses a cancel only once postcopy has started; in precopy it cancels, or does nothing once the migration is over.
    if (mode !== 'postcopy') found.push({ kind: 'state', detail: `migrate_cancel refused outside postcopy: ${strike.cancelRefused}` });
  }
  return found;
}

/** A source whose guest went to the destination completed too, and stays stopped (postmigrate), never running it. */
async function leftThenStopped(source: TestInstance, s: Settled): Promise<Problem[]> {
  const state = await runState(source.qmp);
  if (state === 'running') return [{ kind: 'both-running', detail: `the destination completed, and the source ('${s.status}') runs the guest too` }];
  // A source in doubt (failed after its whole stream went out, its guest kept stopped) rightly ends 'failed'.
  if (s.status !== 'completed' && !(s.status === 'failed' && state === 'postmigrate')) {
    return [{ kind: 'state', detail: `the destination completed, and the source is still '${s.status}'` }];
  }
  return [];
}

/** The owner runs its guest (its memory changes), and, stopped, the guest passes the ab check. */
async function ownsIntactGuest(instance: TestInstance, side: string): Promise<Problem[]> {
  const state = await runState(instance.qmp);
  if (state !== 'running') return [{ kind: 'guest-lost', detail: `the ${side} owns the guest but its run state is '${state}'` }];
  if (!(await memoryKeepsChanging(instance, AB.start, 64 * 1024, RUNS_WITHIN_MS))) {
    return [{ kind: 'guest-lost', detail: `the ${side}'s guest does not run its workload` }];
  }
  await instance.qmp.execute('stop');
  try {
    await expectAbHolds(instance, AB, side);
    return [];
  } catch (error) {
    return [{ kind: 'guest-lost', detail: `the ${side}'s guest fails the ab check: ${(error as Error).message}` }];
  }
}

/**
 * After a kill, whether the survivor rightly owns no guest: the guest was
 * on the killed process. A surviving source had handed it over (completed)
 * or passed postcopy's switch (paused, its guest never to run again); a
 * surviving destination never finished loading (failed, or no stream yet)
 * or was paused in postcopy, missing the pages only the source had.
 */
async function survivorRightlyEmpty(pair: MigrationPair, killed: 'source' | 'destination', s: Settled, d: Settled): Promise<boolean> {
  if (killed === 'destination') {
    return !s.exit && (s.status === 'completed' || s.status === 'postcopy-paused') && (await runState(pair.source.qmp)) !== 'running';
  }
  if (d.exit) return d.exit.code === 1 && d.failedLoad !== undefined;
  return ['none', 'setup', 'failed', 'postcopy-paused'].includes(d.status ?? 'none');
}

/** What a fault may end in, beyond the rules above: a migration with no fault, or only a slow link, completes. */
function expectedFor(strike: Strike, outcome: Outcome): Problem[] {
  const mustComplete = strike.fault === 'none' || strike.fault === 'slow';
  if (!mustComplete || outcome === 'completed' || outcome === 'paused-recovered' || outcome === 'guest-lost' || outcome === 'both-running') return [];
  return [{ kind: 'state', detail: `a migration with fault '${strike.fault}' must complete; it ended '${outcome}'` }];
}

/** Starts the restore of a completed save on a destination waiting with `--incoming defer` (once: a second settle finds it started). */
async function restoreFromFile(destination: TestInstance, uri: string): Promise<void> {
  // A destination waiting with `--incoming defer` shows no status at all (QEMU's query-migrate is then empty).
  const { status } = await destination.qmp.execute<{ status?: string }>('query-migrate');
  if (status === undefined || status === 'none') await destination.qmp.execute('migrate-incoming', { uri });
}

/** How long a process gets to close the target file once its migration ended. */
const FILES_CLOSE_MS = 5_000;

/** What a full filesystem says: errno's name or its text (strerror's). */
const NO_SPACE = /ENOSPC|no space left on device/i;

/**
 * A file target's own rules: a save that failed under a full filesystem
 * names that cause in its error-desc, and no living process keeps a file
 * of the target's filesystem open (else it could not be unmounted).
 */
async function fileTargetChecks(pair: MigrationPair, s: Settled, strike: Strike): Promise<Problem[]> {
  const found: Problem[] = [];
  if (strike.faults.includes('full-tmpfs') && s.status === 'failed' && !NO_SPACE.test(s.errorDesc ?? '')) {
    found.push({ kind: 'error-desc', detail: `the save onto a full filesystem failed without naming it (ENOSPC): ${JSON.stringify(s.errorDesc)}` });
  }
  for (const instance of [pair.source, pair.destination]) {
    if (instance.process.exitCode !== null || instance.process.signalCode !== null) continue;
    // As for descriptors (leaks.ts), the process gets a moment to let go.
    const deadline = Date.now() + FILES_CLOSE_MS;
    let open = openFilesUnder(instance.process.pid!, pair.file!.mount);
    while (open.length > 0 && Date.now() < deadline) {
      await sleep(100);
      open = openFilesUnder(instance.process.pid!, pair.file!.mount);
    }
    for (const file of open) found.push(leak(`${instance.name}: holds ${file} open`));
  }
  return found;
}

/** The files under `dir` that process `pid` has open. */
function openFilesUnder(pid: number, dir: string): string[] {
  return openDescriptors(pid).map((d) => d.target).filter((target) => target.startsWith(`${dir}/`));
}
