/**
 * One real-QEMU convergence run (convergence-plan.ts), the yardstick for
 * livemig's: both QEMUs (TCG) boot the dirtying boot sector of
 * qemu-dirty-guest/; the source runs it over RAM that holds random bytes,
 * the destination waits with `-incoming defer`, paused (-S) and its RAM
 * pre-allocated (warm, as livemig's). The lever's capability and the limits are set on both; what
 * QEMU refuses makes the scenario "not available" in QEMU's own words. The
 * guest's pace is measured, then the migration runs, bounded by the plan:
 * completed (the two guests' RAM, dumped with pmemsave, compared) or
 * cancelled at the bound.
 */
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { QmpError } from '../../protocols/qmp/errors.js';
import { convergenceMigrationPlan, CONVERGENCE_DIRTY_RANGE, type ConvergencePlan } from './convergence-plan.js';
import { measureConvergenceRun } from './convergence-run.js';
import { dirtyGuestImage } from './dirty-guest-image.js';
import { guestMemoryFile } from './guest-memory-file.js';
import type { WorkCounter } from './guest-pace.js';
import { failedRunWithLogs } from './migration-metrics.js';
import { NotAvailable } from './not-available.js';
import { quitAll, startQemu, type QemuProcess } from './qemu-migration.js';
import { passes } from './qemu-postcopy.js';
import type { RunMetrics } from './results.js';
import type { QemuScenario } from './scenarios.js';
import { onTeardown } from './teardown.js';
import { waitUntil } from './wait-until.js';
import { startTogether } from './start-together.js';

const PAGE = 4096;
/** Pages the boot sector writes in one pass (its counter counts passes). */
const PASS_PAGES = (CONVERGENCE_DIRTY_RANGE.end - CONVERGENCE_DIRTY_RANGE.start) / PAGE;
/** Booting under TCG on a busy machine. */
const BOOT_TIMEOUT_MS = 60_000;
/** How often the pass counter is read while the guest boots. */
const BOOT_POLL_MS = 200;
/** Passes in one poll that only a running boot sector makes (it makes ~100): not a random word, not one the boot sector just zeroed. */
const PLAUSIBLE_PASSES = { min: 1, max: 100_000 } as const;

export async function runQemuConvergence(scenario: QemuScenario, dir: string, run: number): Promise<RunMetrics> {
  const plan = scenario.convergence!;
  const tag = `${scenario.name}-${run}`;
  const started: QemuProcess[] = [];
  const dumps = [join(dir, `${tag}-src.ram`), join(dir, `${tag}-dst.ram`)] as const;
  const undo = onTeardown(async () => {
    await quitAll(started);
    for (const d of dumps) rmSync(d, { force: true });
  });
  try {
    const guest = ['-drive', `file=${dirtyGuestImage()},format=raw,if=ide,snapshot=on`];
    // Random bytes in all of RAM, as livemig's --fill random: a private copy of the bench's random file, made
    // resident before the guest runs (prealloc), that the guest's writes never reach.
    const randomRam = `memory-backend-file,id=mem0,size=${scenario.ram},mem-path=${await guestMemoryFile(scenario.ram, 'random')},share=off,prealloc=on`;
    // The destination's RAM block has the same name (mem0), pre-allocated.
    const warmRam = `memory-backend-ram,id=mem0,size=${scenario.ram},prealloc=on`;
    const memory = (backend: string) => ['-machine', 'pc,memory-backend=mem0', '-object', backend];
    await startTogether([
      startQemu([...memory(randomRam), ...guest], join(dir, `${tag}-src.qmp`), scenario.ram, false),
      startQemu([...memory(warmRam), ...guest, '-incoming', 'defer'], join(dir, `${tag}-dst.qmp`), scenario.ram, true),
    ], started);
    const [source, destination] = started as [QemuProcess, QemuProcess];
    const migration = convergenceMigrationPlan('tcp:127.0.0.1:0', plan);
    for (const qemu of [destination, source]) await refusalIsNotAvailable(qemu, plan, migration.caps, migration.params);
    await bootSectorRunning(source);
    const pagesWritten: WorkCounter = { read: () => passes(source), pagesPerCount: PASS_PAGES };
    return await measureConvergenceRun(
      { qmp: source.qmp, pid: source.process.pid! },
      { qmp: destination.qmp, pid: destination.process.pid! },
      migration,
      plan,
      pagesWritten,
      () => sameRam(source, destination, scenario.ram, dumps),
    );
  } catch (err) {
    if (err instanceof NotAvailable) throw err;
    return failedRunWithLogs(err, started, Infinity);
  } finally {
    await undo();
  }
}

/**
 * Waits until the boot sector runs: its pass counter rose by a plausible
 * count in each of two polls in a row. (Its RAM starts random, so the
 * counter is a random word until the boot sector zeroes it.)
 */
async function bootSectorRunning(qemu: QemuProcess): Promise<void> {
  let last = await passes(qemu);
  let good = 0;
  await waitUntil(BOOT_TIMEOUT_MS, 'the boot sector to run', async () => {
    await new Promise((r) => setTimeout(r, BOOT_POLL_MS));
    const now = await passes(qemu);
    const made = (now - last) >>> 0;
    last = now;
    good = made >= PLAUSIBLE_PASSES.min && made <= PLAUSIBLE_PASSES.max ? good + 1 : 0;
    return good >= 2;
  });
}

/**
 * Sets the plan's capabilities, then its parameters; a refusal becomes "not
 * available" with QEMU's words. For dirty-limit QEMU is also asked for the
 * vCPU dirty limit the capability would set (set-vcpu-dirty-limit), whose
 * refusal says what this QEMU would need for it.
 */
async function refusalIsNotAvailable(qemu: QemuProcess, plan: ConvergencePlan, caps: object[], params: object[]): Promise<void> {
  try {
    if (caps.length > 0) await qemu.qmp.execute('migrate-set-capabilities', { capabilities: caps });
    for (const p of params) await qemu.qmp.execute('migrate-set-parameters', p);
  } catch (err) {
    if (!(err instanceof QmpError)) throw err;
    let why = `QEMU: ${err.message}`;
    if (plan.lever === 'dirty-limit') {
      const limit = await qemu.qmp.execute('set-vcpu-dirty-limit', { 'dirty-rate': 1 }).then(
        async () => {
          await qemu.qmp.execute('cancel-vcpu-dirty-limit');
          return 'accepted';
        },
        (e: Error) => e.message,
      );
      why += `; set-vcpu-dirty-limit: ${limit}`;
    }
    throw new NotAvailable(why);
  }
}

/** The source's and the destination's guest RAM, both stopped, dumped and compared byte for byte. */
async function sameRam(source: QemuProcess, destination: QemuProcess, ram: number, dumps: readonly [string, string]): Promise<boolean> {
  await Promise.all([source, destination].map((qemu, i) =>
    qemu.qmp.execute('pmemsave', { val: 0, size: ram, filename: dumps[i] }, { timeoutMs: 60_000 })));
  const same = readFileSync(dumps[0]).equals(readFileSync(dumps[1]));
  for (const d of dumps) rmSync(d, { force: true });
  return same;
}
