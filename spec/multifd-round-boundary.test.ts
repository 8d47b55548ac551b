/**
 * The dirty-sync round boundary over multifd (DESIGN rule 2): a guest that
 * rewrites the same pages every round sends each page again in every round,
 * on whichever channel is free. If a copy from round k could land after the
 * copy from round k+1 (sent on another channel), the destination would hold
 * an older value for that page and the ab pattern would break.
 *
 * On an idle loopback every channel keeps up and that never happens, barrier
 * or not; so one destination channel is held back for certain: its worker
 * thread is frozen (ptrace) in the middle of the iterations, with a round's
 * pages unread in its socket, while the source goes on to newer rounds and
 * the switchover on the other channels; it is let go only after that.
 * Without the barrier its stale pages would land last.
 */
import { expect } from 'chai';
import { startInstance, stopAllInstances } from './support/instances.js';
import { boundTcpUri, queryMigrate, sleep, type MigrateInfo } from './support/migration-driver.js';
import { MiB, channelListenersUp, expectMultifdMigrated, logTail, multifdArgs } from './support/multifd-pair.js';
import { enableMultifdChannels } from './support/channel-threads.js';
import { threadFreezer } from './support/thread-freeze.js';

/**
 * 24 MiB rewritten at full speed: every page is dirty again by every sync,
 * and a round is 6 batches over 4 channels, so which channel carries a page
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
/** Rounds before a channel is frozen, so it is frozen with pages in flight. */
const ROUNDS_BEFORE_FREEZE = 3;
/** How long the channel stays frozen while the source iterates, then switches over. */
const FROZEN_ITERATING_MS = 600;
const FROZEN_SWITCHING_MS = 600;

/**
 * Polls until the source has done `count` dirty syncs, or has completed on
 * its own (a sync that finds too little dirty switches over); the last answer.
 */
async function syncsDone(qmp: Parameters<typeof queryMigrate>[0], count: number, timeoutMs = 20_000): Promise<MigrateInfo> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const info = await queryMigrate(qmp);
    if (info.status === 'completed' || (info.ram?.['dirty-sync-count'] ?? 0) >= count) return info;
    if (info.status !== 'setup' && info.status !== 'active') throw new Error(`migration is ${info.status}: ${info['error-desc']}`);
    if (Date.now() > deadline) throw new Error(`only ${info.ram?.['dirty-sync-count']} dirty syncs (status ${info.status})`);
    await sleep(20);
  }
}

describe('multifd round boundary: a guest rewriting the same pages every round', function () {
  this.timeout(60_000);
  // Needs python3 and ptrace; without them there is nothing to hold a channel with.
  const freeze = threadFreezer();
  afterEach(stopAllInstances);

  // A run catches a missing barrier about 4 times in 10 (it depends on what the frozen channel holds unread): six runs.
  for (const attempt of [1, 2, 3, 4, 5, 6]) {
    const channel = attempt % CHANNELS;
    it(`no page goes back to an older value on the destination, channel ${channel} of ${CHANNELS} frozen across rounds and the switchover (run ${attempt} of 6)`, async () => {
      const [destination, source] = await Promise.all([
        startInstance([...GUEST, '--incoming', 'defer'], { name: 'dst' }),
        startInstance([...GUEST, '--workload', 'ab', '--ab-start', '1M', '--ab-end', '25M', ...MULTIFD, ...LINK], { name: 'src' }),
      ]);
      const workers = await enableMultifdChannels(destination.qmp, destination.process.pid!, CHANNELS);
      await destination.qmp.execute('migrate-incoming', { uri: 'tcp:127.0.0.1:0' });
      await channelListenersUp(destination, CHANNELS);

      await source.qmp.execute('migrate', { uri: await boundTcpUri(destination.qmp) });
      const iterating = await syncsDone(source.qmp, ROUNDS_BEFORE_FREEZE).catch((err: Error) => {
        throw new Error(`${err.message}\n${logTail(source)}\n${logTail(destination)}`);
      });
      expect(iterating.status, 'the source converged before the channel could be frozen').to.equal('active');
      const hold = await freeze(workers[channel]!);
      // The other channels go on with newer rounds for as long as the barrier lets them.
      await sleep(FROZEN_ITERATING_MS);
      // A generous downtime limit lets the next sync switch over; the last round goes on the channels not frozen.
      await source.qmp.execute('migrate-set-parameters', { 'downtime-limit': 2000, 'max-bandwidth': 100_000_000_000 });
      await sleep(FROZEN_SWITCHING_MS);
      await hold.thaw();

      const info = await expectMultifdMigrated(source, destination, AB);
      expect(info.ram!['dirty-sync-count'], 'dirty-sync-count').to.be.above(ROUNDS_BEFORE_FREEZE);
      // The range went across again and again, on the channels.
      expect(info.ram!['multifd-bytes'], 'multifd-bytes').to.be.above(ROUNDS_BEFORE_FREEZE * (AB.end - AB.start));
    });
  }
});
