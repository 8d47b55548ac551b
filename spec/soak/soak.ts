/**
 * The soak (issue 21): one source instance running the `ab` guest for the
 * whole soak, migrated again and again, each round to a fresh destination
 * (an instance cannot become a destination after it has run, as QEMU's
 * migrate-incoming needs -incoming at start), the kinds of round mixed by
 * a seeded rotation (plan.ts) and one round in ten cancelled. Each round is
 * judged exact (round.ts) and the source sampled at the same point of it;
 * the first round that is not exact ends the soak, and once the rounds are
 * run the source's samples are held to the growth bound (samples.ts).
 * Every process it starts is gone when it returns, whatever happened, and
 * each round is bounded as a whole.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeTestPki } from '../../tools/pki.js';
import { startInstance, stopAllInstances, type TestInstance } from '../support/instances.js';
import { UNLIMITED } from '../support/migration-driver.js';
import { MiB, logTail } from '../support/multifd-pair.js';
import { abGuestArgs, abRunning, type AbGuest } from '../support/postcopy-pair.js';
import { sourceTlsObject, usesTls } from './kinds.js';
import { CANCEL_EVERY, KINDS, planRounds, type Kind, type RoundPlan } from './plan.js';
import { removeDumps, runRound, type RoundOutcome, type SoakContext } from './round.js';
import { judgeGrowth, RSS_BOUND_MIB, sampleSteady, WARMUP_ROUNDS, type Growth, type Sample } from './samples.js';

/**
 * The long-lived source's young generation, capped at 4 MiB a semi-space.
 * V8 doubles it (1, 2, 4 … 32 MiB) as objects survive and a process that
 * never goes quiet never sees it shrink, so over hundreds of rounds it
 * reaches its 32 MiB maximum: as much as the whole RSS bound, with no
 * object retained (heap snapshots at rounds 80, 300 and 600 differed by
 * under 1 MiB). Capped, the bound sees what a leak would add.
 */
const YOUNG_GENERATION_CAP = ['--max-semi-space-size=4'];

/** A round that takes longer than this ends the soak as a failure of its own. */
export const ROUND_BOUND_MS = 90_000;
/** The default guest: small, so that a thousand rounds take minutes. */
export const DEFAULT_SIZE_MIB = 32;

export interface SoakOptions {
  rounds: number;
  seed: number;
  /** Guest RAM, MiB. */
  sizeMiB: number;
  kinds: readonly Kind[];
  cancelEvery: number;
  warmupRounds: number;
  rssBoundMiB: number;
}

export const DEFAULTS: Omit<SoakOptions, 'seed'> = {
  rounds: 1000,
  sizeMiB: DEFAULT_SIZE_MIB,
  kinds: KINDS,
  cancelEvery: CANCEL_EVERY,
  warmupRounds: WARMUP_ROUNDS,
  rssBoundMiB: RSS_BOUND_MIB,
};

export interface RoundResult extends RoundPlan, Partial<RoundOutcome> {
  /** Empty when the round was exact. */
  problem?: string;
  ms: number;
  /** Both sides' log tails, when the round failed. */
  evidence?: string;
}

export interface SoakResult {
  options: SoakOptions;
  /** The guest's ab range. */
  ab: AbGuest;
  /** The source's sample before the first round (its guest running, nothing migrated yet). */
  initial: Sample;
  sourcePid: number;
  rounds: RoundResult[];
  /** The first round that was not exact, if any (the soak stops there). */
  failedRound?: RoundResult;
  growth: Growth;
  /** Set when the soak was stopped from outside before its rounds were run. */
  interrupted?: true;
  passed: boolean;
  seconds: number;
}

/** The ab range of a guest of `sizeMiB`: from 1 MiB, a quarter of the guest (whole MiB). */
export function abRangeFor(sizeMiB: number): AbGuest {
  if (!Number.isSafeInteger(sizeMiB) || sizeMiB < 8) throw new Error(`the guest must be at least 8 MiB, not ${sizeMiB}`);
  return { start: 1 * MiB, end: (1 + Math.floor(sizeMiB / 4)) * MiB, smp: 1 };
}

