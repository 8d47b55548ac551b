/**
 * One campaign run from start to clean-up: what its layout needs (a netns
 * link, a small tmpfs), a fresh pair, the ab guest running, `migrate` (and
 * the orchestrator's lever after the first pass, pulled meanwhile), each
 * fault at its moment, then the oracle. Bounded as a whole; whatever
 * happens, every process, proxy, namespace and mount of the run is gone
 * when it returns, and one that could not be removed is reported as a leak.
 */
import type { FaultProxy } from '../support/fault-proxy.js';
import { stopAllInstances } from '../support/instances.js';
import { queryMigrate, sleep } from '../support/migration-driver.js';
import { logTail } from '../support/multifd-pair.js';
import { QmpError } from '../../protocols/qmp/errors.js';
import { abRunning } from '../support/postcopy-pair.js';
import { expectedBeyondOracle, newStrike, strike, type Strike } from './faults.js';
import { AB, listeningUri, startPair, type LayoutResources, type MigrationPair } from './migration-pair.js';
import { NetnsLink } from './netns.js';
import { judge, type Outcome, type Problem } from './oracle.js';
import { tmpfsBytes, type RunPlan } from './plan.js';
import { convergeAfterFirstPass } from './orchestrator.js';
import { settle } from './settle.js';
import { SmallTmpfs } from './tmpfs.js';

/** A run that takes longer than this is stopped and counted as a failure of the harness. */
export const RUN_BOUND_MS = 90_000;

export interface RunResult extends RunPlan {
  /** The source's status when the (first) fault struck: where in the migration it landed. */
  phase: string;
  /** The source's status when each fault struck, in the plan's order. */
  phases?: string[];
  outcome: Outcome | 'harness-error';
  source: string;
  destination: string;
  problems: Problem[];
  /** What the harness saw while it struck (strike notes). */
  notes?: string[];
  ms: number;
  /** Both sides' log tails, when the run failed a check. */
  evidence?: string;
}

/** What the runs in progress made outside their processes: removed by their clean-up, or by removeLiveResources on a signal. */
const live = new Set<NetnsLink | SmallTmpfs>();

export async function runOne(plan: RunPlan): Promise<RunResult> {
  const started = performance.now();
  const proxies: FaultProxy[] = [];
  const resources: LayoutResources = {};
  // A plan made before a run had several strikes (or by hand) has only its fault and moment.
  const strikes = plan.strikes ?? [{ fault: plan.fault, momentMs: plan.momentMs }];
  const layout = plan.layout ?? 'loopback';
  const struck: Strike = newStrike(strikes.map((s) => s.fault));
  let pair: MigrationPair | undefined;
  const phases: string[] = strikes.map(() => 'not started');
  let timer: NodeJS.Timeout | undefined;
  let result: RunResult;
  try {
    const run = async () => {
      if (layout === 'netns') live.add((resources.net = NetnsLink.create()));
      if (layout === 'file') {
        const filling = strikes.find((s) => s.fault === 'full-tmpfs');
        live.add((resources.tmpfs = SmallTmpfs.mount(tmpfsBytes(filling?.momentMs ?? 0))));
      }
      const p = (pair = await startPair(plan.mode, proxies, layout, resources));
      await abRunning(p.source, AB);
      await p.source.qmp.execute('migrate', { uri: p.uri });
      const migrated = performance.now();
      const converging = convergeAfterFirstPass(p);
      await Promise.all(
        strikes.map(async (planned, i) => {
          await sleep(Math.max(0, planned.momentMs - (performance.now() - migrated)));
          phases[i] = await phaseOf(p);
          await strike(planned, p, struck);
        }),
      );
      await converging;
      const problems: Problem[] = [];
      let recovered = false;
      if (p.net) {
        try {
          recovered = await recoverOverLink(p, p.net, struck);
        } catch (error) {
          problems.push({ kind: 'state', detail: `the recovery of a paused postcopy over the netns link failed: ${(error as Error).message}` });
        }
      }
      const verdict = await judge(p, struck, proxies);
      // The harness recovered before the oracle looked (its own recovery goes through loopback): it is the same outcome.
      if (recovered && verdict.outcome === 'completed') verdict.outcome = 'paused-recovered';
      verdict.problems.unshift(...problems);
      verdict.problems.push(...expectedBeyondOracle(struck, verdict.outcome));
      return verdict;
    };
    const bound = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`the run took more than ${RUN_BOUND_MS / 1000} s`)), RUN_BOUND_MS);
    });
    const running = run();
    // Past the bound the clean-up below ends the processes under it: its late failure is not news.
    running.catch(() => {});
    const verdict = await Promise.race([running, bound]);
    const ms = Math.round(performance.now() - started);
    result = { ...plan, phase: phases[0]!, phases, ...verdict, notes: struck.notes, ms, ...(verdict.problems.length > 0 ? { evidence: evidenceOf(pair) } : {}) };
  } catch (error) {
    const problems: Problem[] = [{ kind: 'harness', detail: (error as Error).stack ?? String(error) }];
    const ms = Math.round(performance.now() - started);
    result = { ...plan, phase: phases[0]!, phases, outcome: 'harness-error', source: '?', destination: '?', problems, notes: struck.notes, ms, evidence: evidenceOf(pair) };
  } finally {
    clearTimeout(timer);
    await Promise.all(proxies.splice(0).map((p) => p.close()));
    await stopAllInstances();
  }
  const leftBehind = removeResources(resources);
  if (leftBehind.length > 0) {
    result.problems.push(...leftBehind.map((detail): Problem => ({ kind: 'leak', detail })));
    result.evidence ??= evidenceOf(pair);
  }
  return result;
}

