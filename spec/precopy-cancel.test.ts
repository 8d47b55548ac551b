/**
 * migrate_cancel in each status where a precopy migration can be cancelled
 * (setup, active, pre-switchover, device): cancelling → cancelled, the source
 * guest runs on with its memory intact, and a new migration to a fresh
 * destination succeeds at once. A cancel after the whole stream went out
 * yields to the destination's SHUT. In none, failed, completed and cancelled
 * it changes nothing.
 */
import { expect } from 'chai';
import { execFileSync } from 'node:child_process';
import { closeSync, constants as fsc, openSync } from 'node:fs';
import { join } from 'node:path';
import { FaultProxy } from './support/fault-proxy.js';
import { recordEvents, startInstance, stopAllInstances, type TestInstance } from './support/instances.js';
import {
  EVENTS, UNLIMITED, abCheck, boundTcpUri, exitCode, memoryKeepsChanging, queryMigrate, runState, sleep, unusedTcpUri, waitForMigration,
} from './support/migration-driver.js';
import { scratchDirPerTest } from './support/scratch-dir.js';

const MiB = 1 << 20;
const AB_START = 1 * MiB;
const AB_END = 16 * MiB;
const GUEST = ['--ram', '32M', '--smp', '1'];
const SOURCE = [...GUEST, '--workload', 'ab', '--ab-start', '1M', '--ab-end', '16M', ...EVENTS];

function startDestination(name = 'dst'): Promise<TestInstance> {
  return startInstance([...GUEST, '--incoming', 'tcp:127.0.0.1:0'], { name });
}

/** After a cancel: cancelled, the guest running with every page right, and a new migration that completes at once. */
async function expectCancelledAndMigratable(source: TestInstance, events: string[], next: Promise<TestInstance>): Promise<void> {
  expect((await waitForMigration(source.qmp, ['cancelled', 'failed', 'completed'])).status).to.equal('cancelled');
  expect(events.slice(-2)).to.deep.equal(['cancelling', 'cancelled']);
  expect(await runState(source.qmp)).to.equal('running');
  expect(await memoryKeepsChanging(source, AB_START, 64 * 1024)).to.equal(true);
  await source.qmp.execute('stop');
  const report = await abCheck(source, AB_START, AB_END);
  expect(report.touched).to.equal(true);
  expect(report.badPages, 'the source guest lost bytes in the cancel').to.deep.equal([]);
  await source.qmp.execute('cont');

  const destination = await next;
  await source.qmp.execute('migrate-set-parameters', { 'max-bandwidth': 100_000_000_000 });
  await source.qmp.execute('migrate', { uri: await boundTcpUri(destination.qmp) });
  const info = await waitForMigration(source.qmp, ['completed', 'failed', 'cancelled']);
  expect(info.status, info['error-desc']).to.equal('completed');
  expect((await waitForMigration(destination.qmp, ['completed', 'failed'])).status).to.equal('completed');
  await destination.qmp.execute('stop');
  expect((await abCheck(destination, AB_START, AB_END)).badPages).to.deep.equal([]);
}

