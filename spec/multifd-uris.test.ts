/**
 * Multifd needs URIs that can open several connections (tcp, unix): with
 * multifd on, `migrate` and `migrate-incoming` refuse file: and exec: at
 * once with QEMU's error, start nothing, and the instance can still migrate
 * over a URI that works.
 */
import { expect } from 'chai';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { recordEvents, startInstance, stopAllInstances } from './support/instances.js';
import { EVENTS, UNLIMITED, boundTcpUri, queryMigrate, runState, sleep } from './support/migration-driver.js';
import { MiB, expectMultifdMigrated, multifdArgs } from './support/multifd-pair.js';
import { refusal } from './support/qmp-expect.js';
import { scratchDirPerTest } from './support/scratch-dir.js';

const AB = { start: 1 * MiB, end: 16 * MiB };
const GUEST = ['--ram', '32M', '--smp', '1'];
const MULTIFD = multifdArgs({ channels: 2 });
const REFUSED = { class: 'GenericError', desc: 'Migration requires multi-channel URIs (e.g. tcp)' };

describe('multifd and URIs that cannot carry several channels', function () {
  this.timeout(45_000);
  const scratch = scratchDirPerTest('livemig-multifd-uri-', stopAllInstances);

  it('migrate to file: and exec: is refused with QEMU\'s error and nothing starts; tcp then works', async () => {
    const [destination, source] = await Promise.all([
      startInstance([...GUEST, ...MULTIFD, '--incoming', 'tcp:127.0.0.1:0'], { name: 'dst' }),
      startInstance([...GUEST, '--workload', 'ab', '--ab-start', '1M', '--ab-end', '16M', ...MULTIFD, ...UNLIMITED, ...EVENTS], { name: 'src' }),
    ]);
    const events = recordEvents(source.qmp);
    const file = join(scratch(), 'guest.mig');
    const marker = join(scratch(), 'exec-ran');
    expect(await refusal(source.qmp.execute('migrate', { uri: `file:${file}` }))).to.deep.equal(REFUSED);
    expect(await refusal(source.qmp.execute('migrate', { uri: `exec:touch ${marker}; cat > ${file}` }))).to.deep.equal(REFUSED);
    // The same through the `channels` argument.
    expect(await refusal(source.qmp.execute('migrate', {
      channels: [{ 'channel-type': 'main', addr: { transport: 'file', filename: file } }],
    }))).to.deep.equal(REFUSED);

    await sleep(200);
    expect(await queryMigrate(source.qmp), 'query-migrate of a source that never started').to.not.have.property('status');
    expect(events, 'MIGRATION events').to.deep.equal([]);
    expect(existsSync(file), 'the file: stream was created').to.equal(false);
    expect(existsSync(marker), 'the exec: command ran').to.equal(false);
    expect(await runState(source.qmp)).to.equal('running');

    await source.qmp.execute('migrate', { uri: await boundTcpUri(destination.qmp) });
    await expectMultifdMigrated(source, destination, AB);
    expect(events).to.deep.equal(['setup', 'active', 'completed']);
  });

  it('migrate-incoming from file: and exec: is refused with QEMU\'s error and the destination stays unstarted', async () => {
    const destination = await startInstance([...GUEST, ...MULTIFD, ...EVENTS, '--incoming', 'defer'], { name: 'dst' });
    const events = recordEvents(destination.qmp);
    // A file that exists, so only the multifd rule can refuse it.
    const file = join(scratch(), 'guest.mig');
    writeFileSync(file, '');
    expect(await refusal(destination.qmp.execute('migrate-incoming', { uri: `file:${file}` }))).to.deep.equal(REFUSED);
    expect(await refusal(destination.qmp.execute('migrate-incoming', { uri: `exec:cat ${file}` }))).to.deep.equal(REFUSED);
    await sleep(200);
    expect(await queryMigrate(destination.qmp)).to.not.have.property('status');
    expect(events, 'MIGRATION events').to.deep.equal([]);
    expect(await runState(destination.qmp)).to.equal('inmigrate');
    // Still free to listen where multifd works.
    await destination.qmp.execute('migrate-incoming', { uri: 'tcp:127.0.0.1:0' });
    expect(await queryMigrate(destination.qmp)).to.have.property('socket-address');
    expect(events, 'MIGRATION events: setup, as QEMU sends it whatever the events capability').to.deep.equal(['setup']);
  });
});
