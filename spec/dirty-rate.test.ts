/**
 * calc-dirty-rate and query-dirty-rate on real instances: a guest dirtying
 * a known number of pages a second, measured in each mode (page-sampling,
 * dirty-bitmap, dirty-ring with its per-vCPU rates), an idle one measuring
 * 0, QEMU 8.2's statuses and its answers to every misuse, calc-time in
 * milliseconds; and a measurement in each mode beside a migration, which
 * still completes with every page right (the ab check).
 */
import { expect } from 'chai';
import { Guest } from '../actors/guest/guest.js';
import { pagesDirtyRate } from '../actors/dirty-rate/dirty-pages-rate.js';
import { samplingDirtyRate } from '../actors/dirty-rate/page-sampling.js';
import { convertTimeUnit } from '../actors/dirty-rate/time-unit.js';
import type { QmpClient } from '../protocols/qmp/client.js';
import { startInstance, stopAllInstances, type TestInstance } from './support/instances.js';
import { boundTcpUri, queryMigrate, waitForMigration } from './support/migration-driver.js';
import { refusal } from './support/qmp-expect.js';

/** Pages/s the `random` guest dirties, over its whole 256 MiB. */
const RATE = 20_000;
/** …as QEMU reports a dirty rate: MB/s, MiB as it counts them. */
const RATE_MB = (RATE * 4096) / (1 << 20);
const RANDOM_GUEST = ['--ram', '256M', '--smp', '2', '--workload', 'random', '--dirty-rate', String(RATE), '--working-set', '256M'];

interface DirtyRateInfo {
  'dirty-rate'?: number;
  status: string;
  'start-time': number;
  'calc-time': number;
  'calc-time-unit': string;
  'sample-pages': number;
  mode: string;
  'vcpu-dirty-rate'?: { id: number; 'dirty-rate': number }[];
}

function queryDirtyRate(qmp: QmpClient, unit?: string): Promise<DirtyRateInfo> {
  return qmp.execute<DirtyRateInfo>('query-dirty-rate', unit ? { 'calc-time-unit': unit } : undefined);
}

/** Polls query-dirty-rate until the measurement is over (bounded). */
async function measured(qmp: QmpClient, timeoutMs = 10_000): Promise<DirtyRateInfo> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const info = await queryDirtyRate(qmp);
    if (info.status === 'measured') return info;
    if (Date.now() > deadline) throw new Error(`dirty rate measurement still '${info.status}' after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** One whole measurement: calc-dirty-rate, then its result. */
async function measure(qmp: QmpClient, args: Record<string, unknown>): Promise<DirtyRateInfo> {
  await qmp.execute('calc-dirty-rate', args);
  return measured(qmp);
}

/** Within a loose factor of the rate the guest dirties at: timing on a busy host is not exact, and a page written twice counts once. */
function expectNearRate(info: DirtyRateInfo): void {
  expect(info['dirty-rate'], `measured ${info['dirty-rate']} MB/s against the guest's ${RATE_MB} MB/s`).to.be.within(0.3 * RATE_MB, 3 * RATE_MB);
}

