/**
 * yank and query-yank for the migration instance, and
 * query-migrationthreads, with real processes: a migration stuck on a link
 * that passes nothing (no close, no reset) waits on TCP until yanked; yank
 * then fails it and the source guest runs on — or, past postcopy's switch,
 * pauses it. The threads listed are the process's own.
 */
import { expect } from 'chai';
import { existsSync } from 'node:fs';
import { FaultProxy } from './support/fault-proxy.js';
import { startInstance, stopAllInstances } from './support/instances.js';
import { abCheckStopped, boundTcpUri, queryMigrate, runState, waitForMigration } from './support/migration-driver.js';
import { migrateAndSwitch, POSTCOPY, abGuestArgs, postcopyLink, type AbGuest, waitForStatuses } from './support/postcopy-pair.js';
import { channelThreads } from '../actors/multifd/channel-threads.js';

const MiB = 1 << 20;
const SOURCE = ['--ram', '64M', '--workload', 'ab', '--ab-start', '1M', '--ab-end', '24M', '--param', 'max-bandwidth=20000000'];
const MIGRATION = [{ type: 'migration' }];

describe('yank and migration threads', function () {
  this.timeout(60_000);
  const proxies: FaultProxy[] = [];
  afterEach(async () => {
    await Promise.all(proxies.splice(0).map((p) => p.close()));
    await stopAllInstances();
  });

  async function stalledPrecopy() {
    const [destination, source] = await Promise.all([
      startInstance(['--ram', '64M', '--incoming', 'tcp:127.0.0.1:0'], { name: 'dst' }),
      startInstance(SOURCE, { name: 'src' }),
    ]);
    const target = Number((await boundTcpUri(destination.qmp)).split(':')[2]);
    const proxy = await FaultProxy.start({ host: '127.0.0.1', port: target });
    proxies.push(proxy);
    await source.qmp.execute('migrate', { uri: proxy.uri });
    await proxy.waitForBytes(1 * MiB);
    proxy.stall();
    return { source, destination, proxy };
  }

  it('a precopy migration stuck on a silent link fails once yanked, on each side, and the source guest runs on', async () => {
    const { source, destination } = await stalledPrecopy();
    expect(await source.qmp.execute('query-yank')).to.deep.equal([{ type: 'migration' }]);
    expect(await destination.qmp.execute('query-yank')).to.deep.equal([{ type: 'migration' }]);
    // Stuck: still active a while later.
    await new Promise((r) => setTimeout(r, 500));
    expect((await queryMigrate(source.qmp)).status).to.equal('active');
    await source.qmp.execute('yank', { instances: MIGRATION });
    const failed = await waitForMigration(source.qmp, ['failed', 'completed'], 15_000);
    expect(failed.status).to.equal('failed');
    expect(failed['error-desc']).to.equal('Migration channels shut down by yank');
    expect(await runState(source.qmp)).to.equal('running');
    expect((await abCheckStopped(source, MiB, 24 * MiB)).badPages).to.deep.equal([]);
    expect(await source.qmp.execute('query-yank'), 'the instance goes with the migration').to.deep.equal([]);
    await destination.qmp.execute('yank', { instances: MIGRATION });
    await waitForStatuses(destination.qmp, ['failed'], 15_000);
  });

  it('yank in postcopy pauses both sides instead (nothing is lost); a yank with no migration names no instance', async () => {
    // As the recovery tests' pair: precopy never ends alone (downtime-limit 1 ms), postcopy's pages trickle.
    const AB: AbGuest = { start: 1 * MiB, end: 49 * MiB, smp: 2 };
    const [destination, source] = await Promise.all([
      startInstance([...abGuestArgs('64M', AB, false), ...POSTCOPY, '--incoming', 'tcp:127.0.0.1:0'], { name: 'dst' }),
      startInstance([...abGuestArgs('64M', AB), ...POSTCOPY, ...postcopyLink(64_000_000, 16_000_000)], { name: 'src' }),
    ]);
    await migrateAndSwitch(source, destination, await boundTcpUri(destination.qmp), AB);
    await source.qmp.execute('yank', { instances: MIGRATION });
    await waitForStatuses(source.qmp, ['postcopy-paused'], 15_000);
    await waitForStatuses(destination.qmp, ['postcopy-paused'], 15_000);
    expect(await source.qmp.execute('query-yank'), 'a paused migration keeps its instance').to.deep.equal([{ type: 'migration' }]);
    await source.qmp.execute('migrate_cancel').catch(() => {});
    const idle = await startInstance(['--ram', '16M'], { name: 'idle' });
    await idle.qmp.execute('yank', { instances: [] });
    await idle.qmp.execute('yank', { instances: MIGRATION }).then(
      () => expect.fail('yanked a migration that does not exist'),
      (err: { code: string; message: string }) => expect([err.code, err.message]).to.deep.equal(['DeviceNotFound', 'Instance not found']),
    );
  });

  it('query-migrationthreads lists the migration thread and each multifd channel\'s, all threads of the process', async () => {
    const caps = ['--cap', 'multifd', '--param', 'multifd-channels=3'];
    const [destination, source] = await Promise.all([
      startInstance(['--ram', '64M', ...caps, '--incoming', 'tcp:127.0.0.1:0'], { name: 'dst' }),
      startInstance([...SOURCE, ...caps], { name: 'src' }),
    ]);
    expect(await source.qmp.execute('query-migrationthreads')).to.deep.equal([]);
    await source.qmp.execute('migrate', { uri: await boundTcpUri(destination.qmp) });
    await waitForStatuses(source.qmp, ['active'], 15_000);
    await new Promise((r) => setTimeout(r, 300));
    const threads = await source.qmp.execute<{ name: string; 'thread-id': number }[]>('query-migrationthreads');
    expect(threads.map((t) => t.name)).to.deep.equal(['live_migration', 'multifdsend_0', 'multifdsend_1', 'multifdsend_2']);
    const pid = source.process.pid!;
    expect(threads[0]!['thread-id']).to.equal(pid);
    // Three channels run on as many threads as there are cores, up to three (channel-threads.ts).
    expect(new Set(threads.map((t) => t['thread-id'])).size).to.equal(1 + channelThreads(3));
    for (const t of threads) expect(existsSync(`/proc/${pid}/task/${t['thread-id']}`), `${t.name} is a thread of the process`).to.equal(true);
    await source.qmp.execute('migrate-set-parameters', { 'max-bandwidth': 100_000_000_000 });
    await waitForMigration(source.qmp, ['completed'], 30_000);
    expect(await source.qmp.execute('query-migrationthreads')).to.deep.equal([]);
  });
});
