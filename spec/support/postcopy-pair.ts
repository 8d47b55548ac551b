/**
 * Postcopy migrations between real `livemig run` processes: the arguments
 * that turn postcopy on (the same on both sides, before incoming starts),
 * the switch the way an orchestrator asks for it (migrate, then
 * migrate-start-postcopy once the migration runs), the point of no return
 * seen from outside (the source's `downtime` appears once the package is
 * sent), and the ab check of a guest with several vCPUs, each of which
 * walks its own slice of the range.
 */
import { expect } from 'chai';
import type { QmpClient } from '../../protocols/qmp/client.js';
import type { TestInstance } from './instances.js';
import { abCheck, memoryKeepsChanging, queryMigrate, sleep, type MigrateInfo } from './migration-driver.js';
import { PAGE, logTail } from './multifd-pair.js';

export const POSTCOPY = ['--cap', 'postcopy-ram'];
/** `cont` on a source whose guest moved to the destination by postcopy (after the switch, paused or completed). */
export const CONT_REFUSED = 'Cannot continue a guest whose postcopy migration has started: it runs on the destination';

/** The ab range of a guest, and how many vCPUs walk it. */
export interface AbGuest {
  start: number;
  end: number;
  smp: number;
}

/** A guest of `ram` with the ab guest's vCPUs; with `runsAb`, running the ab workload over its range. */
export function abGuestArgs(ram: string, ab: AbGuest, runsAb = true): string[] {
  const guest = ['--ram', ram, '--smp', String(ab.smp)];
  return runsAb ? [...guest, '--workload', 'ab', '--ab-start', String(ab.start), '--ab-end', String(ab.end)] : guest;
}

/**
 * A link precopy cannot finish on, so postcopy must: `precopy` bytes/s with
 * a 1 ms downtime limit lets a pass leave at most precopy/1000 bytes for the
 * switchover, and a running ab guest rewrites far more than that in any
 * pass, however fast the host runs it. After the switch, background pages
 * go at `postcopy` bytes/s (requested ones are not held back).
 */
export function postcopyLink(precopy: number, postcopy: number): string[] {
  return ['--param', `max-bandwidth=${precopy}`, '--param', 'downtime-limit=1', '--param', `max-postcopy-bandwidth=${postcopy}`];
}

/**
 * The slices the ab workload gives its vCPUs: the range split evenly in
 * whole pages, the last vCPU taking what is left. In each slice, a stopped
 * guest holds H up to one boundary and H-1 from it on.
 */
export function abSlices(ab: AbGuest): { start: number; end: number }[] {
  const pages = (ab.end - ab.start) / PAGE;
  const per = Math.floor(pages / ab.smp);
  return Array.from({ length: ab.smp }, (_, v) => {
    const first = v * per;
    const count = v === ab.smp - 1 ? pages - first : per;
    return { start: ab.start + first * PAGE, end: ab.start + (first + count) * PAGE };
  });
}

/**
 * The ab check of a stopped instance, twice over: the product's own
 * `__org.livemig_check-ab`, and the independent file check over each vCPU's
 * slice of a pmemsave.
 */
export async function expectAbHolds(instance: TestInstance, ab: AbGuest, what: string): Promise<void> {
  const own = await instance.qmp.execute<{ ok: boolean; 'bad-pages': number; 'first-bad-pages': number[] }>('__org.livemig_check-ab');
  expect(own, `${what}: __org.livemig_check-ab`).to.deep.equal({ ok: true, 'bad-pages': 0, 'first-bad-pages': [] });
  for (const [vcpu, slice] of abSlices(ab).entries()) {
    const report = await abCheck(instance, slice.start, slice.end);
    expect(report.touched, `${what}: vCPU ${vcpu}'s slice was never written (the guest did not run)`).to.equal(true);
    expect(report.badPages, `${what}: vCPU ${vcpu}'s slice, pages off the ab pattern (H=${report.high}, boundary ${report.boundary})`).to.deep.equal([]);
  }
}

