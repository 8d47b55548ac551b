/**
 * migrate_cancel of a multifd migration in `active`: cancelled, the source
 * guest runs on with every page intact, its channel workers and sockets are
 * gone, and a new multifd migration to a fresh destination, started at
 * once, completes with the destination holding every page.
 */
import { expect } from 'chai';
import { recordEvents, startInstance, stopAllInstances, type TestInstance } from './support/instances.js';
import { EVENTS, boundTcpUri, memoryKeepsChanging, runState, waitForMigration } from './support/migration-driver.js';
import {
  MiB, activeWithMultifdBytes, expectAbIntact, expectMultifdMigrated, expectNothingLeftBehind, holdings, multifdArgs, steadyHoldings,
} from './support/multifd-pair.js';

const AB = { start: 1 * MiB, end: 32 * MiB };
const GUEST = ['--ram', '64M', '--smp', '1'];
const CHANNELS = 2;
const MULTIFD = multifdArgs({ channels: CHANNELS });
/** 16 MB/s: still streaming when cancelled. */
const SLOW_LINK = ['--param', 'max-bandwidth=16000000'];

function startDestination(name: string): Promise<TestInstance> {
  return startInstance([...GUEST, ...MULTIFD, '--incoming', 'tcp:127.0.0.1:0'], { name });
}

describe('multifd cancel', function () {
  this.timeout(45_000);
  afterEach(stopAllInstances);

  it('cancelled in active (2 channels), then a multifd migration to a fresh destination succeeds at once', async () => {
    const [first, next, source] = await Promise.all([
      startDestination('dst'),
      startDestination('next'),
      startInstance([...GUEST, '--workload', 'ab', '--ab-start', '1M', '--ab-end', '32M', ...MULTIFD, ...SLOW_LINK, ...EVENTS], { name: 'src' }),
    ]);
    const events = recordEvents(source.qmp);
    const before = await steadyHoldings(source.process.pid!);
    await source.qmp.execute('migrate', { uri: await boundTcpUri(first.qmp) });
    await activeWithMultifdBytes(source.qmp, 2 * MiB);
    // The channel workers are kept warm from the moment multifd is on, so the
    // "before" count may already hold them; while streaming they are all up.
    expect(holdings(source.process.pid!).threads, 'source threads while streaming').to.be.at.least(Math.max(before.threads, CHANNELS));

    await source.qmp.execute('migrate_cancel');
    const cancelled = await waitForMigration(source.qmp, ['cancelled', 'failed', 'completed'], 10_000);
    expect(cancelled.status, cancelled['error-desc']).to.equal('cancelled');
    expect(events).to.deep.equal(['setup', 'active', 'cancelling', 'cancelled']);
    expect(await runState(source.qmp)).to.equal('running');
    expect(await memoryKeepsChanging(source, AB.start, 64 * 1024)).to.equal(true);
    await expectNothingLeftBehind(source, before);

    // At once: no pause for the old channels to wind down.
    await source.qmp.execute('migrate-set-parameters', { 'max-bandwidth': 100_000_000_000 });
    await source.qmp.execute('migrate', { uri: await boundTcpUri(next.qmp) });
    const info = await expectMultifdMigrated(source, next, AB);
    expect(info.ram!['multifd-bytes'], 'multifd-bytes of the second migration').to.be.above(AB.end - AB.start);
    expect(events.slice(4)).to.deep.equal(['setup', 'active', 'completed']);
    // The source's memory was intact all along: stopped by the switchover, it still passes.
    await expectAbIntact(source, AB.start, AB.end, 'source');
  });
});
