/**
 * A cancel the destination always hears: `migrate` followed by
 * `migrate_cancel` at many moments, from in the same write (before the
 * first byte of the stream) to well into setup, with multifd and
 * pause-before-switchover on, the destination listening on a unix socket.
 * Whatever the moment, the source ends `cancelled` with its guest running
 * and intact, and the destination `failed`: it never lingers in setup
 * (QEMU's destination always sees the channel open and close).
 */
import { expect } from 'chai';
import { join } from 'node:path';
import { startInstance, stopAllInstances } from './support/instances.js';
import { runState, sleep, waitForMigration } from './support/migration-driver.js';
import { MiB, expectAbIntact, multifdArgs } from './support/multifd-pair.js';

const AB = { start: 1 * MiB, end: 16 * MiB };
const CAPS = [...multifdArgs({ channels: 2 }), '--cap', 'pause-before-switchover'];
/** When the cancel goes, after `migrate`: in its write, as soon as migrate answered, then later into setup. */
const MOMENTS = ['same write', 0, 1, 3, 10, 30, 100] as const;

describe('a cancel the destination always hears', function () {
  this.timeout(60_000);
  afterEach(stopAllInstances);

  for (const moment of MOMENTS) {
    it(`migrate_cancel ${moment === 'same write' ? 'in the same write as migrate' : `${moment} ms after migrate answered`}: source cancelled and intact, destination failed`, async () => {
      const [src, dst] = await Promise.all([
        startInstance(['--ram', '32M', '--workload', 'ab', '--ab-start', '1M', '--ab-end', '16M', ...CAPS], { name: 'src' }),
        startInstance(['--ram', '32M', ...CAPS, '--incoming', 'defer'], { name: 'dst' }),
      ]);
      const uri = `unix:${join(dst.dir, 'migration.sock')}`;
      // exit-on-error off, so the failed destination stays up to be asked.
      await dst.qmp.execute('migrate-incoming', { uri, 'exit-on-error': false });
      if (moment === 'same write') {
        src.qmp.sendRaw(`${JSON.stringify({ execute: 'migrate', arguments: { uri } })}${JSON.stringify({ execute: 'migrate_cancel' })}`);
        expect(await src.qmp.nextResponse()).to.deep.equal({ return: {} });
        expect(await src.qmp.nextResponse()).to.deep.equal({ return: {} });
      } else {
        await src.qmp.execute('migrate', { uri });
        if (moment > 0) await sleep(moment);
        await src.qmp.execute('migrate_cancel');
      }
      const s = await waitForMigration(src.qmp, ['cancelled', 'completed', 'failed'], 20_000);
      expect(s.status, `source: ${s['error-desc']}`).to.equal('cancelled');
      const d = await waitForMigration(dst.qmp, ['failed', 'completed'], 20_000);
      expect(d.status, 'the destination heard the cancel').to.equal('failed');
      expect(d['error-desc']).to.match(/^load of migration failed: /);
      expect(await runState(src.qmp)).to.equal('running');
      await src.qmp.execute('stop');
      await expectAbIntact(src, AB.start, AB.end, 'source');
    });
  }
});