/**
 * Waits until the ab guest's vCPUs are at work (its memory changes). On a
 * loaded host they may start late, and a migration whose first pass finds
 * nothing dirtied behind it ends in precopy, whatever the downtime limit.
 */
export async function abRunning(instance: TestInstance, ab: AbGuest, timeoutMs = 30_000): Promise<void> {
  const running = await memoryKeepsChanging(instance, ab.start, 64 * 1024, timeoutMs);
  expect(running, `${instance.name}: the ab guest does not run its workload`).to.equal(true);
}

/**
 * Once the ab guest runs, starts a migration to `uri` and, once it is
 * active with some pages sent, asks for postcopy; resolves when the source
 * is past the point of no return (its `downtime` is set once the destination
 * confirmed the package) and the destination is in postcopy-active. Returns the source's
 * query-migrate then.
 */
export async function migrateAndSwitch(
  source: TestInstance,
  destination: TestInstance,
  uri: string,
  ab: AbGuest,
  timeoutMs = 60_000,
): Promise<MigrateInfo> {
  await abRunning(source, ab);
  await source.qmp.execute('migrate', { uri });
  await activeWithBytes(source.qmp, 256 * 1024, timeoutMs);
  await source.qmp.execute('migrate-start-postcopy');
  const switched = await pastPointOfNoReturn(source, destination, timeoutMs);
  const incoming = await waitForStatuses(destination.qmp, ['postcopy-active', 'postcopy-paused', 'completed', 'failed'], timeoutMs);
  expect(incoming.status, `destination after the switch: ${incoming['error-desc']}\n${logTail(destination)}`).to.be.oneOf(['postcopy-active', 'completed']);
  return switched;
}

/** Waits until the source is `active` with at least `bytes` sent. */
export async function activeWithBytes(qmp: QmpClient, bytes: number, timeoutMs = 60_000): Promise<MigrateInfo> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const info = await queryMigrate(qmp);
    if (info.status === 'active' && (info.ram?.transferred ?? 0) >= bytes) return info;
    if (info.status !== 'setup' && info.status !== 'active') throw new Error(`migration is ${info.status}: ${info['error-desc']}`);
    if (Date.now() > deadline) throw new Error(`only ${info.ram?.transferred} bytes sent (status ${info.status})`);
    await sleep(20);
  }
}

/**
 * Waits until the source is past its point of no return: it is in a postcopy
 * state with `downtime` set (from the stop until the destination confirmed
 * the package).
 * Fails at once if the migration ends another way.
 */
export async function pastPointOfNoReturn(source: TestInstance, destination: TestInstance, timeoutMs = 60_000): Promise<MigrateInfo> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const info = await queryMigrate(source.qmp);
    if (info.status === 'postcopy-active' && info.downtime !== undefined) return info;
    // Already over: only a postcopy one (with its stop-to-run figure) counts as switched.
    if (info.status === 'completed' && (info as unknown as Record<string, unknown>)['__org.livemig_postcopy'] !== undefined) return info;
    if (!['setup', 'active', 'postcopy-active'].includes(info.status)) {
      throw new Error(`source is ${info.status} before the package was sent: ${info['error-desc']}\n${logTail(destination)}`);
    }
    if (Date.now() > deadline) throw new Error(`source still ${info.status} without downtime after ${timeoutMs} ms`);
    await sleep(20);
  }
}

/** Polls query-migrate until the status is one of `statuses`; the last answer. */
export async function waitForStatuses(qmp: QmpClient, statuses: string[], timeoutMs = 60_000): Promise<MigrateInfo & Record<string, unknown>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const info = (await queryMigrate(qmp)) as MigrateInfo & Record<string, unknown>;
    if (statuses.includes(info.status)) return info;
    if (Date.now() > deadline) throw new Error(`status stayed '${info.status}', expected one of ${statuses.join(', ')}`);
    await sleep(20);
  }
}

/** The destination's page requests sent, from its query-migrate extension (0 when none). */
export function destinationRequests(info: Record<string, unknown>): number {
  const incoming = info['__org.livemig_incoming'] as { 'postcopy-requests'?: number } | undefined;
  return incoming?.['postcopy-requests'] ?? 0;
}
