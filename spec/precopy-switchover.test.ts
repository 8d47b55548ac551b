/**
 * pause-before-switchover: the source stops its guest and waits in
 * `pre-switchover` until `migrate-continue`, which QEMU accepts only with the
 * status it is in.
 */
import { expect } from 'chai';
import { QmpError } from '../protocols/qmp/errors.js';
import { recordEvents, startInstance, stopAllInstances } from './support/instances.js';
import {
  EVENTS, UNLIMITED, abCheck, boundTcpUri, queryMigrate, runState, sleep, waitForMigration,
} from './support/migration-driver.js';

const MiB = 1 << 20;
const GUEST = ['--ram', '32M', '--smp', '1'];
const SOURCE = [...GUEST, '--workload', 'ab', '--ab-start', '1M', '--ab-end', '16M', ...UNLIMITED, ...EVENTS];

async function refusal(promise: Promise<unknown>): Promise<QmpError> {
  try {
    await promise;
  } catch (err) {
    if (err instanceof QmpError) return err;
    throw err;
  }
  throw new Error('the command was accepted');
}

describe('precopy pause-before-switchover', function () {
  this.timeout(30_000);
  afterEach(stopAllInstances);

  it('waits in pre-switchover with the guest stopped until migrate-continue, then goes through device to completed', async () => {
    const [destination, source] = await Promise.all([
      startInstance([...GUEST, '--incoming', 'tcp:127.0.0.1:0'], { name: 'dst' }),
      startInstance([...SOURCE, '--cap', 'pause-before-switchover'], { name: 'src' }),
    ]);
    const events = recordEvents(source.qmp);
    await source.qmp.execute('migrate', { uri: await boundTcpUri(destination.qmp) });
    await waitForMigration(source.qmp, ['pre-switchover']);
    // It stays there: nothing but migrate-continue (or a cancel) moves it on.
    await sleep(500);
    expect((await queryMigrate(source.qmp)).status).to.equal('pre-switchover');
    expect(await runState(source.qmp)).to.equal('finish-migrate');
    expect((await queryMigrate(destination.qmp)).status).to.equal('active');
    expect(await runState(destination.qmp)).to.equal('inmigrate');

    const wrongState = await refusal(source.qmp.execute('migrate-continue', { state: 'active' }));
    expect(wrongState.desc).to.equal('Migration not in expected state: pre-switchover');
    expect((await queryMigrate(source.qmp)).status).to.equal('pre-switchover');

    await source.qmp.execute('migrate-continue', { state: 'pre-switchover' });
    expect((await waitForMigration(source.qmp, ['completed', 'failed'])).status).to.equal('completed');
    expect((await waitForMigration(destination.qmp, ['completed', 'failed'])).status).to.equal('completed');
    expect(events).to.deep.equal(['setup', 'active', 'pre-switchover', 'device', 'completed']);
    expect(await runState(source.qmp)).to.equal('postmigrate');
    expect(await runState(destination.qmp)).to.equal('running');
    await destination.qmp.execute('stop');
    expect((await abCheck(destination, 1 * MiB, 16 * MiB)).badPages).to.deep.equal([]);
  });

  it('migrate-continue outside pre-switchover is refused with the status it found', async () => {
    const [destination, source] = await Promise.all([
      startInstance([...GUEST, '--incoming', 'tcp:127.0.0.1:0'], { name: 'dst' }),
      startInstance(SOURCE, { name: 'src' }),
    ]);
    const none = await refusal(source.qmp.execute('migrate-continue', { state: 'pre-switchover' }));
    expect(none.desc).to.equal('Migration not in expected state: none');

    await source.qmp.execute('migrate', { uri: await boundTcpUri(destination.qmp) });
    expect((await waitForMigration(source.qmp, ['completed', 'failed'])).status).to.equal('completed');
    const completed = await refusal(source.qmp.execute('migrate-continue', { state: 'pre-switchover' }));
    expect(completed.desc).to.equal('Migration not in expected state: completed');
    expect((await queryMigrate(source.qmp)).status).to.equal('completed');
  });
});
