/**
 * One campaign run from start to clean-up: a fresh pair, the ab guest
 * running, `migrate` through the proxy (and the orchestrator's lever after
 * the first pass, pulled meanwhile), the fault at its moment, then the
 * oracle. Bounded as a whole; whatever happens, every process and proxy of
 * the run is gone when it returns.
 */
import type { FaultProxy } from '../support/fault-proxy.js';
import { stopAllInstances } from '../support/instances.js';
import { queryMigrate, sleep } from '../support/migration-driver.js';
import { logTail } from '../support/multifd-pair.js';
import { abRunning } from '../support/postcopy-pair.js';
import { strike } from './faults.js';
import { AB, startPair, type MigrationPair } from './migration-pair.js';
import { judge, type Outcome, type Problem } from './oracle.js';
import type { RunPlan } from './plan.js';
import { convergeAfterFirstPass } from './orchestrator.js';

/** A run that takes longer than this is stopped and counted as a failure of the harness. */
export const RUN_BOUND_MS = 90_000;

export interface RunResult extends RunPlan {
  /** The source's status when the fault struck: where in the migration it landed. */
  phase: string;
  outcome: Outcome | 'harness-error';
  source: string;
  destination: string;
  problems: Problem[];
  ms: number;
  /** Both sides' log tails, when the run failed a check. */
  evidence?: string;
}

export async function runOne(plan: RunPlan): Promise<RunResult> {
  const started = performance.now();
  const proxies: FaultProxy[] = [];
  let pair: MigrationPair | undefined;
  let phase = 'not started';
  let timer: NodeJS.Timeout | undefined;
  try {
    const run = async () => {
      pair = await startPair(plan.mode, proxies);
      await abRunning(pair.source, AB);
      await pair.source.qmp.execute('migrate', { uri: pair.proxy.uri });
      const converging = convergeAfterFirstPass(pair);
      await sleep(plan.momentMs);
      phase = (await queryMigrate(pair.source.qmp)).status;
      const struck = await strike(plan.fault, pair);
      await converging;
      return judge(pair, struck, proxies);
    };
    const bound = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`the run took more than ${RUN_BOUND_MS / 1000} s`)), RUN_BOUND_MS);
    });
    const running = run();
    // Past the bound the clean-up below ends the processes under it: its late failure is not news.
    running.catch(() => {});
    const verdict = await Promise.race([running, bound]);
    const ms = Math.round(performance.now() - started);
    return { ...plan, phase, ...verdict, ms, ...(verdict.problems.length > 0 ? { evidence: evidenceOf(pair) } : {}) };
  } catch (error) {
    const problems: Problem[] = [{ kind: 'harness', detail: (error as Error).stack ?? String(error) }];
    const ms = Math.round(performance.now() - started);
    return { ...plan, phase, outcome: 'harness-error', source: '?', destination: '?', problems, ms, evidence: evidenceOf(pair) };
  } finally {
    clearTimeout(timer);
    await Promise.all(proxies.splice(0).map((p) => p.close()));
    await stopAllInstances();
  }
}

function evidenceOf(pair: MigrationPair | undefined): string {
  return pair ? `${logTail(pair.source)}\n${logTail(pair.destination)}` : '(the pair did not start)';
}
