/**
 * What the orchestrator does during a run, as libvirt would with QEMU. The
 * ab guest rewrites its whole range during every pass, so no migration
 * converges by itself: once the first pass over RAM is over the
 * orchestrator pulls its lever — `migrate-start-postcopy` in postcopy, a
 * downtime limit raised to QEMU's maximum otherwise (libvirt's
 * migrate-setmaxdowntime). This makes every run last about two passes (the
 * first over RAM, then the first of dirty pages, before which no switchover
 * is decided), and leaves faults room to land before, during and after the switchover.
 * After a fault in postcopy it brings a paused migration back the way QEMU
 * documents: `migrate-recover` on the destination, then `migrate` with
 * `resume: true` on the source, through a fresh proxy, since the old link
 * is the broken one.
 */
import type { FaultProxy } from '../support/fault-proxy.js';
import { queryMigrate, sleep } from '../support/migration-driver.js';
import { waitForStatuses } from '../support/postcopy-pair.js';
import { proxyTo, type MigrationPair } from './migration-pair.js';

/** query-migrate's dirty-sync-count once the first pass is over (the first sync is at setup). */
const FIRST_PASS_DONE = 2;
/** QEMU's largest downtime-limit, in ms: at the campaign's link it lets the switchover take the whole ab range. */
const MAX_DOWNTIME_MS = 2_000;
/** How long the source may take to reconnect on `migrate resume=true`. */
const RECONNECT_MS = 30_000;

/**
 * Polls the source and pulls the lever once the first pass is over; gives
 * up quietly once the migration is no longer in setup/active (a fault ended
 * it) or the source is gone. Resolves with whether it pulled it.
 */
export async function convergeAfterFirstPass(pair: MigrationPair, timeoutMs = 30_000): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  try {
    while (Date.now() < deadline) {
      const info = await queryMigrate(pair.source.qmp);
      if (info.status !== 'setup' && info.status !== 'active') return false;
      if (info.status === 'active' && (info.ram?.['dirty-sync-count'] ?? 0) >= FIRST_PASS_DONE) {
        if (pair.mode === 'postcopy') await pair.source.qmp.execute('migrate-start-postcopy');
        else await pair.source.qmp.execute('migrate-set-parameters', { 'downtime-limit': MAX_DOWNTIME_MS });
        return true;
      }
      await sleep(20);
    }
  } catch {
    // The source was killed, or the migration ended between the query and the request.
  }
  return false;
}

/** migrate-recover on a new port of the destination, a fresh proxy to it, and `migrate resume=true` through it. */
export async function recover(pair: MigrationPair, proxies: FaultProxy[]): Promise<void> {
  await pair.destination.qmp.execute('migrate-recover', { uri: 'tcp:127.0.0.1:0' });
  const proxy = await proxyTo(pair.destination, proxies);
  await pair.source.qmp.execute('migrate', { uri: proxy.uri, resume: true });
  // The status leaves postcopy-paused only once the new connection is up.
  await waitForStatuses(pair.source.qmp, ['postcopy-recover', 'postcopy-active', 'completed', 'failed'], RECONNECT_MS);
}
