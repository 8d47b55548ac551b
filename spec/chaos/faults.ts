/**
 * The faults a campaign run injects, each the way it happens in the field:
 * the link's faults through the proxy on the main channel or on a real veth
 * link between two network namespaces (taken down, or shaped by htb), a
 * full filesystem under a file: target, a process's death by SIGKILL, a
 * multifd channel's thread killed, and an orchestrator's `migrate_cancel`. A fault whose moment falls after the
 * migration ended strikes all the same: it must then change nothing. With
 * two faults a run, each strikes at its own moment, independently.
 */
import type { QmpClient } from '../../protocols/qmp/client.js';
import { QmpError } from '../../protocols/qmp/errors.js';
import { KILL_MULTIFD_THREAD_COMMAND } from '../../protocols/qmp/livemig-extensions.js';
import { queryMigrate, sleep } from '../support/migration-driver.js';
import type { MigrationPair } from './migration-pair.js';
import type { Outcome, Problem } from './oracle.js';
import type { Fault, StrikePlan } from './plan.js';

/**
 * How long a stalled link stays stalled before the harness yanks the
 * migration on both sides, as an orchestrator that sees no progress would.
 * yank (QEMU 6.0) is QEMU's remedy for a hung connection: it shuts the
 * channels down whatever they wait on, where migrate_cancel is only the
 * source's and leaves a destination reading a silent socket forever.
 */
export const STALL_BOUND_MS = 1_500;
/**
 * A slow link: this rate each way, for this long, then full speed again.
 * A close during the spell waits for the bytes the proxy still holds back.
 */
export const SLOW_RATE = 256_000;
export const SLOW_MS = 1_000;
/**
 * A link taken down: how long the harness waits with no progress at all
 * (the source's bytes sent and status unchanged) before it yanks both
 * sides, as for a stall. Longer than a stall's bound: a link that comes
 * back is only noticed at TCP's next retransmission, which backs off from
 * 200 ms (0.2, 0.6, 1.4, 3.0, 6.2 s after the last good packet), and an
 * orchestrator gives a flapping link that much.
 */
export const LINK_STALL_BOUND_MS = 4_000;
/** How often the harness looks at the source's progress while a link is down. */
const PROGRESS_POLL_MS = 100;
/** The htb rate of a very slow real link (tc's units): 2.5 MB/s, a tenth of the campaign's 24 MB/s. */
export const HTB_RATE = '20mbit';

/** What the harness did, for the oracle and the report. */
export interface Strike {
  /** The fault whose expectations the oracle applies (combinedFault): the only one, in a run of one. */
  fault: Fault;
  /** Every fault of the run. */
  faults: Fault[];
  /** Which process was killed, if any: only it may have died. */
  killed?: 'source' | 'destination';
  /** migrate_cancel's refusal (in postcopy the source must refuse it), if it was refused. */
  cancelRefused?: string;
  /** The sides the harness yanked after a stall, or a link down with no progress. */
  yanked: string[];
  /** What the harness saw while it struck (a link back in time, a migration already over), for the report. */
  notes: string[];
}

/** A fresh record of a run's strikes, before any lands. */
export function newStrike(faults: readonly Fault[]): Strike {
  return { fault: combinedFault(faults), faults: [...faults], yanked: [], notes: [] };
}

/** Faults after which the migration must complete (the oracle knows none and slow; htb-rate is checked by expectedBeyondOracle). */
const BENIGN: readonly Fault[] = ['none', 'slow', 'htb-rate'];

/**
 * The fault the oracle judges a run by: with two faults, one that may end
 * the migration rules (a slow spell and a kill together need not complete).
 */
function combinedFault(faults: readonly Fault[]): Fault {
  return faults.find((f) => !BENIGN.includes(f)) ?? faults[0]!;
}

