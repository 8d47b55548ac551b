/**
 * One real-QEMU postcopy run, the yardstick for livemig's: both QEMUs (TCG,
 * plain `-m` RAM) boot the dirtying boot sector of qemu-dirty-guest/dirty.asm, which
 * adds 1 to the first byte of every page of [1 MiB, 100 MiB) over and over;
 * the source runs it, the destination waits with `-incoming defer` and runs
 * it on after the switch. The plan is postcopy-plan.ts's, as for livemig.
 * The destination's RAM is not pre-allocated: QEMU's postcopy discards all
 * of it when incoming starts (postcopy_ram_incoming_init), so nothing would
 * stay warm. Afterwards the destination, stopped, must pass QEMU's
 * migration-test check on the first byte of every page of the range.
 *
 * Postcopy needs userfaultfd on the destination: QEMU refuses postcopy-ram
 * when the host does not give it ("Postcopy is not supported", its reason on
 * stderr), and the scenario is then not available, not failed.
 */
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { QmpError } from '../../protocols/qmp/errors.js';
import { dirtyGuestImage } from './dirty-guest-image.js';
import { measureMigration } from './measure-migration.js';
import { failedRunWithLogs, migrationMetrics } from './migration-metrics.js';
import { NotAvailable } from './not-available.js';
import { postcopyFigures, postcopyMigrationPlan } from './postcopy-plan.js';
import { quitAll, startQemu, type QemuProcess } from './qemu-migration.js';
import type { RunMetrics } from './results.js';
import { POSTCOPY_DIRTY_RANGE, type QemuScenario } from './scenarios.js';
import { onTeardown } from './teardown.js';
import { waitUntil } from './wait-until.js';
import { startTogether } from './start-together.js';

/** Where the boot sector counts its passes over POSTCOPY_DIRTY_RANGE. */
const PASS_COUNTER = 0x600;
const PAGE = 4096;
/** Booting under TCG on a busy machine. */
const BOOT_TIMEOUT_MS = 60_000;
/** Passes the guest completes before the migration starts, so it runs at its pace (livemig's guests get 500 ms). */
const WARMUP_PASSES = 2;
/** How long QEMU may take to print why it refused a capability. */
const STDERR_GRACE_MS = 200;

export async function runQemuPostcopy(scenario: QemuScenario, dir: string, run: number): Promise<RunMetrics> {
  const plan = scenario.postcopy!;
  const tag = `${scenario.name}-${run}`;
  const started: QemuProcess[] = [];
  const dump = join(dir, `${tag}-range.mem`);
  const undo = onTeardown(async () => {
    await quitAll(started);
    rmSync(dump, { force: true });
  });
  try {
    const guest = ['-drive', `file=${dirtyGuestImage()},format=raw,if=ide,snapshot=on`];
    await startTogether([
      startQemu(guest, join(dir, `${tag}-src.qmp`), scenario.ram, false),
      startQemu([...guest, '-incoming', 'defer'], join(dir, `${tag}-dst.qmp`), scenario.ram, false),
    ], started);
    const [source, destination] = started as [QemuProcess, QemuProcess];
    const migration = postcopyMigrationPlan('tcp:127.0.0.1:0', plan);
    // The destination decides whether postcopy can run here (userfaultfd): ask it first.
    await refusalIsNotAvailable(destination, () =>
      destination.qmp.execute('migrate-set-capabilities', { capabilities: [{ capability: 'events', state: true }, ...migration.caps] }));
    await waitUntil(BOOT_TIMEOUT_MS, `the boot sector's pass ${WARMUP_PASSES}`, async () => (await passes(source)) >= WARMUP_PASSES);

    const result = await measureMigration({ qmp: source.qmp, pid: source.process.pid! }, { qmp: destination.qmp, pid: destination.process.pid! }, migration, true);
    const completed = result.source.status === 'completed' && result.destination.status === 'completed';
    const bad = completed ? await badPages(destination, dump) : null;
    const metrics = migrationMetrics(result.source, result.usage, bad === null ? null : bad === 0, result.series);
    if (bad) return { ...metrics, error: `the destination's pages break the dirtying guest's pattern ${bad} times` };
    if (!metrics.ok) return metrics;
    if (result.destination.status !== 'completed') {
      return { ...metrics, ok: false, error: `destination ${String(result.destination.status)}: ${String(result.destination['error-desc'] ?? '')}` };
    }
    const figures = postcopyFigures(result.source, result.destination, result.switchover ?? {});
    if ('error' in figures) return { ...metrics, ok: false, error: figures.error };
    return { ...metrics, postcopy: figures };
  } catch (err) {
    if (err instanceof NotAvailable) throw err;
    return failedRunWithLogs(err, started, Infinity);
  } finally {
    await undo();
  }
}

/** A QMP refusal becomes "not available", with what QEMU printed about it (error_report: the reason behind "Postcopy is not supported"). */
async function refusalIsNotAvailable(qemu: QemuProcess, command: () => Promise<unknown>): Promise<void> {
  try {
    await command();
  } catch (err) {
    if (!(err instanceof QmpError)) throw err;
    await new Promise((r) => setTimeout(r, STDERR_GRACE_MS));
    const why = qemu.stderr().trim().split('\n').at(-1);
    throw new NotAvailable(`QEMU: ${err.message}${why ? ` (${why})` : ''}`);
  }
}

/** The boot sector's pass counter. */
export async function passes(qemu: QemuProcess): Promise<number> {
  const line = await qemu.qmp.execute<string>('human-monitor-command', { 'command-line': `xp /1wx ${PASS_COUNTER}` });
  const m = /0x([0-9a-f]+)\s*$/i.exec(line.trim());
  return m ? Number.parseInt(m[1]!, 16) : 0;
}

/**
 * QEMU's migration-test check (check_guests_ram) on the stopped destination:
 * going up the range, each page's first byte equals the one before, except
 * at most once where it is one less (the page the guest was about to touch);
 * returns how many times the pattern breaks.
 */
async function badPages(destination: QemuProcess, dump: string): Promise<number> {
  await destination.qmp.execute('stop');
  await destination.qmp.execute('pmemsave', { val: POSTCOPY_DIRTY_RANGE.start, size: POSTCOPY_DIRTY_RANGE.end - POSTCOPY_DIRTY_RANGE.start, filename: dump }, { timeoutMs: 60_000 });
  const bytes = readFileSync(dump);
  rmSync(dump, { force: true });
  let last = bytes[0]!;
  let edge = false;
  let bad = 0;
  for (let at = PAGE; at < bytes.length; at += PAGE) {
    const b = bytes[at]!;
    if (b !== last) {
      if (((b + 1) & 0xff) === last && !edge) edge = true;
      else bad++;
    }
    last = b;
  }
  return bad;
}