/** The source's status now, or how it is gone. */
async function phaseOf(pair: MigrationPair): Promise<string> {
  try {
    return (await queryMigrate(pair.source.qmp)).status;
  } catch {
    return 'source gone';
  }
}

/** Bounds on each side coming to rest before the harness's own recovery (the oracle's). */
const SOURCE_SETTLE_MS = 30_000;
const DESTINATION_SETTLE_MS = 20_000;
const RECONNECT_MS = 30_000;
/** How long one `migrate resume=true` gets to leave postcopy-paused before the harness asks again. */
const RESUME_ATTEMPT_MS = 2_000;

/**
 * In the netns layout, a postcopy paused on both sides is recovered over
 * the real link, as the orchestrator does after a fault (orchestrator.ts's
 * recover, which goes through a loopback proxy the other namespace cannot
 * reach): `migrate-recover` on the destination's veth address, `migrate
 * resume=true` from the source to it. A link just back up may still refuse
 * the first connection (EHOSTUNREACH while the neighbour entry that failed
 * during the outage is renewed): the source then stays paused, and the
 * harness tries again, as an orchestrator would, within RECONNECT_MS.
 * Whether it recovered.
 */
async function recoverOverLink(pair: MigrationPair, net: NetnsLink, struck: Strike): Promise<boolean> {
  const source = await settle(pair.source, { timeoutMs: SOURCE_SETTLE_MS });
  if (source.exit || source.status !== 'postcopy-paused') return false;
  const destination = await settle(pair.destination, { timeoutMs: DESTINATION_SETTLE_MS, exitsWhenFailed: true });
  if (destination.exit || destination.status !== 'postcopy-paused') return false;
  await pair.destination.qmp.execute('migrate-recover', { uri: `tcp:${net.address.destination}:0` });
  const uri = await listeningUri(pair.destination);
  const deadline = Date.now() + RECONNECT_MS;
  const failures: string[] = [];
  while (Date.now() < deadline) {
    try {
      await pair.source.qmp.execute('migrate', { uri, resume: true });
    } catch (error) {
      // Refused while an earlier attempt still connects: wait for that one.
      if (!(error instanceof QmpError)) throw error;
    }
    // The status leaves postcopy-paused only once the new connection is up.
    const attemptEnds = Date.now() + RESUME_ATTEMPT_MS;
    while (Date.now() < attemptEnds) {
      const { status, 'error-desc': why } = await queryMigrate(pair.source.qmp);
      if (status !== 'postcopy-paused') {
        struck.notes.push(`recovered over the link${failures.length > 0 ? ` after: ${failures.join('; ')}` : ''}`);
        return true;
      }
      if (why !== undefined && !failures.includes(why)) failures.push(why);
      await sleep(50);
    }
  }
  throw new Error(`the source stayed postcopy-paused for ${RECONNECT_MS / 1000} s of attempts to resume to ${uri}${failures.length > 0 ? `: ${failures.join('; ')}` : ''}`);
}

/** Removes the run's namespaces and mount; what could not be removed (a leak). */
function removeResources(resources: LayoutResources): string[] {
  const left: string[] = [];
  if (resources.net) {
    resources.net.destroy();
    left.push(...resources.net.leftovers().map((what) => `the run's ${what} is still there after its clean-up`));
    live.delete(resources.net);
  }
  if (resources.tmpfs) {
    const busy = resources.tmpfs.remove();
    if (busy) left.push(busy);
    left.push(...resources.tmpfs.leftovers().map((what) => `the run's ${what} is still there after its clean-up`));
    live.delete(resources.tmpfs);
  }
  return left;
}

/** Removes what runs in progress made (on SIGINT or SIGTERM, before the campaign exits). */
export function removeLiveResources(): void {
  for (const resource of live) {
    if (resource instanceof NetnsLink) resource.destroy();
    else resource.remove();
  }
  live.clear();
}

function evidenceOf(pair: MigrationPair | undefined): string {
  return pair ? `${logTail(pair.source)}\n${logTail(pair.destination)}` : '(the pair did not start)';
}
