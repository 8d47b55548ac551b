/**
 * A running `ab` guest of 256 MiB migrated between real `livemig run`
 * processes over each transport: the destination holds every page (the ab
 * check), then runs on, while the source is left `postmigrate`.
 */
import { expect } from 'chai';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { relay, startFdInstance, stopFdInstances, INHERITED_FD } from './support/inherited-fd.js';
import { startInstance, stopAllInstances, type TestInstance } from './support/instances.js';
import {
  UNLIMITED, abCheck, boundTcpUri, memoryKeepsChanging, queryMigrate, runState, waitForMigration,
} from './support/migration-driver.js';
import { scratchDirPerTest } from './support/scratch-dir.js';

const MiB = 1 << 20;
const AB_START = 1 * MiB;
const AB_END = 32 * MiB;
const GUEST = ['--ram', '256M', '--smp', '1'];
const SOURCE = [...GUEST, '--workload', 'ab', '--ab-start', '1M', '--ab-end', '32M', ...UNLIMITED];

/** The source completed and is left postmigrate; the destination holds every page and runs on. */
async function expectMigrated(source: TestInstance, destination: TestInstance): Promise<void> {
  const sourceInfo = await waitForMigration(source.qmp, ['completed', 'failed']);
  expect(sourceInfo.status, sourceInfo['error-desc']).to.equal('completed');
  const destinationInfo = await waitForMigration(destination.qmp, ['completed', 'failed']);
  expect(destinationInfo.status, destinationInfo['error-desc']).to.equal('completed');
  expect(await runState(destination.qmp)).to.equal('running');

  await destination.qmp.execute('stop');
  const report = await abCheck(destination, AB_START, AB_END);
  expect(report.touched, 'the ab range was never written: the guest did not run').to.equal(true);
  expect(report.badPages, `pages off the ab pattern (H=${report.high}, boundary ${report.boundary})`).to.deep.equal([]);
  await destination.qmp.execute('cont');
  expect(await memoryKeepsChanging(destination, AB_START, 64 * 1024)).to.equal(true);

  expect(await runState(source.qmp)).to.equal('postmigrate');
  expect((await queryMigrate(source.qmp)).status).to.equal('completed');
}

/**
 * A destination for a one-way stream the source writes first (file:, exec:):
 * started with `--incoming defer` beside the source, told where to read once
 * the stream is there (the same as starting it then with `--incoming URI`).
 */
function deferredDestination(): Promise<TestInstance> {
  return startInstance([...GUEST, '--incoming', 'defer'], { name: 'dst' });
}

describe('precopy over each transport (256 MiB ab guest)', function () {
  this.timeout(40_000);
  const scratch = scratchDirPerTest('livemig-transport-', () => Promise.all([stopAllInstances(), stopFdInstances()]));

  it('tcp: a destination on port 0 shows the bound port in socket-address, and the guest moves through it', async () => {
    const [destination, source] = await Promise.all([
      startInstance([...GUEST, '--incoming', 'tcp:127.0.0.1:0'], { name: 'dst' }),
      startInstance(SOURCE, { name: 'src' }),
    ]);
    // As QEMU's: while it only listens, no status yet, only where (with the address family).
    const listening = await queryMigrate(destination.qmp);
    expect(listening.status).to.equal(undefined);
    const address = listening['socket-address']![0]!;
    expect(address).to.include({ type: 'inet', host: '127.0.0.1', ipv4: true });
    expect(Number(address.port)).to.be.within(1, 65535);

    await source.qmp.execute('migrate', { uri: await boundTcpUri(destination.qmp) });
    await expectMigrated(source, destination);
  });

  it('unix: the guest moves through a unix socket', async () => {
    const path = join(scratch(), 'migrate.sock');
    const [destination, source] = await Promise.all([
      startInstance([...GUEST, '--incoming', `unix:${path}`], { name: 'dst' }),
      startInstance(SOURCE, { name: 'src' }),
    ]);
    expect((await queryMigrate(destination.qmp))['socket-address']).to.deep.equal([{ type: 'unix', path }]);
    await source.qmp.execute('migrate', { uri: `unix:${path}` });
    await expectMigrated(source, destination);
  });

  it('file: the source saves the running guest to a file, and a destination told to read it loads it', async () => {
    const path = join(scratch(), 'guest.mig');
    const [destination, source] = await Promise.all([deferredDestination(), startInstance(SOURCE, { name: 'src' })]);
    await source.qmp.execute('migrate', { uri: `file:${path}` });
    expect((await waitForMigration(source.qmp, ['completed', 'failed'])).status).to.equal('completed');
    expect(readFileSync(path).subarray(0, 4).toString('latin1')).to.equal('LVMG');

    await destination.qmp.execute('migrate-incoming', { uri: `file:${path}` });
    await expectMigrated(source, destination);
  });

  it('file with offset=4K: the stream starts at the offset and the bytes before it are left alone', async () => {
    const path = join(scratch(), 'guest.mig');
    // A file already holding something else: a 4 KiB prefix to keep, and more after it to overwrite.
    const prefix = Buffer.alloc(4096, 0xa5);
    writeFileSync(path, Buffer.concat([prefix, Buffer.alloc(64 * 1024, 0x5a)]));
    const [destination, source] = await Promise.all([deferredDestination(), startInstance(SOURCE, { name: 'src' })]);
    await source.qmp.execute('migrate', { uri: `file:${path},offset=4K` });
    expect((await waitForMigration(source.qmp, ['completed', 'failed'])).status).to.equal('completed');
    const bytes = readFileSync(path);
    expect(bytes.subarray(0, 4096).equals(prefix), 'the bytes before the offset changed').to.equal(true);
    expect(bytes.subarray(4096, 4100).toString('latin1')).to.equal('LVMG');

    await destination.qmp.execute('migrate-incoming', { uri: `file:${path},offset=4096` });
    await expectMigrated(source, destination);
  });

  it('exec: the stream goes through a command on each side (cat into a file, cat out of it)', async () => {
    const path = join(scratch(), 'guest.mig');
    const [destination, source] = await Promise.all([deferredDestination(), startInstance(SOURCE, { name: 'src' })]);
    await source.qmp.execute('migrate', { uri: `exec:cat > ${path}` });
    expect((await waitForMigration(source.qmp, ['completed', 'failed'])).status).to.equal('completed');

    await destination.qmp.execute('migrate-incoming', { uri: `exec:cat ${path}` });
    await expectMigrated(source, destination);
  });

  it('fd: each instance migrates through a socket descriptor it inherited', async () => {
    const [destination, source] = await Promise.all([
      startFdInstance([...GUEST, '--incoming', `fd:${INHERITED_FD}`], 'dst'),
      startFdInstance(SOURCE, 'src'),
    ]);
    relay(source, destination);
    await source.qmp.execute('migrate', { uri: `fd:${INHERITED_FD}` });
    await expectMigrated(source, destination);
  });
});
