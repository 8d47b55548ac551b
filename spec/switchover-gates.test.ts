/**
 * The two gates that hold a migration back, with real processes:
 * - wait-unplug: a source guest with a failover primary (a passthrough
 *   device paired with its NIC) is asked to unplug it, and the migration
 *   waits in `wait-unplug` until the guest has (UNPLUG_PRIMARY), then goes
 *   on; a cancel there ends it and plugs the device back;
 * - switchover-ack: a destination device that is not ready holds the
 *   switchover back (the source stays `active`, iterating, cancellable)
 *   until it is, when SWITCHOVER_ACK lets it complete.
 * Each completed migration is judged by the `ab` check on the destination.
 */
import { expect } from 'chai';
import { startInstance, stopAllInstances, recordEvents, type TestInstance } from './support/instances.js';
import { abCheckStopped, boundTcpUri, EVENTS, queryMigrate, runState, sleep, waitForMigration } from './support/migration-driver.js';
import { refusal } from './support/qmp-expect.js';

const AB = ['--workload', 'ab', '--ab-start', '1M', '--ab-end', '9M'];
const RETURN_PATH = ['--cap', 'return-path'];

/** Polls query-migrate until `status`, within `ms`. */
async function waitForStatusOf(instance: TestInstance, status: string, ms = 15_000): Promise<void> {
  await waitForMigration(instance.qmp, [status], ms);
}

async function pair(sourceArgs: string[], destinationArgs: string[] = []) {
  const [destination, source] = await Promise.all([
    startInstance(['--ram', '32M', ...AB, ...EVENTS, '--incoming', 'tcp:127.0.0.1:0', ...destinationArgs], { name: 'dst' }),
    startInstance(['--ram', '32M', ...AB, ...EVENTS, ...sourceArgs], { name: 'src' }),
  ]);
  return { source, destination, uri: await boundTcpUri(destination.qmp) };
}