describe('dirty-rate measurement (calc-dirty-rate, query-dirty-rate)', function () {
  this.timeout(20_000);

  describe("QEMU's arithmetic", () => {
    it('pages to MB/s: multiplied by 1000 before it is brought down to MiB, rounded down', () => {
      expect(pagesDirtyRate(256, 1000)).to.equal(1);
      expect(pagesDirtyRate(255, 1000)).to.equal(0);
      // 100 pages in 50 ms: 7.8 MiB/s (0 had it been brought down to MiB first).
      expect(pagesDirtyRate(100, 50)).to.equal(7);
    });

    it("page-sampling: changed samples' share of the blocks' MiB over the time; -1 when nothing was sampled", () => {
      expect(samplingDirtyRate({ dirtySamples: 10, sampleCount: 100, blockMiB: 1024 }, 1000)).to.equal(102);
      expect(samplingDirtyRate({ dirtySamples: 0, sampleCount: 0, blockMiB: 0 }, 1000)).to.equal(-1);
    });

    it('time units: a power of ten at a time, the remainder dropped toward zero', () => {
      expect(convertTimeUnit(1999n, 'millisecond', 'second')).to.equal(1n);
      expect(convertTimeUnit(-1999n, 'millisecond', 'second')).to.equal(-1n);
      expect(convertTimeUnit(60n, 'second', 'millisecond')).to.equal(60_000n);
    });
  });

  describe("the guest's dirty-rate log", () => {
    let guest: Guest | undefined;
    afterEach(() => guest?.destroy());

    it("counts each page once, for the vCPU that dirtied it, and leaves the migration's dirty bitmap as it was", async () => {
      guest = await Guest.create({ ram: 16 << 20, smp: 2, workload: { kind: 'random', rate: 5000, start: 0, workingSet: 16 << 20, seed: 1 }, runState: 'running' });
      const ram = guest.blocks[0]!;
      const log = guest.dirtyRateLog;
      await new Promise((r) => setTimeout(r, 100));
      await guest.stop();
      const dirtyBefore = ram.dirty.words.slice();
      const before = log.vcpuDirtyPages();
      log.start();
      guest.start();
      await new Promise((r) => setTimeout(r, 300));
      await guest.stop(); // no write in flight from here on
      const logged = log.vcpuDirtyPages().map((n, v) => (n - before[v]!) >>> 0);
      log.stop();
      expect(logged.every((n) => n > 0), `pages per vCPU: ${logged.join(', ')}`).to.equal(true);
      expect(log.dirtyPages(), 'the bitmap holds what the vCPUs counted').to.equal(logged[0]! + logged[1]!);
      // The migration's dirty bitmap lost nothing it held, and holds every page the log does.
      const lost = dirtyBefore.filter((w, i) => (w & ~ram.dirty.words[i]!) !== 0).length;
      const missing = ram.dirtyRate.words.filter((w, i) => (w & ~ram.dirty.words[i]!) !== 0).length;
      expect({ lost, missing }).to.deep.equal({ lost: 0, missing: 0 });
    });
  });

  describe(`a guest dirtying ${RATE} pages/s`, () => {
    let vm: TestInstance;
    before(async () => {
      vm = await startInstance(RANDOM_GUEST);
    });
    after(stopAllInstances);

    it('is unstarted before the first calc-dirty-rate, as QEMU answers then', async () => {
      expect(await queryDirtyRate(vm.qmp)).to.deep.equal({
        status: 'unstarted', 'start-time': 0, 'calc-time': 0, 'calc-time-unit': 'second', 'sample-pages': 0, mode: 'page-sampling',
      });
    });

    it("refuses every misuse with QEMU's words, and starts nothing", async () => {
      const misuses: [Record<string, unknown> | undefined, string][] = [
        [undefined, "Parameter 'calc-time' is missing"],
        [{ 'calc-time': 0 }, 'Calculation time is out of range [50ms, 60000ms].'],
        [{ 'calc-time': -1 }, 'Calculation time is out of range [50ms, 60000ms].'],
        [{ 'calc-time': 61 }, 'Calculation time is out of range [50ms, 60000ms].'],
        [{ 'calc-time': 49, 'calc-time-unit': 'millisecond' }, 'Calculation time is out of range [50ms, 60000ms].'],
        [{ 'calc-time': 60001, 'calc-time-unit': 'millisecond' }, 'Calculation time is out of range [50ms, 60000ms].'],
        [{ 'calc-time': 1, 'sample-pages': 127 }, 'sample-pages is out of range[128, 16384].'],
        [{ 'calc-time': 1, 'sample-pages': 16385 }, 'sample-pages is out of range[128, 16384].'],
        [{ 'calc-time': 1, 'sample-pages': 512, mode: 'dirty-ring' }, 'sample-pages is used only in page-sampling mode'],
        [{ 'calc-time': 1, 'sample-pages': 512, mode: 'dirty-bitmap' }, 'sample-pages is used only in page-sampling mode'],
        // calc-time first, as QEMU checks it.
        [{ 'calc-time': 0, 'sample-pages': 1, mode: 'dirty-ring' }, 'Calculation time is out of range [50ms, 60000ms].'],
        [{ 'calc-time': 1, mode: 'dirty-log' }, "Parameter 'mode' does not accept value 'dirty-log'"],
        [{ 'calc-time': 1, 'calc-time-unit': 'minute' }, "Parameter 'calc-time-unit' does not accept value 'minute'"],
      ];
      for (const [args, desc] of misuses) {
        expect(await refusal(vm.qmp.execute('calc-dirty-rate', args)), JSON.stringify(args)).to.deep.equal({ class: 'GenericError', desc });
      }
      expect(await refusal(queryDirtyRate(vm.qmp, 'hour'))).to.deep.equal({ class: 'GenericError', desc: "Parameter 'calc-time-unit' does not accept value 'hour'" });
      expect((await queryDirtyRate(vm.qmp)).status).to.equal('unstarted');
    });

    it('page-sampling: measuring (and a second calc-dirty-rate refused) until it is measured, near the rate', async () => {
      const since = Math.floor(Date.now() / 1000);
      await vm.qmp.execute('calc-dirty-rate', { 'calc-time': 1, 'sample-pages': 16384 });
      const measuring = await queryDirtyRate(vm.qmp);
      expect(measuring).to.deep.include({ status: 'measuring', 'calc-time': 1, 'calc-time-unit': 'second', 'sample-pages': 16384, mode: 'page-sampling' });
      expect(measuring).not.to.have.property('dirty-rate');
      expect(measuring['start-time']).to.be.within(since, since + 5);
      // Whatever it is asked, before any other check.
      for (const args of [{ 'calc-time': 1 }, { 'calc-time': 0, mode: 'dirty-ring', 'sample-pages': 1 }]) {
        expect((await refusal(vm.qmp.execute('calc-dirty-rate', args))).desc).to.equal('the dirty rate is already being measured.');
      }
      const info = await measured(vm.qmp);
      expect(info).to.deep.include({ status: 'measured', 'calc-time': 1, 'calc-time-unit': 'second', 'sample-pages': 16384, mode: 'page-sampling' });
      expect(info).not.to.have.property('vcpu-dirty-rate');
      expectNearRate(info);
    });

    it('dirty-bitmap: near the rate; sample-pages 512 while measuring (the default), 0 once measured', async () => {
      await vm.qmp.execute('calc-dirty-rate', { 'calc-time': 1, mode: 'dirty-bitmap' });
      expect(await queryDirtyRate(vm.qmp)).to.deep.include({ status: 'measuring', 'sample-pages': 512, mode: 'dirty-bitmap' });
      const info = await measured(vm.qmp);
      expect(info).to.deep.include({ status: 'measured', 'calc-time': 1, 'sample-pages': 0, mode: 'dirty-bitmap' });
      expect(info).not.to.have.property('vcpu-dirty-rate');
      expectNearRate(info);
    });

    it("dirty-ring: each vCPU's rate, their sum the guest's, near the rate", async () => {
      const info = await measure(vm.qmp, { 'calc-time': 1, mode: 'dirty-ring' });
      expect(info).to.deep.include({ status: 'measured', 'sample-pages': 0, mode: 'dirty-ring' });
      expectNearRate(info);
      const vcpus = info['vcpu-dirty-rate']!;
      expect(vcpus.map((v) => v.id)).to.deep.equal([0, 1]);
      // The workload splits the rate between its vCPUs.
      for (const v of vcpus) expect(v['dirty-rate'], `vCPU ${v.id}`).to.be.within(0.3 * (RATE_MB / 2), 3 * (RATE_MB / 2));
      expect(info['dirty-rate']).to.equal(vcpus[0]!['dirty-rate'] + vcpus[1]!['dirty-rate']);
    });

    it('calc-time-unit millisecond: calc-time given and reported in ms, or in s (rounded down) by default', async () => {
      await vm.qmp.execute('calc-dirty-rate', { 'calc-time': 300, 'calc-time-unit': 'millisecond', mode: 'dirty-bitmap' });
      expect(await queryDirtyRate(vm.qmp, 'millisecond')).to.deep.include({ status: 'measuring', 'calc-time': 300, 'calc-time-unit': 'millisecond' });
      expect(await queryDirtyRate(vm.qmp)).to.deep.include({ status: 'measuring', 'calc-time': 0, 'calc-time-unit': 'second' });
      await measured(vm.qmp);
      const info = await queryDirtyRate(vm.qmp, 'millisecond');
      expect(info['calc-time'], 'the time it really measured').to.be.within(300, 2000);
      expectNearRate(info);
    });
  });

  describe('an idle guest', () => {
    after(stopAllInstances);

    it('measures 0 in each mode, and 0 for each vCPU', async () => {
      const vm = await startInstance(['--ram', '64M', '--smp', '2', '--workload', 'idle']);
      for (const mode of ['page-sampling', 'dirty-bitmap', 'dirty-ring']) {
        const info = await measure(vm.qmp, { 'calc-time': 200, 'calc-time-unit': 'millisecond', mode });
        expect(info['dirty-rate'], mode).to.equal(0);
        if (mode === 'dirty-ring') expect(info['vcpu-dirty-rate']).to.deep.equal([{ id: 0, 'dirty-rate': 0 }, { id: 1, 'dirty-rate': 0 }]);
      }
    });
  });

  describe('beside a migration', () => {
    after(stopAllInstances);

    it('measures in every mode while a migration runs, which then completes with every page right (the ab check)', async function () {
      this.timeout(40_000);
      const [destination, source] = await Promise.all([
        startInstance(['--ram', '128M', '--incoming', 'tcp:127.0.0.1:0'], { name: 'dst' }),
        // ab rewrites 31 MiB without pause, more than 40 MB/s can converge on: the migration stays active until the limit is lifted.
        startInstance(['--ram', '128M', '--workload', 'ab', '--ab-start', '1M', '--ab-end', '32M', '--param', 'max-bandwidth=40000000'], { name: 'src' }),
      ]);
      await source.qmp.execute('migrate', { uri: await boundTcpUri(destination.qmp) });
      await waitForMigration(source.qmp, ['active'], 10_000);
      for (const mode of ['dirty-bitmap', 'dirty-ring', 'page-sampling']) {
        const info = await measure(source.qmp, { 'calc-time': 500, 'calc-time-unit': 'millisecond', mode });
        expect(info['dirty-rate'], `${mode}: the ab guest dirties`).to.be.above(0);
        expect((await queryMigrate(source.qmp)).status, `after ${mode}`).to.equal('active');
      }
      // One more measurement, still running as the migration converges and completes.
      await source.qmp.execute('calc-dirty-rate', { 'calc-time': 2, mode: 'dirty-bitmap' });
      await source.qmp.execute('migrate-set-parameters', { 'max-bandwidth': 100_000_000_000 });
      const done = await waitForMigration(source.qmp, ['completed', 'failed'], 20_000);
      expect(done.status, done['error-desc']).to.equal('completed');
      expect((await waitForMigration(destination.qmp, ['completed', 'failed'], 10_000)).status).to.equal('completed');
      expect((await measured(source.qmp))['dirty-rate']).to.be.at.least(0);
      await destination.qmp.execute('stop');
      const check = await destination.qmp.execute<{ ok: boolean; 'bad-pages': number; 'first-bad-pages': number[] }>('__org.livemig_check-ab');
      expect(check, 'pages the destination holds off the ab pattern').to.deep.equal({ ok: true, 'bad-pages': 0, 'first-bad-pages': [] });
    });
  });
});
