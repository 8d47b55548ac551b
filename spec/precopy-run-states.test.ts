/**
 * What run state a migrated guest ends in, on both sides, and that its bytes
 * are the source's: a stopped source gives a paused destination that starts
 * on `cont`; a destination started with -S stays paused though the source
 * ran; a guest that is not changing arrives with the same digests.
 */
import { expect } from 'chai';
import { recordEvents, startInstance, stopAllInstances } from './support/instances.js';
import {
  UNLIMITED, abCheck, allDigests, boundTcpUri, memoryKeepsChanging, queryMigrate, runState, sleep, waitForMigration,
} from './support/migration-driver.js';

const MiB = 1 << 20;
const GUEST = ['--ram', '32M', '--smp', '1'];
const AB = ['--workload', 'ab', '--ab-start', '1M', '--ab-end', '16M'];

describe('precopy run states', function () {
  this.timeout(30_000);
  afterEach(stopAllInstances);

  it('a guest written to and then stopped arrives with the same digest in every RAM block', async () => {
    const blocks = ['--block', 'vga.vram=4M'];
    const [destination, source] = await Promise.all([
      startInstance([...GUEST, ...blocks, '--incoming', 'tcp:127.0.0.1:0'], { name: 'dst' }),
      startInstance([...GUEST, ...blocks, '--workload', 'random', '--dirty-rate', '50000', '--working-set', '24M', ...UNLIMITED], { name: 'src' }),
    ]);
    // Let the workload scatter writes, then freeze the guest so its bytes stay put.
    await sleep(300);
    await source.qmp.execute('stop');
    const before = await allDigests(source.qmp);
    expect(Object.keys(before)).to.have.members(['pc.ram', 'vga.vram']);

    await source.qmp.execute('migrate', { uri: await boundTcpUri(destination.qmp) });
    expect((await waitForMigration(source.qmp, ['completed', 'failed'])).status).to.equal('completed');
    expect((await waitForMigration(destination.qmp, ['completed', 'failed'])).status).to.equal('completed');

    expect(await allDigests(destination.qmp)).to.deep.equal(before);
    const info = await queryMigrate(source.qmp);
    expect(info.ram!.normal, 'the written pages were sent as data').to.be.greaterThan(0);
    expect(info.ram!.duplicate, 'the pages never written were sent as zero pages').to.be.greaterThan(0);
  });

  it('a stopped source gives a destination that ends paused without RESUME, and runs on cont', async () => {
    const [destination, source] = await Promise.all([
      startInstance([...GUEST, '--incoming', 'tcp:127.0.0.1:0'], { name: 'dst' }),
      startInstance([...GUEST, ...AB, ...UNLIMITED], { name: 'src' }),
    ]);
    await sleep(100);
    await source.qmp.execute('stop');
    const destinationEvents = recordEvents(destination.qmp, ['RESUME', 'STOP']);

    await source.qmp.execute('migrate', { uri: await boundTcpUri(destination.qmp) });
    expect((await waitForMigration(source.qmp, ['completed', 'failed'])).status).to.equal('completed');
    expect((await waitForMigration(destination.qmp, ['completed', 'failed'])).status).to.equal('completed');
    expect(await runState(destination.qmp)).to.equal('paused');
    expect(await runState(source.qmp)).to.equal('postmigrate');
    const report = await abCheck(destination, 1 * MiB, 16 * MiB);
    expect(report.touched).to.equal(true);
    expect(report.badPages).to.deep.equal([]);
    expect(await memoryKeepsChanging(destination, 1 * MiB, 64 * 1024, 300), 'the paused guest wrote memory').to.equal(false);
    expect(destinationEvents).to.deep.equal([]);

    const resumed = destination.qmp.waitEvent('RESUME', () => true, 5_000);
    await destination.qmp.execute('cont');
    await resumed;
    expect(await runState(destination.qmp)).to.equal('running');
    expect(await memoryKeepsChanging(destination, 1 * MiB, 64 * 1024)).to.equal(true);
  });

  it('a destination started with -S stays paused though the source ran, holding exactly the source\'s bytes', async () => {
    const [destination, source] = await Promise.all([
      startInstance([...GUEST, '-S', '--incoming', 'tcp:127.0.0.1:0'], { name: 'dst' }),
      startInstance([...GUEST, ...AB, ...UNLIMITED], { name: 'src' }),
    ]);
    const destinationEvents = recordEvents(destination.qmp, ['RESUME']);
    await source.qmp.execute('migrate', { uri: await boundTcpUri(destination.qmp) });
    expect((await waitForMigration(source.qmp, ['completed', 'failed'])).status).to.equal('completed');
    expect((await waitForMigration(destination.qmp, ['completed', 'failed'])).status).to.equal('completed');
    expect(await runState(destination.qmp)).to.equal('paused');
    expect(destinationEvents).to.deep.equal([]);
    // The source stopped at switchover and the destination never ran: the same bytes on both.
    const [onDestination, onSource] = await Promise.all([allDigests(destination.qmp), allDigests(source.qmp)]);
    expect(onDestination).to.deep.equal(onSource);
    const report = await abCheck(destination, 1 * MiB, 16 * MiB);
    expect(report.touched).to.equal(true);
    expect(report.badPages).to.deep.equal([]);

    await destination.qmp.execute('cont');
    expect(await runState(destination.qmp)).to.equal('running');
    expect(await memoryKeepsChanging(destination, 1 * MiB, 64 * 1024)).to.equal(true);
  });
});
