/**
 * The faults a campaign run injects, each the way it happens in the field:
 * the link's faults through the proxy on the main channel, a process's death
 * by SIGKILL, and an orchestrator's `migrate_cancel`. A fault whose moment
 * falls after the migration ended strikes all the same: it must then change
 * nothing.
 */
import type { QmpClient } from '../../protocols/qmp/client.js';
import { QmpError } from '../../protocols/qmp/errors.js';
import { sleep } from '../support/migration-driver.js';
import type { MigrationPair } from './migration-pair.js';
import type { Fault } from './plan.js';

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
 * Known defect of FaultProxy.throttle (spec/support/fault-proxy.ts): it
 * forwards a half-close as soon as it reads it, ahead of the bytes still
 * waiting in its pacing queue, so a source that ends its main stream during
 * the spell (a multifd source's main stream is a few KB, so it often does)
 * has the end of its stream cut off by the proxy; the destination then
 * rightly fails ("ended before its EOF") and the run fails its check.
 */
export const SLOW_RATE = 256_000;
export const SLOW_MS = 1_000;

/** What the harness did, for the oracle and the report. */
export interface Strike {
  fault: Fault;
  /** Which process was killed, if any: only it may have died. */
  killed?: 'source' | 'destination';
  /** migrate_cancel's refusal (in postcopy the source must refuse it), if it was refused. */
  cancelRefused?: string;
  /** The sides the harness yanked after a stall. */
  yanked: string[];
}

export async function strike(fault: Fault, pair: MigrationPair): Promise<Strike> {
  const done: Strike = { fault, yanked: [] };
  switch (fault) {
    case 'none':
      break;
    case 'cut':
      pair.proxy.cut();
      break;
    case 'stall':
      pair.proxy.stall();
      await sleep(STALL_BOUND_MS);
      for (const [side, instance] of [['source', pair.source], ['destination', pair.destination]] as const) {
        if (await yankMigration(instance.qmp)) done.yanked.push(side);
      }
      break;
    case 'corrupt':
      pair.proxy.corrupt();
      break;
    case 'slow':
      pair.proxy.throttle(SLOW_RATE);
      await sleep(SLOW_MS);
      pair.proxy.resume();
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
      try {
        await pair.source.qmp.execute('migrate_cancel');
      } catch (error) {
        if (!(error instanceof QmpError)) throw error;
        done.cancelRefused = error.desc;
      }
      break;
  }
  return done;
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
