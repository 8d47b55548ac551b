/**
 * A `random` guest that dirties faster than the link can carry, migrated
 * with real processes: unaided it never converges (it is cancelled after
 * several passes); with auto-converge, and with dirty-limit, it completes on
 * its own, within the downtime limit, and the destination's RAM is the
 * source's to the byte (the destination starts with -S, so both guests are
 * stopped when their digests are taken).
 *
 * The guest: 2 vCPUs writing 20,000 pages/s of run time over an 8 MiB
 * working set, against a 5 MB/s link (1,220 pages/s): every pass finds
 * nearly the whole set dirty again, far over the threshold (5 MB/s × 300 ms
 * ≈ 366 pages), even if a loaded machine gives the vCPUs a tenth of their
 * time. Only a throttle to 99 % (200 pages/s), or a cap well under the
 * link, brings it under.
 */
import { expect } from 'chai';
import { startInstance, stopAllInstances } from './support/instances.js';
import { boundTcpUri, queryMigrate, ramDigest, sleep, waitForMigration, type MigrateInfo } from './support/migration-driver.js';

const GUEST = ['--ram', '64M', '--smp', '2'];
const RANDOM = ['--workload', 'random', '--dirty-rate', '20000', '--working-set', '8M', '--random-start', '1M'];
const LINK = ['--param', 'max-bandwidth=5000000', '--param', 'downtime-limit=300'];

async function busyPair(levers: string[]) {
  const [destination, source] = await Promise.all([
    startInstance([...GUEST, '--paused', '--incoming', 'tcp:127.0.0.1:0'], { name: 'dst' }),
    startInstance([...GUEST, ...RANDOM, ...LINK, ...levers], { name: 'src' }),
  ]);
  return { source, destination, uri: await boundTcpUri(destination.qmp) };
}

/** Polls query-migrate until the migration ends (bounded), noting the highest cpu-throttle-percentage seen. */
async function untilEnded(qmp: Parameters<typeof queryMigrate>[0], ms: number): Promise<{ info: MigrateInfo; throttle: number }> {
  const deadline = Date.now() + ms;
  let throttle = 0;
  for (;;) {
    const info = await queryMigrate(qmp);
    throttle = Math.max(throttle, (info as { 'cpu-throttle-percentage'?: number })['cpu-throttle-percentage'] ?? 0);
    if (['completed', 'failed', 'cancelled'].includes(info.status)) return { info, throttle };
    if (Date.now() > deadline) throw new Error(`the migration is still '${info.status}' after ${ms} ms`);
    await sleep(100);
  }
}

describe('convergence levers: a random guest dirtying faster than the link', function () {
  this.timeout(120_000);
  afterEach(stopAllInstances);

  it('never completes unaided: pass after pass stays over the threshold, until cancelled', async () => {
    const { source, uri } = await busyPair([]);
    await source.qmp.execute('migrate', { uri });
    const deadline = Date.now() + 60_000;
    let info = await queryMigrate(source.qmp);
    while ((info.ram?.['dirty-sync-count'] ?? 0) < 6 && Date.now() < deadline) {
      await sleep(200);
      info = await queryMigrate(source.qmp);
    }
    expect(info.status).to.equal('active');
    expect(info.ram!['dirty-sync-count']).to.be.at.least(6);
    // What is left after a pass would take far longer than the limit to send.
    expect(info['expected-downtime']).to.be.above(300);
    await source.qmp.execute('migrate_cancel');
    expect((await waitForMigration(source.qmp, ['cancelled'], 15_000)).status).to.equal('cancelled');
  });

  it('completes with auto-converge, throttled step by step, within the downtime limit, and the destination is exact', async () => {
    const { source, destination, uri } = await busyPair(['--cap', 'auto-converge', '--param', 'cpu-throttle-initial=50', '--param', 'cpu-throttle-increment=20']);
    await source.qmp.execute('migrate', { uri });
    const { info, throttle } = await untilEnded(source.qmp, 90_000);
    expect(info.status, info['error-desc']).to.equal('completed');
    expect(throttle, 'the vCPUs were throttled').to.be.at.least(50);
    expect(info.downtime).to.be.at.most(300);
    await waitForMigration(destination.qmp, ['completed'], 15_000);
    expect(await ramDigest(destination.qmp)).to.equal(await ramDigest(source.qmp));
  });

  it('completes with dirty-limit, each vCPU capped, within the downtime limit, and the destination is exact', async () => {
    // 1 MB/s a vCPU: 512 pages/s for the guest, well under the link's 1,220.
    const { source, destination, uri } = await busyPair(['--cap', 'dirty-limit', '--param', 'vcpu-dirty-limit=1']);
    await source.qmp.execute('migrate', { uri });
    const { info } = await untilEnded(source.qmp, 90_000);
    expect(info.status, info['error-desc']).to.equal('completed');
    expect(info.downtime).to.be.at.most(300);
    await waitForMigration(destination.qmp, ['completed'], 15_000);
    expect(await ramDigest(destination.qmp)).to.equal(await ramDigest(source.qmp));
  });
});
