/**
 * The MIGRATION events each side sends follow its statechart's paths
 * (QEMU's: source setup → active → completed; destination setup → active →
 * completed), and MIGRATION_PASS counts the dirty-sync rounds 1, 2, 3, …
 */
import { expect } from 'chai';
import type { QmpClient } from '../protocols/qmp/client.js';
import { recordEvents, startInstance, stopAllInstances } from './support/instances.js';
import { EVENTS, UNLIMITED, boundTcpUri, exitCode, queryMigrate, waitForMigration } from './support/migration-driver.js';

const GUEST = ['--ram', '32M', '--smp', '1'];
const SOURCE = [...GUEST, '--workload', 'ab', '--ab-start', '1M', '--ab-end', '16M', ...UNLIMITED, ...EVENTS];

/** Every MIGRATION_PASS event's pass number, in order of arrival. */
function recordPasses(qmp: QmpClient): number[] {
  const passes: number[] = [];
  qmp.events.on('MIGRATION_PASS', (e: { data?: { pass?: number } }) => passes.push(e.data!.pass!));
  return passes;
}

/**
 * A destination that waits for migrate-incoming, with events on from the
 * start, so the test hears its `setup` too.
 */
async function deferredDestination(args: string[] = GUEST) {
  const destination = await startInstance([...args, '--incoming', 'defer', ...EVENTS], { name: 'dst' });
  const events = recordEvents(destination.qmp);
  await destination.qmp.execute('migrate-incoming', { uri: 'tcp:127.0.0.1:0' });
  return { destination, events };
}

describe('precopy MIGRATION events', function () {
  this.timeout(30_000);
  afterEach(stopAllInstances);

  it('a completed migration: setup, active, completed on both sides, and one MIGRATION_PASS per dirty sync', async () => {
    const [{ destination, events: destinationEvents }, source] = await Promise.all([
      deferredDestination(),
      startInstance(SOURCE, { name: 'src' }),
    ]);
    const sourceEvents = recordEvents(source.qmp);
    const passes = recordPasses(source.qmp);
    await source.qmp.execute('migrate', { uri: await boundTcpUri(destination.qmp) });
    const info = await waitForMigration(source.qmp, ['completed', 'failed']);
    expect(info.status).to.equal('completed');
    await waitForMigration(destination.qmp, ['completed', 'failed']);

    expect(sourceEvents).to.deep.equal(['setup', 'active', 'completed']);
    expect(destinationEvents).to.deep.equal(['setup', 'active', 'completed']);
    // QEMU syncs once in setup and once more for the final figure: at least passes 1 and 2.
    expect(passes.length).to.be.at.least(2);
    expect(passes).to.deep.equal(passes.map((_, i) => i + 1));
    expect(info.ram!['dirty-sync-count']).to.equal(passes.length);
  });

  it('a failed load: the destination goes setup, active, failed and the source setup, active, failed', async () => {
    const [{ destination, events: destinationEvents }, source] = await Promise.all([
      deferredDestination(['--ram', '64M', '--smp', '1']),
      startInstance(SOURCE, { name: 'src' }),
    ]);
    const sourceEvents = recordEvents(source.qmp);
    await source.qmp.execute('migrate', { uri: await boundTcpUri(destination.qmp) });
    expect((await waitForMigration(source.qmp, ['completed', 'failed'])).status).to.equal('failed');
    expect(await exitCode(destination)).to.equal(1);
    expect(destinationEvents).to.deep.equal(['setup', 'active', 'failed']);
    expect(sourceEvents).to.deep.equal(['setup', 'active', 'failed']);
  });

  it('a cancelled migration: setup, active, cancelling, cancelled; the destination fails', async () => {
    const [{ destination, events: destinationEvents }, source] = await Promise.all([
      deferredDestination(),
      startInstance([...SOURCE, '--param', 'max-bandwidth=2000000'], { name: 'src' }),
    ]);
    const sourceEvents = recordEvents(source.qmp);
    await source.qmp.execute('migrate', { uri: await boundTcpUri(destination.qmp) });
    await waitForMigration(source.qmp, ['active']);
    await source.qmp.execute('migrate_cancel');
    await waitForMigration(source.qmp, ['cancelled']);
    expect(await exitCode(destination)).to.equal(1);
    expect(sourceEvents).to.deep.equal(['setup', 'active', 'cancelling', 'cancelled']);
    expect(destinationEvents).to.deep.equal(['setup', 'active', 'failed']);
    expect((await queryMigrate(source.qmp)).status).to.equal('cancelled');
  });
});