describe('switchover gates', function () {
  this.timeout(60_000);
  afterEach(stopAllInstances);

  describe('wait-unplug: failover primaries are unplugged by the guest first', () => {
    it('waits in wait-unplug until the guest has unplugged the device (UNPLUG_PRIMARY), then migrates; the destination is exact', async () => {
      const { source, destination, uri } = await pair(['--failover-primary', 'hostdev0:never']);
      const events: { event: string; data?: Record<string, unknown> }[] = [];
      source.qmp.events.on('event', (e: { event: string; data?: Record<string, unknown> }) => {
        if (e.event === 'MIGRATION' || e.event === 'UNPLUG_PRIMARY') events.push(e);
      });
      await source.qmp.execute('migrate', { uri });
      await waitForStatusOf(source, 'wait-unplug');
      await sleep(1000);
      expect((await queryMigrate(source.qmp)).status, 'a guest that does not unplug holds the migration').to.equal('wait-unplug');
      await source.qmp.execute('__org.livemig_guest-unplug', { id: 'hostdev0' });
      const done = await waitForMigration(source.qmp, ['completed', 'failed'], 30_000);
      expect(done.status, done['error-desc']).to.equal('completed');
      expect(events.map((e) => (e.event === 'MIGRATION' ? e.data!.status : e.event))).to.deep.equal(
        ['setup', 'wait-unplug', 'UNPLUG_PRIMARY', 'active', 'completed'],
      );
      expect(events[2]!.data).to.deep.equal({ 'device-id': 'hostdev0' });
      await waitForMigration(destination.qmp, ['completed'], 15_000);
      expect((await abCheckStopped(destination, 1 << 20, 9 << 20)).badPages).to.deep.equal([]);
    });

    it('a guest that unplugs by itself lets the migration go on without help', async () => {
      const { source, uri } = await pair(['--failover-primary', 'hostdev0:300', '--failover-primary', 'hostdev1:600']);
      const seen = recordEvents(source.qmp, ['MIGRATION', 'UNPLUG_PRIMARY']);
      await source.qmp.execute('migrate', { uri });
      const done = await waitForMigration(source.qmp, ['completed', 'failed'], 30_000);
      expect(done.status, done['error-desc']).to.equal('completed');
      expect(seen).to.deep.equal(['setup', 'wait-unplug', 'UNPLUG_PRIMARY', 'UNPLUG_PRIMARY', 'active', 'completed']);
    });

    it('a cancel in wait-unplug ends cancelled, fails the destination, and plugs the device back (the next migration waits again)', async () => {
      const { source, destination, uri } = await pair(['--failover-primary', 'hostdev0:never']);
      await source.qmp.execute('migrate', { uri });
      await waitForStatusOf(source, 'wait-unplug');
      await source.qmp.execute('migrate_cancel');
      await waitForStatusOf(source, 'cancelled');
      const dst = await waitForMigration(destination.qmp, ['failed'], 15_000);
      expect(dst['error-desc']).to.be.a('string').and.not.equal('');
      expect(await runState(source.qmp)).to.equal('running');
      const unplug = await refusal(source.qmp.execute('__org.livemig_guest-unplug', { id: 'hostdev0' }));
      expect(unplug.desc, 'the request was withdrawn').to.equal("No unplug of device 'hostdev0' was requested");
      const again = await startInstance(['--ram', '32M', ...AB, '--incoming', 'tcp:127.0.0.1:0'], { name: 'dst2' });
      await source.qmp.execute('migrate', { uri: await boundTcpUri(again.qmp) });
      await waitForStatusOf(source, 'wait-unplug');
      await source.qmp.execute('migrate_cancel');
      await waitForStatusOf(source, 'cancelled');
    });

    it('a failover primary plugged at run time takes part; misuse is refused with a reason', async () => {
      const source = await startInstance(['--ram', '32M', ...EVENTS], { name: 'src' });
      const add = (args: Record<string, unknown>) => refusal(source.qmp.execute('__org.livemig_device-add', args));
      expect((await add({ id: 'h0', migratable: false, 'failover-pair-id': 'net9' })).desc).to.equal(
        "failover-pair-id 'net9' names no network device of the guest (it has 'net0')",
      );
      expect((await add({ id: 'h0', migratable: false, 'unplug-delay': 5 })).desc).to.equal(
        "'unplug-delay' is for a failover primary: give 'failover-pair-id' too",
      );
      await source.qmp.execute('__org.livemig_device-add', { id: 'h0', migratable: false, 'failover-pair-id': 'net0', 'unplug-delay': 'never' });
      expect((await add({ id: 'h0', migratable: false, 'failover-pair-id': 'net0' })).desc).to.equal("Duplicate device ID 'h0'");
      // Not a blocker: nothing in blocked-reasons.
      expect(await queryMigrate(source.qmp)).not.to.have.property('blocked-reasons');
      expect((await refusal(source.qmp.execute('__org.livemig_guest-unplug', { id: 'nope' }))).desc).to.equal("No unplug of device 'nope' was requested");
      const destination = await startInstance(['--ram', '32M', '--incoming', 'tcp:127.0.0.1:0'], { name: 'dst' });
      await source.qmp.execute('migrate', { uri: await boundTcpUri(destination.qmp) });
      await waitForStatusOf(source, 'wait-unplug');
      await source.qmp.execute('__org.livemig_guest-unplug', { id: 'h0' });
      expect((await waitForMigration(source.qmp, ['completed', 'failed'], 30_000)).status).to.equal('completed');
    });
  });

  describe('switchover-ack: the destination acknowledges when its devices are ready', () => {
    const ACK = [...RETURN_PATH, '--cap', 'switchover-ack'];

    it('a device not ready holds a converged migration in active (still iterating) until it is, then it completes exactly', async () => {
      const { source, destination, uri } = await pair(ACK, [...ACK, '--switchover-ack-device', 'vfio0:never']);
      const seen = recordEvents(source.qmp);
      await source.qmp.execute('migrate', { uri });
      await waitForStatusOf(source, 'active');
      const first = await queryMigrate(source.qmp);
      await sleep(1500);
      const held = await queryMigrate(source.qmp);
      expect(held.status, 'held at the gate').to.equal('active');
      expect(held.ram!['dirty-sync-count'], 'it goes on iterating').to.be.greaterThan(first.ram!['dirty-sync-count']!);
      await destination.qmp.execute('__org.livemig_device-ready', { id: 'vfio0' });
      const done = await waitForMigration(source.qmp, ['completed', 'failed'], 30_000);
      expect(done.status, done['error-desc']).to.equal('completed');
      expect(seen).to.deep.equal(['setup', 'active', 'completed']);
      await waitForMigration(destination.qmp, ['completed'], 15_000);
      expect((await abCheckStopped(destination, 1 << 20, 9 << 20)).badPages).to.deep.equal([]);
    });

    it('held at the gate, migrate_cancel works: cancelled here, failed there, the guest runs on', async () => {
      const { source, destination, uri } = await pair(ACK, [...ACK, '--switchover-ack-device', 'vfio0:never']);
      await source.qmp.execute('migrate', { uri });
      await waitForStatusOf(source, 'active');
      await sleep(500);
      await source.qmp.execute('migrate_cancel');
      await waitForStatusOf(source, 'cancelled');
      await waitForMigration(destination.qmp, ['failed'], 15_000);
      expect(await runState(source.qmp)).to.equal('running');
    });

    it('with no device to wait for (or one ready by itself) the destination acknowledges and the migration completes', async () => {
      for (const extra of [[], ['--switchover-ack-device', 'vfio0:200']]) {
        const { source, destination, uri } = await pair(ACK, [...ACK, ...extra]);
        await source.qmp.execute('migrate', { uri });
        const done = await waitForMigration(source.qmp, ['completed', 'failed'], 30_000);
        expect(done.status, done['error-desc']).to.equal('completed');
        await waitForMigration(destination.qmp, ['completed'], 15_000);
        await stopAllInstances();
      }
    });

    it('an acknowledgement the source did not wait for (only the destination has the capability) is taken harmlessly, as QEMU takes it', async () => {
      const { source, destination, uri } = await pair(RETURN_PATH, ACK);
      await source.qmp.execute('migrate', { uri });
      const done = await waitForMigration(source.qmp, ['completed', 'failed'], 30_000);
      expect(done.status, done['error-desc']).to.equal('completed');
      await waitForMigration(destination.qmp, ['completed'], 15_000);
    });

    it('a stopped source guest needs no acknowledgement (QEMU): stopped while held, it switches over', async () => {
      const { source, destination, uri } = await pair(ACK, [...ACK, '--switchover-ack-device', 'vfio0:never']);
      await source.qmp.execute('migrate', { uri });
      await waitForStatusOf(source, 'active');
      await sleep(500);
      expect((await queryMigrate(source.qmp)).status).to.equal('active');
      await source.qmp.execute('stop');
      const done = await waitForMigration(source.qmp, ['completed', 'failed'], 30_000);
      expect(done.status, done['error-desc']).to.equal('completed');
      await waitForMigration(destination.qmp, ['completed'], 15_000);
    });

    it("refuses the capability without return-path, and device-ready for a device that does not hold the switchover, with reasons", async () => {
      const source = await startInstance(['--ram', '32M'], { name: 'src' });
      const caps = refusal(source.qmp.execute('migrate-set-capabilities', { capabilities: [{ capability: 'switchover-ack', state: true }] }));
      expect(await caps).to.deep.equal({ class: 'GenericError', desc: "Capability 'switchover-ack' requires capability 'return-path'" });
      expect((await refusal(source.qmp.execute('__org.livemig_device-ready', { id: 'gpu' }))).desc).to.equal("Device 'gpu' does not hold the switchover");
    });
  });
});
