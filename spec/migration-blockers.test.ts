/**
 * Migration blockers with real processes: a device that cannot be migrated,
 * plugged with --nonmigratable-device or __org.livemig_device-add, refuses
 * `migrate` with its reason (QEMU's text) and shows in blocked-reasons,
 * until it is unplugged; QEMU's refusals of a new blocker (--only-migratable,
 * a migration under way) hold.
 */
import { expect } from 'chai';
import { runCli } from './support/cli.js';
import { startInstance, stopAllInstances } from './support/instances.js';
import { boundTcpUri, queryMigrate, waitForMigration } from './support/migration-driver.js';
import { refusal } from './support/qmp-expect.js';

const BLOCKED = "State blocked by non-migratable device 'gpu0'";

describe('migration blockers', function () {
  this.timeout(60_000);
  afterEach(stopAllInstances);

  it('a device plugged at start blocks migrate with its reason, shown in blocked-reasons; unplugged, the guest migrates', async () => {
    const [destination, source] = await Promise.all([
      startInstance(['--ram', '32M', '--incoming', 'tcp:127.0.0.1:0'], { name: 'dst' }),
      startInstance(['--ram', '32M', '--nonmigratable-device', 'gpu0', '--param', 'max-bandwidth=100000000000'], { name: 'src' }),
    ]);
    expect(await queryMigrate(source.qmp)).to.deep.equal({ 'blocked-reasons': [BLOCKED] });
    const uri = await boundTcpUri(destination.qmp);
    expect(await refusal(source.qmp.execute('migrate', { uri }))).to.deep.equal({ class: 'GenericError', desc: BLOCKED });
    expect(await queryMigrate(source.qmp), 'nothing started').not.to.have.property('status');
    await source.qmp.execute('__org.livemig_device-del', { id: 'gpu0' });
    expect(await queryMigrate(source.qmp)).to.deep.equal({});
    await source.qmp.execute('migrate', { uri });
    expect((await waitForMigration(source.qmp, ['completed', 'failed'])).status).to.equal('completed');
  });

  it('plugged at run time it blocks too; none may be plugged while a migration runs; unknown and duplicate ids are refused', async () => {
    const [destination, source] = await Promise.all([
      startInstance(['--ram', '64M', '--incoming', 'tcp:127.0.0.1:0'], { name: 'dst' }),
      startInstance(['--ram', '64M', '--workload', 'ab', '--param', 'max-bandwidth=5000000'], { name: 'src' }),
    ]);
    await source.qmp.execute('__org.livemig_device-add', { id: 'gpu0', migratable: false });
    expect(await refusal(source.qmp.execute('__org.livemig_device-add', { id: 'gpu0', migratable: false })))
      .to.deep.equal({ class: 'GenericError', desc: "Duplicate device ID 'gpu0'" });
    expect(await refusal(source.qmp.execute('migrate', { uri: await boundTcpUri(destination.qmp) }))).to.deep.equal({ class: 'GenericError', desc: BLOCKED });
    await source.qmp.execute('__org.livemig_device-del', { id: 'gpu0' });
    expect(await refusal(source.qmp.execute('__org.livemig_device-del', { id: 'gpu0' }))).to.deep.equal({ class: 'DeviceNotFound', desc: "Device 'gpu0' not found" });
    await source.qmp.execute('migrate', { uri: await boundTcpUri(destination.qmp) });
    expect(await refusal(source.qmp.execute('__org.livemig_device-add', { id: 'gpu1', migratable: false }))).to.deep.equal({
      class: 'GenericError',
      desc: "disallowing migration blocker (migration in progress) for: State blocked by non-migratable device 'gpu1'",
    });
    await source.qmp.execute('migrate_cancel');
    await waitForMigration(source.qmp, ['cancelled']);
  });

  it('--only-migratable refuses such a device, at start (exit 2) and at run time', async () => {
    const { code, stderr } = await runCli('run', ['--ram', '16M', '--qmp', 'unix:/tmp/livemig-only-migratable.qmp', '--only-migratable', '--nonmigratable-device', 'gpu0']);
    expect(code).to.equal(2);
    expect(stderr.trim()).to.equal("livemig run: disallowing migration blocker (--only-migratable) for: State blocked by non-migratable device 'gpu0'");
    const vm = await startInstance(['--ram', '16M', '--only-migratable'], { name: 'only' });
    expect(await refusal(vm.qmp.execute('__org.livemig_device-add', { id: 'gpu0', migratable: false }))).to.deep.equal({
      class: 'GenericError',
      desc: "disallowing migration blocker (--only-migratable) for: State blocked by non-migratable device 'gpu0'",
    });
  });
});
