/**
 * auto-converge: QEMU's trigger and throttle steps on a real guest's vCPU
 * throttle (the policy alone, fed dirty syncs), then real migrations of a
 * guest that dirties faster than its max-bandwidth lets pages go: it is
 * throttled step by step (as QEMU's migration-test checks, before lifting
 * the bandwidth), and the throttle is lifted when the migration ends,
 * whether it completes or is cancelled.
 */
import { expect } from 'chai';
import { Guest } from '../actors/guest/guest.js';
import { AutoConverge } from '../actors/outgoing/auto-converge.js';
import { DEFAULT_PARAMETERS, type MigrationParameters } from '../actors/options/parameters.js';
import { startInstance, stopAllInstances, type TestInstance } from './support/instances.js';
import { boundTcpUri, queryMigrate, waitForMigration } from './support/migration-driver.js';

const MiB = 1 << 20;
const PAGE = 4096;

describe('auto-converge', function () {
  this.timeout(60_000);

  describe("QEMU's trigger and steps, on a guest's vCPU throttle", () => {
    let guest: Guest;
    let params: MigrationParameters;
    let clock: number;
    let sent: number;
    let policy: AutoConverge;
    /** One period of 1.5 s in which the guest dirtied `dirtied` pages while `bytes` were sent. */
    const period = (dirtied: number, bytes: number) => {
      clock += 1500;
      sent += bytes;
      policy.onSync(clock, dirtied, sent);
    };

    beforeEach(async () => {
      guest = await Guest.create({ ram: 8 * MiB, smp: 1, workload: { kind: 'idle' }, runState: 'running' });
      params = { ...DEFAULT_PARAMETERS };
      clock = 0;
      sent = 0;
      policy = new AutoConverge(guest, () => params, clock, sent);
    });
    afterEach(() => guest.destroy());

    it('throttles at the second period that dirties more than the threshold (50 % of what was sent), as QEMU counts them', () => {
      period(100, 100 * PAGE); // dirtied = sent: above 50 %, once
      expect(policy.percentage).to.equal(0);
      period(10, 100 * PAGE); // below: QEMU's count is not reset by it
      expect(policy.percentage).to.equal(0);
      period(100, 100 * PAGE);
      expect(policy.percentage, 'cpu-throttle-initial').to.equal(20);
      period(100, 100 * PAGE);
      period(100, 100 * PAGE);
      expect(policy.percentage, 'then cpu-throttle-increment').to.equal(30);
    });

    it('counts a period only once it lasted a second, adding up the syncs within it', () => {
      policy.onSync(400, 60, 100 * PAGE);
      policy.onSync(800, 60, 100 * PAGE);
      policy.onSync(1200, 0, 100 * PAGE); // 120 pages against 100 sent: high
      policy.onSync(2400, 120, 200 * PAGE); // high again
      expect(policy.percentage).to.equal(20);
    });

    it('stops at max-cpu-throttle, read live; tailslow steps no further than what reaches the threshold', () => {
      params = { ...params, 'cpu-throttle-initial': 60, 'cpu-throttle-increment': 30, 'max-cpu-throttle': 80 };
      for (let i = 0; i < 6; i++) period(100, 100 * PAGE);
      expect(policy.percentage).to.equal(80);
      policy.stop();
      params = { ...params, 'cpu-throttle-initial': 20, 'cpu-throttle-increment': 40, 'max-cpu-throttle': 99, 'cpu-throttle-tailslow': true };
      period(100, 100 * PAGE);
      period(100, 100 * PAGE);
      expect(policy.percentage).to.equal(20);
      // Dirtied 60 % of what was sent against a 50 % threshold: CPU 80 → 80 × 50/60 ≈ 66.7, a step of 13, not 40.
      period(60, 100 * PAGE);
      period(60, 100 * PAGE);
      expect(policy.percentage).to.equal(33);
    });

    it('stop() lifts the throttle', () => {
      for (let i = 0; i < 2; i++) period(100, 100 * PAGE);
      expect(guest.throttle).to.equal(20);
      policy.stop();
      expect(guest.throttle).to.equal(0);
    });
  });

  describe('a migration that could not converge without it', () => {
    afterEach(stopAllInstances);

    /** A 2-vCPU guest dirtying a 32 MiB range faster than 30 MB/s can send it: unthrottled, it never converges. */
    async function busyPair(extra: string[]) {
      const [destination, source] = await Promise.all([
        startInstance(['--ram', '64M', '--smp', '2', '--incoming', 'tcp:127.0.0.1:0'], { name: 'dst' }),
        startInstance(['--ram', '64M', '--smp', '2', '--workload', 'ab', '--ab-start', '1M', '--ab-end', '33M', '--param', 'max-bandwidth=30000000', ...extra], { name: 'src' }),
      ]);
      return { source, destination, uri: await boundTcpUri(destination.qmp) };
    }

    /** query-migrate's cpu-throttle-percentage until it reaches `target` (as QEMU's migration-test waits for it). */
    async function throttleSteps(qmp: TestInstance['qmp'], target: number): Promise<number[]> {
      const seen: number[] = [];
      for (let i = 0; i < 600 && seen.at(-1) !== target; i++) {
        const pct = (await queryMigrate(qmp) as { 'cpu-throttle-percentage'?: number })['cpu-throttle-percentage'];
        if (pct !== undefined && pct !== seen.at(-1)) seen.push(pct);
        await new Promise((r) => setTimeout(r, 100));
      }
      return seen;
    }

    it('is throttled step by step (query-migrate shows each step), and once the link allows it completes, unthrottled', async () => {
      const { source, destination, uri } = await busyPair(['--cap', 'auto-converge', '--param', 'cpu-throttle-initial=30', '--param', 'cpu-throttle-increment=20']);
      await source.qmp.execute('migrate', { uri });
      expect(await throttleSteps(source.qmp, 50)).to.deep.equal([30, 50]);
      expect((await source.qmp.execute<{ 'cpu-throttle': number }>('__org.livemig_query-guest'))['cpu-throttle'], "the guest's vCPUs are throttled").to.equal(50);
      await source.qmp.execute('migrate-set-parameters', { 'max-bandwidth': 100_000_000_000 });
      const done = await waitForMigration(source.qmp, ['completed', 'failed'], 60_000);
      expect(done.status, done['error-desc']).to.equal('completed');
      expect(done).not.to.have.property('cpu-throttle-percentage');
      await waitForMigration(destination.qmp, ['completed'], 30_000);
      expect((await source.qmp.execute<{ 'cpu-throttle': number }>('__org.livemig_query-guest'))['cpu-throttle'], 'the throttle is lifted').to.equal(0);
    });

    it('a cancelled migration lifts the throttle too', async () => {
      const { source, uri } = await busyPair(['--cap', 'auto-converge']);
      await source.qmp.execute('migrate', { uri });
      expect(await throttleSteps(source.qmp, 20)).to.deep.equal([20]);
      await source.qmp.execute('migrate_cancel');
      await waitForMigration(source.qmp, ['cancelled'], 15_000);
      // Unthrottled again.
      expect((await source.qmp.execute<{ 'cpu-throttle': number }>('__org.livemig_query-guest'))['cpu-throttle']).to.equal(0);
    });
  });
});
