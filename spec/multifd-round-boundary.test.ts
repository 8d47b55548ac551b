/**
 * The dirty-sync round boundary over multifd (DESIGN rule 2): a guest that
 * rewrites the same pages every round sends each page again in every round,
 * on whichever channel is free. If a copy from round k could land after the
 * copy from round k+1 (sent on another channel), the destination would hold
 * an older value for that page and the ab pattern would break.
 *
 * On an idle loopback every channel keeps up and that never happens, barrier
 * or not; so one destination channel is made slow (its worker thread under
 * SCHED_IDLE, with a busy loop on every CPU for the length of the
 * migration): without the barrier it then lands round-k pages after the
 * other channels' round-k+1 copies. Repeated, so a race shows up.
 */
import { expect } from 'chai';
import { startInstance, stopAllInstances } from './support/instances.js';
import { boundTcpUri, queryMigrate, sleep, type MigrateInfo } from './support/migration-driver.js';
import { MiB, channelListenersUp, expectMultifdMigrated, logTail, multifdArgs } from './support/multifd-pair.js';
import { busyLoops, enableMultifdChannels, starveThread } from './support/channel-threads.js';

/**
 * 24 MiB rewritten at full speed: every page is dirty again by every sync,
 * and a round is 12 batches over 4 channels, so which channel carries a page
 * changes from round to round.
 */
const AB = { start: 1 * MiB, end: 25 * MiB };
const GUEST = ['--ram', '32M', '--smp', '1'];
const CHANNELS = 4;
const MULTIFD = multifdArgs({ channels: CHANNELS });
/**
 * 200 MB/s with a 1 ms downtime limit: a round takes ~125 ms, and the
 * switchover threshold (~200 KB) stays far below what is dirty, so the
 * migration keeps iterating until the test raises the limit.
 */
const LINK = ['--param', 'max-bandwidth=200000000', '--param', 'downtime-limit=1'];
const MIN_SYNCS = 5;
/** Rounds to wait for before letting it switch over. */
const ROUNDS = 7;

/**
 * Polls until the source has done `count` dirty syncs, or has completed on
 * its own (a round in which the guest got no CPU at all leaves nothing
 * dirty, and a sync that finds nothing switches over); the last answer.
 */
async function syncsDone(qmp: Parameters<typeof queryMigrate>[0], count: number, timeoutMs = 20_000): Promise<MigrateInfo> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const info = await queryMigrate(qmp);
    if (info.status === 'completed' || (info.ram?.['dirty-sync-count'] ?? 0) >= count) return info;
    if (info.status !== 'setup' && info.status !== 'active') throw new Error(`migration is ${info.status}: ${info['error-desc']}`);
    if (Date.now() > deadline) throw new Error(`only ${info.ram?.['dirty-sync-count']} dirty syncs (status ${info.status})`);
    await sleep(50);
  }
}

describe('multifd round boundary: a guest rewriting the same pages every round', function () {
  this.timeout(60_000);
  afterEach(stopAllInstances);

  for (const attempt of [1, 2, 3]) {
    it(`no page goes back to an older value on the destination, one channel of ${CHANNELS} slow (≥${MIN_SYNCS} rounds, run ${attempt} of 3)`, async () => {
      const [destination, source] = await Promise.all([
        startInstance([...GUEST, '--incoming', 'defer'], { name: 'dst' }),
        startInstance([...GUEST, '--workload', 'ab', '--ab-start', '1M', '--ab-end', '25M', ...MULTIFD, ...LINK], { name: 'src' }),
      ]);
      const pid = destination.process.pid!;
      const workers = await enableMultifdChannels(destination.qmp, pid, CHANNELS);
      await destination.qmp.execute('migrate-incoming', { uri: 'tcp:127.0.0.1:0' });
      await channelListenersUp(destination, CHANNELS);
      starveThread(workers[attempt % CHANNELS]!);
      const busy = busyLoops();
      let info: MigrateInfo;
      try {
        await source.qmp.execute('migrate', { uri: await boundTcpUri(destination.qmp) });
        const iterating = await syncsDone(source.qmp, ROUNDS).catch((err: Error) => {
          throw new Error(`${err.message}\n${logTail(source)}\n${logTail(destination)}`);
        });
        // A generous downtime limit lets the next sync switch over.
        if (iterating.status !== 'completed') {
          await source.qmp.execute('migrate-set-parameters', { 'downtime-limit': 2000, 'max-bandwidth': 100_000_000_000 });
        }
        info = await expectMultifdMigrated(source, destination, AB);
      } finally {
        await busy.stop();
      }
      expect(info.ram!['dirty-sync-count'], 'dirty-sync-count').to.be.at.least(MIN_SYNCS);
      // The range went across again and again, on the channels.
      expect(info.ram!['multifd-bytes'], 'multifd-bytes').to.be.above((MIN_SYNCS - 1) * (AB.end - AB.start));
    });
  }
});
