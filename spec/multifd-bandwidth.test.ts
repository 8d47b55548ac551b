/**
 * max-bandwidth holds for multifd too: the channels write at full speed
 * once they have a batch, so the migration thread charges the limit as it
 * hands batches out, not only as the channels report their bytes; otherwise
 * the batches queued on every channel leave in one burst at the start of
 * each round.
 */
import { expect } from 'chai';
import { startInstance, stopAllInstances } from './support/instances.js';
import { boundTcpUri, queryMigrate, sleep, waitForMigration } from './support/migration-driver.js';
import { multifdArgs } from './support/multifd-pair.js';

const LIMIT = 20_000_000;
const CHANNELS = 4;
/** What may run ahead of the limit: a window's budget, and one window-sized batch per channel being written. */
const SLACK = (LIMIT / 10) * (1 + CHANNELS) + 1_000_000;

describe('multifd under max-bandwidth', function () {
  this.timeout(30_000);
  afterEach(stopAllInstances);

  it(`${CHANNELS} channels at ${LIMIT / 1e6} MB/s: what crossed never runs ahead of the limit by more than a window per channel`, async () => {
    const multifd = multifdArgs({ channels: CHANNELS });
    const [destination, source] = await Promise.all([
      startInstance(['--ram', '128M', '--smp', '1', ...multifd, '--incoming', 'tcp:127.0.0.1:0'], { name: 'dst' }),
      startInstance(['--ram', '128M', '--smp', '1', '--fill', 'random', '--paused', ...multifd, '--param', `max-bandwidth=${LIMIT}`], { name: 'src' }),
    ]);
    await source.qmp.execute('migrate', { uri: await boundTcpUri(destination.qmp) });
    await waitForMigration(source.qmp, ['active']);
    const started = Date.now();
    for (let i = 0; i < 6; i++) {
      await sleep(150);
      const info = await queryMigrate(source.qmp);
      const elapsed = (Date.now() - started) / 1000 + 0.2;
      expect(info.ram!.transferred, `bytes after ${elapsed.toFixed(2)} s`).to.be.at.most(LIMIT * elapsed + SLACK);
    }
    await source.qmp.execute('migrate_cancel');
    await waitForMigration(source.qmp, ['cancelled']);
  });
});