/** Strikes `plan`'s fault on `pair`, recording into `done` (shared by a run's strikes). */
export async function strike(plan: StrikePlan, pair: MigrationPair, done: Strike): Promise<void> {
  switch (plan.fault) {
    case 'none':
      break;
    case 'cut':
      proxyOf(pair).cut();
      break;
    case 'stall':
      proxyOf(pair).stall();
      await sleep(STALL_BOUND_MS);
      await yankBoth(pair, done);
      break;
    case 'corrupt':
      proxyOf(pair).corrupt();
      break;
    case 'slow':
      proxyOf(pair).throttle(SLOW_RATE);
      await sleep(SLOW_MS);
      proxyOf(pair).resume();
      break;
    case 'kill-source':
      pair.source.process.kill('SIGKILL');
      done.killed = 'source';
      break;
    case 'kill-destination':
      pair.destination.process.kill('SIGKILL');
      done.killed = 'destination';
      break;
    case 'cancel':
      if (done.killed === 'source' || !alive(pair.source)) {
        done.notes.push('cancel: the source was gone');
        break;
      }
      try {
        await pair.source.qmp.execute('migrate_cancel');
      } catch (error) {
        // The other fault of the run killed the source while the request was on its way.
        if (!(error instanceof QmpError) && killedSource(done)) break;
        if (!(error instanceof QmpError)) throw error;
        done.cancelRefused = error.desc;
      }
      break;
    case 'full-tmpfs': {
      // The filesystem was made small before the migration (tmpfsBytes): it fills up by itself, about now.
      const tmpfs = pair.file?.tmpfs;
      if (!tmpfs) throw new Error('full-tmpfs needs a file target on a small tmpfs');
      done.notes.push(`tmpfs of ${(tmpfs.sizeBytes / 2 ** 20).toFixed(1)} MiB`);
      break;
    }
    case 'link-down':
      await linkDown(pair, plan, done);
      break;
    case 'kill-multifd-thread':
      await killMultifdThread(pair, plan, done);
      break;
    case 'htb-rate': {
      const net = netOf(pair);
      net.shape(HTB_RATE);
      await sleep(plan.forMs ?? 0);
      net.unshape();
      break;
    }
  }
}

/**
 * Has one side kill the thread of one of its multifd channels, as a crash
 * of that thread would end it. Before the channels connect, or once the
 * migration is over, the instance refuses: the fault then changed nothing.
 */
async function killMultifdThread(pair: MigrationPair, plan: StrikePlan, done: Strike): Promise<void> {
  const side = plan.side ?? 'source';
  if (done.killed === side || !alive(pair[side])) {
    done.notes.push(`kill-multifd-thread: the ${side} was gone`);
    return;
  }
  try {
    await pair[side].qmp.execute(KILL_MULTIFD_THREAD_COMMAND, { channel: plan.channel ?? 0 });
    done.notes.push(`kill-multifd-thread: the ${side}'s channel ${plan.channel ?? 0}`);
  } catch (error) {
    if (!(error instanceof QmpError)) return void done.notes.push(`kill-multifd-thread: the ${side} was gone`);
    done.notes.push(`${KILL_REFUSED} ${error.desc}`);
  }
}

const KILL_REFUSED = 'kill-multifd-thread: refused:';

/**
 * Takes one end of the veth down for the plan's time, then up. Meanwhile
 * the harness watches the source, as an orchestrator would: if nothing
 * moves for LINK_STALL_BOUND_MS (the link back or not) it yanks both sides
 * then and there; once bytes move again after the link is back, it leaves
 * the migration be.
 */
async function linkDown(pair: MigrationPair, plan: StrikePlan, done: Strike): Promise<void> {
  const net = netOf(pair);
  const side = plan.side ?? 'source';
  const link = { up: false };
  net.setLink(side, 'down');
  const watching = (async () => {
    const seen = await watchProgress(pair, link);
    if (seen === 'stalled') {
      done.notes.push(`link-down: nothing moved for ${LINK_STALL_BOUND_MS} ms (the link ${link.up ? 'back' : 'still down'}): yanked`);
      await yankBoth(pair, done);
    } else if (seen === 'moved') {
      done.notes.push('link-down: the migration moved on once the link was back');
    } else if (seen === 'gone') {
      done.notes.push('link-down: the source was gone');
    } else {
      done.notes.push(`link-down: the migration was over ${link.up ? 'once the link was back' : 'with the link down'}`);
    }
  })();
  try {
    await sleep(plan.forMs ?? 0);
  } finally {
    net.setLink(side, 'up');
    link.up = true;
  }
  await watching;
}