export interface SoakHooks {
  /** Called after each round, with its result. */
  onRound?: (result: RoundResult) => void;
  /** Aborting it stops the soak after the round in flight (which then does not count). */
  signal?: AbortSignal;
}

export async function runSoak(options: SoakOptions, hooks: SoakHooks = {}): Promise<SoakResult> {
  const started = performance.now();
  const ab = abRangeFor(options.sizeMiB);
  const ram = `${options.sizeMiB}M`;
  const scratch = mkdtempSync(join(tmpdir(), 'livemig-soak-'));
  const rounds: RoundResult[] = [];
  // A safety net should the harness exit without its clean-up (process.exit from elsewhere): no instance outlives it.
  const ours: TestInstance[] = [];
  const killAll = () => {
    for (const i of ours) if (i.process.exitCode === null && i.process.signalCode === null) i.process.kill('SIGKILL');
  };
  process.once('exit', killAll);
  try {
    const pki = usesTls(options.kinds) ? await makeTestPki(join(scratch, 'pki')) : undefined;
    const source = await startInstance([...abGuestArgs(ram, ab), ...UNLIMITED, ...(pki ? sourceTlsObject(pki.client) : [])], {
      name: 'src',
      nodeArgs: YOUNG_GENERATION_CAP,
    });
    ours.push(source);
    await abRunning(source, ab);
    removeDumps(source);
    const initial = await sampleSteady(source.process.pid!);
    const ctx: SoakContext = { source, ram, ab, scratch, ...(pki ? { serverDir: pki.server } : {}) };
    let failedRound: RoundResult | undefined;
    for (const plan of planRounds(options.seed, options.rounds, options.kinds, options.cancelEvery)) {
      if (hooks.signal?.aborted) break;
      const result = await boundedRound(ctx, plan, (d) => ours.push(d));
      if (hooks.signal?.aborted) break;
      rounds.push(result);
      hooks.onRound?.(result);
      if (result.problem !== undefined) {
        failedRound = result;
        break;
      }
    }
    const growth = judgeGrowth(rounds.flatMap((r) => (r.source ? [r.source] : [])), options);
    const interrupted = hooks.signal?.aborted === true && rounds.length < options.rounds;
    return {
      options,
      ab,
      initial,
      sourcePid: source.process.pid!,
      rounds,
      ...(failedRound ? { failedRound } : {}),
      growth,
      ...(interrupted ? { interrupted: true as const } : {}),
      passed: !failedRound && !interrupted && growth.breaches.length === 0,
      seconds: Math.round((performance.now() - started) / 1000),
    };
  } finally {
    process.removeListener('exit', killAll);
    await stopAllInstances();
    rmSync(scratch, { recursive: true, force: true });
  }
}

/** One round under ROUND_BOUND_MS; a failure of any kind becomes the round's problem, with both logs' tails. */
async function boundedRound(ctx: SoakContext, plan: RoundPlan, onStarted: (d: TestInstance) => void): Promise<RoundResult> {
  const started = performance.now();
  let destination: TestInstance | undefined;
  let timer: NodeJS.Timeout | undefined;
  try {
    const running = runRound(ctx, plan, (d) => {
      destination = d;
      onStarted(d);
    });
    // Past the bound the soak ends and its clean-up stops the processes under it: the late failure is not news.
    running.catch(() => {});
    const bound = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`the round took more than ${ROUND_BOUND_MS / 1000} s`)), ROUND_BOUND_MS);
    });
    const outcome = await Promise.race([running, bound]);
    return { ...plan, ...outcome, ms: Math.round(performance.now() - started) };
  } catch (error) {
    const evidence = [logTail(ctx.source), ...(destination ? [logTail(destination)] : [])].join('\n');
    const problem = (error as Error).message;
    return { ...plan, problem, ms: Math.round(performance.now() - started), evidence };
  } finally {
    clearTimeout(timer);
  }
}