describe('precopy cancel', function () {
  this.timeout(30_000);
  const proxies: FaultProxy[] = [];
  const scratch = scratchDirPerTest('livemig-cancel-', async () => {
    await Promise.all(proxies.splice(0).map((p) => p.close()));
    await stopAllInstances();
  });

  it('in setup (the channel cannot open: a FIFO nobody reads), then a new migration succeeds', async () => {
    const fifo = join(scratch(), 'stream.fifo');
    execFileSync('mkfifo', [fifo]);
    const source = await startInstance([...SOURCE, ...UNLIMITED], { name: 'src' });
    const next = startDestination('next');
    const events = recordEvents(source.qmp);
    await source.qmp.execute('migrate', { uri: `file:${fifo}` });
    await sleep(300);
    expect((await queryMigrate(source.qmp)).status).to.equal('setup');

    await source.qmp.execute('migrate_cancel');
    await expectCancelledAndMigratable(source, events, next);
    // Release the source's open() of the FIFO, still blocked in a libuv thread.
    closeSync(openSync(fifo, fsc.O_RDONLY | fsc.O_NONBLOCK));
    expect(events.slice(0, 4)).to.deep.equal(['setup', 'cancelling', 'cancelled', 'setup']);
  });

  it('in active (a slow link), then cancel again changes nothing, and a new migration succeeds', async () => {
    const [destination, source] = await Promise.all([
      startDestination(),
      startInstance([...SOURCE, '--param', 'max-bandwidth=2000000'], { name: 'src' }),
    ]);
    const next = startDestination('next');
    const events = recordEvents(source.qmp);
    await source.qmp.execute('migrate', { uri: await boundTcpUri(destination.qmp) });
    const deadline = Date.now() + 10_000;
    let info = await queryMigrate(source.qmp);
    while (!(info.status === 'active' && info.ram!.transferred! > 256 * 1024) && Date.now() < deadline) {
      await sleep(20);
      info = await queryMigrate(source.qmp);
    }
    expect(info.status).to.equal('active');

    await source.qmp.execute('migrate_cancel');
    expect((await waitForMigration(source.qmp, ['cancelled'])).status).to.equal('cancelled');
    await source.qmp.execute('migrate_cancel');
    expect((await queryMigrate(source.qmp)).status).to.equal('cancelled');
    await expectCancelledAndMigratable(source, events, next);
    expect(events.slice(0, 4)).to.deep.equal(['setup', 'active', 'cancelling', 'cancelled']);
    // The cancelled stream never completes on the first destination: it fails and exits.
    expect(await exitCode(destination)).to.equal(1);
  });

  it('in pre-switchover: the stopped guest runs again, and a new migration succeeds', async () => {
    const [destination, source] = await Promise.all([
      startDestination(),
      startInstance([...SOURCE, ...UNLIMITED, '--cap', 'pause-before-switchover'], { name: 'src' }),
    ]);
    const next = startDestination('next');
    const events = recordEvents(source.qmp);
    await source.qmp.execute('migrate', { uri: await boundTcpUri(destination.qmp) });
    await waitForMigration(source.qmp, ['pre-switchover']);
    expect(await runState(source.qmp)).to.equal('finish-migrate');

    await source.qmp.execute('migrate_cancel');
    await waitForMigration(source.qmp, ['cancelled']);
    await source.qmp.execute('migrate-set-capabilities', { capabilities: [{ capability: 'pause-before-switchover', state: false }] });
    await expectCancelledAndMigratable(source, events, next);
    expect(events.slice(0, 5)).to.deep.equal(['setup', 'active', 'pre-switchover', 'cancelling', 'cancelled']);
    expect(await exitCode(destination)).to.equal(1);
  });

  it('in device (the destination stops answering during switchover), then a new migration succeeds', async () => {
    const [destination, source] = await Promise.all([
      startDestination(),
      startInstance([...SOURCE, ...UNLIMITED, '--cap', 'pause-before-switchover'], { name: 'src' }),
    ]);
    const proxy = await FaultProxy.start({ host: '127.0.0.1', port: Number((await boundTcpUri(destination.qmp)).split(':')[2]) });
    proxies.push(proxy);
    const next = startDestination('next');
    const events = recordEvents(source.qmp);
    await source.qmp.execute('migrate', { uri: proxy.uri });
    await waitForMigration(source.qmp, ['pre-switchover']);
    // Nothing gets through any more, so the destination's SHUT never comes back.
    proxy.stall();
    await source.qmp.execute('migrate-continue', { state: 'pre-switchover' });
    await waitForMigration(source.qmp, ['device', 'completed', 'failed']);
    await sleep(300);
    expect((await queryMigrate(source.qmp)).status).to.equal('device');
    expect(await runState(source.qmp)).to.equal('finish-migrate');

    await source.qmp.execute('migrate_cancel');
    await waitForMigration(source.qmp, ['cancelled']);
    await source.qmp.execute('migrate-set-capabilities', { capabilities: [{ capability: 'pause-before-switchover', state: false }] });
    await expectCancelledAndMigratable(source, events, next);
    expect(events.slice(0, 6)).to.deep.equal(['setup', 'active', 'pre-switchover', 'device', 'cancelling', 'cancelled']);
    // The first destination never got the end of the stream; once its connection
    // is gone it fails rather than run a half-loaded guest.
    proxy.cut();
    expect(await exitCode(destination)).to.equal(1);
  });

  it('after the whole stream went out, yields to the destination\'s SHUT: completed, and the guest runs only there', async () => {
    const [destination, source] = await Promise.all([
      startDestination(),
      startInstance([...SOURCE, ...UNLIMITED, '--cap', 'pause-before-switchover', '--cap', 'return-path'], { name: 'src' }),
    ]);
    const proxy = await FaultProxy.start({ host: '127.0.0.1', port: Number((await boundTcpUri(destination.qmp)).split(':')[2]) });
    proxies.push(proxy);
    const events = recordEvents(source.qmp);
    await source.qmp.execute('migrate', { uri: proxy.uri });
    await waitForMigration(source.qmp, ['pre-switchover']);
    // The stream reaches the destination, its SHUT does not (yet) reach the source.
    proxy.holdTowardsSource();
    await source.qmp.execute('migrate-continue', { state: 'pre-switchover' });
    expect((await waitForMigration(destination.qmp, ['completed', 'failed'])).status).to.equal('completed');
    expect((await queryMigrate(source.qmp)).status).to.equal('device');

    await source.qmp.execute('migrate_cancel');
    await waitForMigration(source.qmp, ['cancelling']);
    proxy.resume();
    expect((await waitForMigration(source.qmp, ['completed', 'cancelled', 'failed'])).status).to.equal('completed');
    expect(events.slice(0, 5)).to.deep.equal(['setup', 'active', 'pre-switchover', 'device', 'cancelling']);
    expect(events.slice(-1)).to.deep.equal(['completed']);
    expect(await runState(source.qmp)).to.equal('postmigrate');
    expect(await runState(destination.qmp)).to.equal('running');
    await destination.qmp.execute('stop');
    expect((await abCheck(destination, AB_START, AB_END)).badPages).to.deep.equal([]);
  });

  it('in none, failed, completed changes nothing', async () => {
    const [destination, source] = await Promise.all([
      startDestination(),
      startInstance([...SOURCE, ...UNLIMITED], { name: 'src' }),
    ]);
    const events = recordEvents(source.qmp);
    await source.qmp.execute('migrate_cancel');
    expect(await queryMigrate(source.qmp)).to.deep.equal({});

    await source.qmp.execute('migrate', { uri: await unusedTcpUri() });
    const failed = await waitForMigration(source.qmp, ['failed', 'completed']);
    expect(failed.status).to.equal('failed');
    await source.qmp.execute('migrate_cancel');
    expect(await queryMigrate(source.qmp)).to.deep.equal(failed);

    await source.qmp.execute('migrate', { uri: await boundTcpUri(destination.qmp) });
    expect((await waitForMigration(source.qmp, ['completed', 'failed'])).status).to.equal('completed');
    const completed = await queryMigrate(source.qmp);
    await source.qmp.execute('migrate_cancel');
    await sleep(100);
    expect(await queryMigrate(source.qmp)).to.deep.equal(completed);
    expect(events).to.deep.equal(['setup', 'failed', 'setup', 'active', 'completed']);
    expect(await runState(source.qmp)).to.equal('postmigrate');
  });
});