/**
 * Follows the source's progress (status and bytes sent): 'ended' once the
 * migration no longer moves by itself, 'gone' with the source, 'moved' when
 * it made progress after the link came back, 'stalled' after
 * LINK_STALL_BOUND_MS without any.
 */
async function watchProgress(pair: MigrationPair, link: { up: boolean }): Promise<'ended' | 'gone' | 'moved' | 'stalled'> {
  let last: string | undefined;
  let since = Date.now();
  for (;;) {
    let mark: string;
    try {
      const info = await queryMigrate(pair.source.qmp);
      if (!['setup', 'active', 'device', 'pre-switchover', 'postcopy-active', 'postcopy-recover'].includes(info.status)) return 'ended';
      mark = `${info.status}:${info.ram?.transferred ?? 0}`;
    } catch {
      return 'gone'; // another fault of the run killed the source
    }
    const now = Date.now();
    if (mark !== last) {
      if (last !== undefined && link.up) return 'moved';
      last = mark;
      since = now;
    } else if (now - since > LINK_STALL_BOUND_MS) {
      return 'stalled';
    }
    await sleep(PROGRESS_POLL_MS);
  }
}

/** Read afresh (another strike may have killed the source while this one awaited). */
function killedSource(done: Strike): boolean {
  return done.killed === 'source';
}

function proxyOf(pair: MigrationPair) {
  if (!pair.proxy) throw new Error(`the ${pair.layout} layout has no fault proxy`);
  return pair.proxy;
}

function netOf(pair: MigrationPair) {
  if (!pair.net) throw new Error(`the ${pair.layout} layout has no netns link`);
  return pair.net;
}

function alive(instance: { process: { exitCode: number | null; signalCode: NodeJS.Signals | null } }): boolean {
  return instance.process.exitCode === null && instance.process.signalCode === null;
}

async function yankBoth(pair: MigrationPair, done: Strike): Promise<void> {
  for (const [side, instance] of [['source', pair.source], ['destination', pair.destination]] as const) {
    if (!done.yanked.includes(side) && (await yankMigration(instance.qmp))) done.yanked.push(side);
  }
}

/**
 * Yanks the migration instance if the process still lists one (none once the
 * migration is over, or the process gone); whether it did.
 */
async function yankMigration(qmp: QmpClient): Promise<boolean> {
  try {
    const instances = await qmp.execute<{ type: string }[]>('query-yank');
    if (!instances.some((i) => i.type === 'migration')) return false;
    await qmp.execute('yank', { instances: [{ type: 'migration' }] });
    return true;
  } catch (error) {
    // The migration ended between the query and the yank: nothing left to yank.
    if (error instanceof QmpError && error.errorClass === 'DeviceNotFound') return false;
    if (error instanceof QmpError) throw error;
    return false; // the process ended (a destination exits once its load failed)
  }
}

/**
 * What the new faults may end in, beyond the oracle's rules (which know
 * `none` and `slow`): a migration whose only faults were benign (htb-rate
 * among them) completes, and so does one whose link came back before the
 * harness gave up on it, since nothing broke: TCP carried it over.
 */
export function expectedBeyondOracle(done: Strike, outcome: Outcome | 'harness-error'): Problem[] {
  if (outcome !== 'source-kept' && outcome !== 'died-with-killed' && outcome !== 'unsettled') return [];
  const rodeOut = (f: Fault) => f === 'link-down' && done.yanked.length === 0 && !done.notes.some((n) => n.startsWith('link-down: nothing moved'));
  const refused = (f: Fault) => f === 'kill-multifd-thread' && done.notes.some((n) => n.startsWith(KILL_REFUSED));
  if (!done.faults.every((f) => BENIGN.includes(f) || rodeOut(f) || refused(f))) return [];
  // The oracle already holds `none` and `slow` alone to this.
  if (done.faults.every((f) => f === 'none' || f === 'slow')) return [];
  return [{ kind: 'state', detail: `a migration with fault${done.faults.length > 1 ? 's' : ''} '${done.faults.join("', '")}' (nothing yanked) must complete; it ended '${outcome}'` }];
}
