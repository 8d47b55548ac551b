/**
 * Switchover with a multifd channel behind (DESIGN rule 4): the source may
 * have written its last round, the device state and EOF and closed its main
 * channel while one destination channel has not yet read its last SYNC. The
 * destination must wait for that channel, load everything and complete, not
 * take the main channel's end for a truncated stream.
 *
 * The channel is held back for certain: its worker thread is frozen (ptrace)
 * while the source, released from pause-before-switchover, sends the rest.
 */
import { expect } from 'chai';
import { startInstance, stopAllInstances } from './support/instances.js';
import { UNLIMITED, boundTcpUri, queryMigrate, sleep, waitForMigration } from './support/migration-driver.js';
import { MiB, channelListenersUp, expectMultifdMigrated, multifdArgs } from './support/multifd-pair.js';
import { enableMultifdChannels } from './support/channel-threads.js';
import { threadFreezer } from './support/thread-freeze.js';

/** A 64 KiB ab range: what the last round carries fits in the socket buffers of a channel nobody reads. */
const AB = { start: 1 * MiB, end: 1 * MiB + 64 * 1024 };
const GUEST = ['--ram', '16M', '--smp', '1'];
const CHANNELS = 2;
const MULTIFD = multifdArgs({ channels: CHANNELS });

describe('multifd switchover with a channel behind', function () {
  this.timeout(45_000);
  // Needs python3 and ptrace; without them there is nothing to hold a channel with.
  const freeze = threadFreezer();
  afterEach(stopAllInstances);

  it('the main channel ends while a channel has not read its last SYNC: the destination waits for it and completes', async () => {
    const [destination, source] = await Promise.all([
      startInstance([...GUEST, '--incoming', 'defer'], { name: 'dst' }),
      startInstance([...GUEST, '--workload', 'ab', '--ab-start', '1M', '--ab-end', '1088K', ...MULTIFD, ...UNLIMITED, '--cap', 'pause-before-switchover'], { name: 'src' }),
    ]);
    const pid = destination.process.pid!;
    const workers = await enableMultifdChannels(destination.qmp, pid, CHANNELS);
    // Kept up should it fail, to say why.
    await destination.qmp.execute('migrate-incoming', { uri: 'tcp:127.0.0.1:0', 'exit-on-error': false });
    await channelListenersUp(destination, CHANNELS);

    await source.qmp.execute('migrate', { uri: await boundTcpUri(destination.qmp) });
    await waitForMigration(source.qmp, ['pre-switchover']);
    // The guest is stopped; hold channel 0 of the destination, then let the source finish.
    const hold = await freeze(workers[0]!);
    await source.qmp.execute('migrate-continue', { state: 'pre-switchover' });
    // Long enough for the source to send the rest and close its main channel (a slower host only makes this test weaker).
    await sleep(1500);
    const waiting = await queryMigrate(destination.qmp);
    expect(waiting.status, `destination while channel 0 is held: ${waiting['error-desc']}`).to.equal('active');
    expect((await queryMigrate(source.qmp)).status, 'source while the destination has not loaded everything').to.equal('device');

    await hold.thaw();
    await expectMultifdMigrated(source, destination, AB);
  });
});
