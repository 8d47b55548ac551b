/**
 * Where one side of a run ended up, waited for with a bound: a migration
 * status it stays in, or the end of its process. A destination whose load
 * failed exits with status 1 (QEMU's behaviour, exit-on-error on), so
 * `failed` there is followed by the exit, which is waited for too.
 */
import type { TestInstance } from '../support/instances.js';
import { exitCode, queryMigrate, sleep } from '../support/migration-driver.js';
import { uncaughtTrace } from '../support/multifd-pair.js';

/** Statuses a migration rests in until someone acts (postcopy-paused waits for a recovery). */
const RESTING = ['completed', 'failed', 'cancelled', 'postcopy-paused'];
/** How long a process may take to exit once it reported `failed` (or its monitor closed). */
const EXIT_BOUND_MS = 10_000;

export interface Settled {
  status?: string;
  errorDesc?: string;
  /** True when the bound ran out with the migration still moving. */
  unsettled?: boolean;
  /** Set once the process ended. */
  exit?: { code: number | null; signal: NodeJS.Signals | null };
  /** A destination that exited after its load failed: the reason it printed ("load of migration failed: WHY"). */
  failedLoad?: string;
  /** Stack lines of an uncaught exception in the log (a crash, even in a process still up). */
  uncaught: string[];
}

export interface SettleOptions {
  timeoutMs: number;
  /** More statuses to rest in: a destination that never got a stream waits in `setup` forever, as QEMU's -incoming does. */
  alsoResting?: string[];
  /** The process exits once its migration failed (a destination): wait for that exit. */
  exitsWhenFailed?: boolean;
}

/** Waits until `instance` rests (see SettleOptions), or its process ends, or the bound runs out. */
export async function settle(instance: TestInstance, options: SettleOptions): Promise<Settled> {
  const { timeoutMs, alsoResting = [], exitsWhenFailed = false } = options;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (ended(instance)) return ending(instance, {});
    let status: string | undefined;
    let errorDesc: string | undefined;
    try {
      const info = await queryMigrate(instance.qmp);
      status = info.status;
      errorDesc = info['error-desc'];
    } catch {
      // The monitor closed: the process is on its way out.
      await exitCode(instance, EXIT_BOUND_MS).catch(() => undefined);
      if (ended(instance)) return ending(instance, {});
      throw new Error(`${instance.name}: its monitor stopped answering, yet the process runs on`);
    }
    if (status === 'failed' && exitsWhenFailed) {
      await exitCode(instance, EXIT_BOUND_MS).catch(() => undefined);
      if (ended(instance)) return ending(instance, { status, errorDesc });
    }
    if ((status !== undefined && RESTING.includes(status)) || alsoResting.includes(status ?? 'none')) {
      return { status, errorDesc, uncaught: uncaughtTrace(instance.stderr()) };
    }
    if (Date.now() > deadline) return { status, errorDesc, unsettled: true, uncaught: uncaughtTrace(instance.stderr()) };
    await sleep(50);
  }
}

function ended(instance: TestInstance): boolean {
  return instance.process.exitCode !== null || instance.process.signalCode !== null;
}

function ending(instance: TestInstance, last: { status?: string; errorDesc?: string }): Settled {
  const stderr = instance.stderr();
  const failedLoad = /^livemig: load of migration failed: (.*)$/m.exec(stderr)?.[1];
  return {
    ...last,
    exit: { code: instance.process.exitCode, signal: instance.process.signalCode },
    ...(failedLoad === undefined ? {} : { failedLoad }),
    uncaught: uncaughtTrace(stderr),
  };
}
