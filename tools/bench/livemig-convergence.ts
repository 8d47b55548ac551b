/**
 * One livemig convergence run (convergence-plan.ts): a source whose RAM
 * holds random bytes running `ab` over the dirty range, a destination held
 * paused (-S) with its RAM pre-faulted, the lever's capability and the
 * limits set on both (a lever livemig refuses makes the scenario "not
 * available"), the guest's pace measured, then a migration bounded by the
 * plan: completed (the two memories' digests compared) or cancelled at the
 * bound.
 */
import { join } from 'node:path';
import { spawnInstance, type InstanceProcess } from '../instance-process.js';
import { convergenceMigrationPlan, CONVERGENCE_DIRTY_RANGE } from './convergence-plan.js';
import { measureConvergenceRun } from './convergence-run.js';
import type { WorkCounter } from './guest-pace.js';
import { probeSupport, quitAll, sameMemory } from './livemig-migration.js';
import { livemigEndpoint } from './measure-migration.js';
import { failedRunWithLogs } from './migration-metrics.js';
import { NotAvailable } from './not-available.js';
import type { RunMetrics } from './results.js';
import type { LivemigScenario } from './scenarios.js';
import { onTeardown } from './teardown.js';
import { waitUntil } from './wait-until.js';
import { startTogether } from './start-together.js';

const START_TIMEOUT_MS = 60_000;
const PREFAULT_TIMEOUT_MS = 60_000;

export async function runLivemigConvergence(scenario: LivemigScenario, dir: string, run: number): Promise<RunMetrics> {
  const plan = scenario.convergence!;
  const tag = `${scenario.name}-${run}`;
  const base = ['--ram', String(scenario.ram), '--smp', '1'];
  const started: InstanceProcess[] = [];
  const undo = onTeardown(() => quitAll(started));
  try {
    const range = ['--ab-start', String(CONVERGENCE_DIRTY_RANGE.start), '--ab-end', String(CONVERGENCE_DIRTY_RANGE.end)];
    await startTogether([
      spawnInstance([...base, '--fill', 'random', '--workload', 'ab', ...range], { socket: join(dir, `${tag}-src.qmp`), name: 'source', timeoutMs: START_TIMEOUT_MS }),
      spawnInstance([...base, '--incoming', 'defer', '--paused'], { socket: join(dir, `${tag}-dst.qmp`), name: 'destination', timeoutMs: START_TIMEOUT_MS }),
    ], started);
    const [source, destination] = started as [InstanceProcess, InstanceProcess];
    const migration = convergenceMigrationPlan(scenario.transport === 'unix' ? `unix:${join(dir, `${tag}-mig.sock`)}` : 'tcp:127.0.0.1:0', plan);
    await Promise.all([probeSupport(destination, migration), probeSupport(source, migration)]);
    await waitUntil(PREFAULT_TIMEOUT_MS, 'the destination to pre-fault its RAM', async () =>
      (await destination.qmp.execute<{ prefaulted: boolean }>('__org.livemig_query-guest')).prefaulted);
    // One vCPU: its vcpu-work is the guest's page writes.
    const pagesWritten: WorkCounter = {
      read: async () => (await source.qmp.execute<{ 'vcpu-work': number[] }>('__org.livemig_query-guest'))['vcpu-work'][0]!,
      pagesPerCount: 1,
    };
    // Also the guest's warm-up: a second at its pace before `migrate`.
    return await measureConvergenceRun(
      livemigEndpoint(source),
      livemigEndpoint(destination),
      migration,
      plan,
      pagesWritten,
      () => sameMemory(source, destination),
    );
  } catch (err) {
    if (err instanceof NotAvailable) throw err;
    return failedRunWithLogs(err, started);
  } finally {
    await undo();
  }
}
