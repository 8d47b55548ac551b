/**
 * Background snapshot with real processes: `migrate` with
 * background-snapshot writes the guest as of one instant while it keeps
 * running and writing; the file loads back (`--incoming file:`) as exactly
 * that guest. The instant is known honestly: the guest is stopped when the
 * snapshot starts (its digest taken then), and let run as soon as the
 * snapshot is active, its writes faulting on the write-protected pages.
 */
import { expect } from 'chai';
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { recordEvents, startInstance, stopAllInstances } from './support/instances.js';
import { EVENTS, memoryKeepsChanging, ramDigest, runState, waitForMigration } from './support/migration-driver.js';
import { logTail, uncaughtTrace } from './support/multifd-pair.js';
import { refusal } from './support/qmp-expect.js';
import { scratchDirPerTest } from './support/scratch-dir.js';

const MiB = 1 << 20;
const AB = ['--workload', 'ab', '--ab-start', String(MiB), '--ab-end', String(120 * MiB)];
const SNAPSHOT = ['--cap', 'background-snapshot'];

describe('background snapshot', function () {
  this.timeout(120_000);
  const scratch = scratchDirPerTest('livemig-snapshot-', stopAllInstances);

  it('of a guest writing as fast as it can: the file loads back as exactly the guest at the start instant', async () => {
    const source = await startInstance(['--ram', '128M', '--smp', '2', ...AB, ...SNAPSHOT, ...EVENTS], { name: 'src' });
    const events = recordEvents(source.qmp);
    expect(await memoryKeepsChanging(source, MiB, 64 * 1024, 30_000)).to.equal(true);
    await source.qmp.execute('stop');
    const atStart = await ramDigest(source.qmp);
    const file = join(scratch(), 'snapshot.mig');
    // The pipe's reader sleeps a second first: the pass stalls, and the running guest's writes meet protected pages.
    await source.qmp.execute('migrate', { uri: `exec:sleep 1; cat > ${file}` });
    await waitForMigration(source.qmp, ['active', 'completed', 'failed'], 30_000);
    await source.qmp.execute('cont');
    const done = await waitForMigration(source.qmp, ['completed', 'failed'], 60_000);
    expect(done.status, `${done['error-desc']}\n${logTail(source)}`).to.equal('completed');
    expect(events).to.deep.equal(['setup', 'active', 'completed']);
    // The guest ran on through the snapshot, and runs on after it.
    expect(await runState(source.qmp)).to.equal('running');
    expect(await memoryKeepsChanging(source, MiB, 64 * 1024, 30_000)).to.equal(true);
    const log = /"faultedPages":(\d+)/.exec(source.stderr());
    expect(Number(log?.[1]), 'pages saved ahead of the pass for the guest\'s writes').to.be.above(0);
    expect(statSync(file).size).to.be.above(0);

    const loaded = await startInstance(['--ram', '128M', '--smp', '2', '--incoming', `file:${file}`, ...EVENTS], { name: 'dst' });
    const info = await waitForMigration(loaded.qmp, ['completed', 'failed'], 60_000);
    expect(info.status, logTail(loaded)).to.equal('completed');
    expect(await ramDigest(loaded.qmp), 'the loaded snapshot against the guest at the start instant').to.equal(atStart);
    // It was stopped at that instant, and loads stopped.
    expect(await runState(loaded.qmp)).to.equal('paused');
    expect(await loaded.qmp.execute('__org.livemig_check-ab')).to.deep.equal({ ok: true, 'bad-pages': 0, 'first-bad-pages': [] });
    expect(uncaughtTrace(source.stderr()), logTail(source)).to.deep.equal([]);
  });

  it('of a running guest: one consistent instant (the ab check), the guest briefly stopped and running again', async () => {
    const source = await startInstance(['--ram', '128M', '--smp', '2', ...AB, ...SNAPSHOT, ...EVENTS], { name: 'src' });
    expect(await memoryKeepsChanging(source, MiB, 64 * 1024, 30_000)).to.equal(true);
    const file = join(scratch(), 'running.mig');
    await source.qmp.execute('migrate', { uri: `exec:sleep 0.5; cat > ${file}` });
    const done = await waitForMigration(source.qmp, ['completed', 'failed'], 60_000);
    expect(done.status, logTail(source)).to.equal('completed');
    expect(done.downtime, 'the moment the guest stopped').to.be.a('number');
    expect(await runState(source.qmp)).to.equal('running');

    const loaded = await startInstance(['--ram', '128M', '--smp', '2', '--incoming', `file:${file}`, ...EVENTS], { name: 'dst' });
    expect((await waitForMigration(loaded.qmp, ['completed', 'failed'], 60_000)).status, logTail(loaded)).to.equal('completed');
    // It ran at that instant, so it runs when loaded: stop it for the check.
    expect(await runState(loaded.qmp)).to.equal('running');
    expect(await memoryKeepsChanging(loaded, MiB, 64 * 1024, 30_000)).to.equal(true);
    await loaded.qmp.execute('stop');
    expect(await loaded.qmp.execute('__org.livemig_check-ab')).to.deep.equal({ ok: true, 'bad-pages': 0, 'first-bad-pages': [] });
  });

  it('cancelled half-way: the guest runs on, none of its writes left waiting', async () => {
    const source = await startInstance(['--ram', '128M', '--smp', '2', ...AB, ...SNAPSHOT, ...EVENTS], { name: 'src' });
    expect(await memoryKeepsChanging(source, MiB, 64 * 1024, 30_000)).to.equal(true);
    // A reader that never reads: the pass stalls with most pages protected.
    await source.qmp.execute('migrate', { uri: 'exec:sleep 60' });
    await waitForMigration(source.qmp, ['active'], 30_000);
    await source.qmp.execute('migrate_cancel');
    expect((await waitForMigration(source.qmp, ['cancelled', 'failed'], 30_000)).status).to.equal('cancelled');
    expect(await runState(source.qmp)).to.equal('running');
    expect(await memoryKeepsChanging(source, MiB, 64 * 1024, 30_000), 'the guest writes again').to.equal(true);
    await source.qmp.execute('stop');
    expect(await source.qmp.execute('__org.livemig_check-ab')).to.deep.equal({ ok: true, 'bad-pages': 0, 'first-bad-pages': [] });
  });

  it('is refused with the capabilities QEMU refuses it with', async () => {
    const source = await startInstance(['--ram', '32M'], { name: 'src' });
    for (const other of ['postcopy-ram', 'multifd', 'return-path', 'release-ram']) {
      expect(await refusal(source.qmp.execute('migrate-set-capabilities', {
        capabilities: [{ capability: other, state: true }, { capability: 'background-snapshot', state: true }],
      })), other).to.deep.equal({ class: 'GenericError', desc: `Background-snapshot is not compatible with ${other}` });
    }
  });
});
