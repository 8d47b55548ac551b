/**
 * dirty-limit: the migration's policy alone (QEMU's trigger, then every
 * vCPU capped at vcpu-dirty-limit, read live), the per-vCPU limit commands
 * on a running guest (QEMU's answers and errors, and a limit that really
 * lowers an `ab` guest's dirty rate), the capability's exclusion of auto-converge, and real migrations of
 * a guest that dirties faster than its max-bandwidth lets pages go: once
 * QEMU's throttle trigger fires every vCPU is capped at vcpu-dirty-limit
 * (query-vcpu-dirty-limit shows it, query-migrate shows the two dirty-limit
 * figures, the commands refuse to change it), and the caps are lifted when
 * the migration ends, completed or cancelled; with a low enough limit the
 * migration converges on its own and the destination's memory passes the
 * ab check.
 */
import { expect } from 'chai';
import { DEFAULT_PARAMETERS, type MigrationParameters } from '../actors/options/parameters.js';
import { DirtyLimitThrottle, type DirtyLimiter } from '../actors/outgoing/dirty-limit-throttle.js';
import { startInstance, stopAllInstances, type TestInstance } from './support/instances.js';
import { abCheckStopped, boundTcpUri, queryMigrate, sleep, waitForMigration } from './support/migration-driver.js';
import { refusal } from './support/qmp-expect.js';

const MiB = 1 << 20;
const PAGE = 4096;
/** Pages of 4 KiB in a MB (QEMU's MB are MiB). */
const PAGES_PER_MB = 256;

interface DirtyLimitInfo {
  'cpu-index': number;
  'limit-rate': number;
  'current-rate': number;
}

interface DirtyLimitFigures {
  status: string;
  'dirty-limit-throttle-time-per-round'?: number;
  'dirty-limit-ring-full-time'?: number;
}

type Qmp = TestInstance['qmp'];

const query = (qmp: Qmp) => qmp.execute<DirtyLimitInfo[]>('query-vcpu-dirty-limit');

/** Each vCPU's pages written per second over `ms` (the guest's vcpu-work counters). */
async function dirtyRates(qmp: Qmp, ms: number): Promise<number[]> {
  const work = async () => (await qmp.execute<{ 'vcpu-work': number[] }>('__org.livemig_query-guest'))['vcpu-work'];
  const before = await work();
  const t0 = performance.now();
  await sleep(ms);
  const after = await work();
  const seconds = (performance.now() - t0) / 1000;
  return after.map((n, v) => ((n - before[v]!) >>> 0) / seconds);
}

/** Polls `probe` every 100 ms until it returns something, at most `tries` times. */
async function eventually<T>(what: string, probe: () => Promise<T | undefined>, tries = 200): Promise<T> {
  for (let i = 0; i < tries; i++) {
    const found = await probe();
    if (found !== undefined) return found;
    await sleep(100);
  }
  throw new Error(`${what}: not seen within ${tries * 100} ms`);
}

describe('dirty-limit', function () {
  this.timeout(60_000);

  describe("QEMU's migration_dirty_limit_guest, fed dirty syncs", () => {
    it('caps every vCPU at the second high period, again only once vcpu-dirty-limit changed, and lifts the caps once, at the end', () => {
      const calls: string[] = [];
      let inService = false;
      const limits: DirtyLimiter = {
        get inService() {
          return inService;
        },
        set: (quota, vcpu) => {
          inService = true;
          calls.push(`set ${quota} ${vcpu ?? 'all'}`);
        },
        cancel: (vcpu) => {
          inService = false;
          calls.push(`cancel ${vcpu ?? 'all'}`);
        },
      };
      let params: MigrationParameters = { ...DEFAULT_PARAMETERS };
      let clock = 0;
      let sent = 0;
      const policy = new DirtyLimitThrottle(limits, () => params, clock, sent);
      /** One period of 1.5 s in which the guest dirtied as many bytes as were sent: above the 50 % threshold. */
      const highPeriod = () => {
        clock += 1500;
        sent += 100 * PAGE;
        policy.onSync(clock, 100, sent);
      };
      highPeriod();
      expect(calls, 'the first high period only counts').to.deep.equal([]);
      highPeriod();
      expect(calls).to.deep.equal(['set 1 all']);
      highPeriod();
      highPeriod();
      expect(calls, 'the same quota is not set again').to.deep.equal(['set 1 all']);
      params = { ...params, 'vcpu-dirty-limit': 20n };
      highPeriod();
      highPeriod();
      expect(calls).to.deep.equal(['set 1 all', 'set 20 all']);
      policy.stop();
      policy.stop();
      highPeriod();
      highPeriod();
      expect(calls, 'lifted once, and nothing after').to.deep.equal(['set 1 all', 'set 20 all', 'cancel all']);
    });
  });

  describe('the per-vCPU limit commands, with no migration', () => {
    let vm: TestInstance;
    before(async () => {
      vm = await startInstance(['--ram', '32M', '--smp', '2', '--workload', 'ab', '--ab-start', '1M', '--ab-end', '17M']);
    });
    after(stopAllInstances);
    afterEach(() => vm.qmp.execute('cancel-vcpu-dirty-limit'));

    it('lists no vCPU while none is limited; cancelling then is a no-op', async () => {
      expect(await query(vm.qmp)).to.deep.equal([]);
      expect(await vm.qmp.execute('cancel-vcpu-dirty-limit')).to.deep.equal({});
      expect(await vm.qmp.execute('cancel-vcpu-dirty-limit', { 'cpu-index': 1 })).to.deep.equal({});
    });

    it("refuses a cpu-index outside the guest's vCPUs with QEMU's text, and bad arguments as QAPI does", async () => {
      const incorrect = { class: 'GenericError', desc: 'incorrect cpu index specified' };
      expect(await refusal(vm.qmp.execute('set-vcpu-dirty-limit', { 'cpu-index': 2, 'dirty-rate': 10 }))).to.deep.equal(incorrect);
      expect(await refusal(vm.qmp.execute('set-vcpu-dirty-limit', { 'cpu-index': -1, 'dirty-rate': 10 }))).to.deep.equal(incorrect);
      // A 0 MB/s limit is a cancel, which checks the index too.
      expect(await refusal(vm.qmp.execute('set-vcpu-dirty-limit', { 'cpu-index': 7, 'dirty-rate': 0 }))).to.deep.equal(incorrect);
      expect(await refusal(vm.qmp.execute('cancel-vcpu-dirty-limit', { 'cpu-index': 2 }))).to.deep.equal(incorrect);
      expect((await refusal(vm.qmp.execute('set-vcpu-dirty-limit', {}))).desc).to.equal("Parameter 'dirty-rate' is missing");
      expect(await refusal(vm.qmp.execute('set-vcpu-dirty-limit', { 'dirty-rate': 'fast' }))).to.deep.equal(
        { class: 'GenericError', desc: "Parameter 'dirty-rate' expects uint64" },
      );
      expect(await query(vm.qmp), 'nothing was set').to.deep.equal([]);
      // As QAPI reads a uint64, a negative one wraps (QEMU then limits nothing in practice).
      await vm.qmp.execute('set-vcpu-dirty-limit', { 'cpu-index': 0, 'dirty-rate': -5 });
      expect((await query(vm.qmp)).map((i) => BigInt(i['limit-rate']))).to.deep.equal([2n ** 64n - 5n]);
    });

    it('sets one vCPU or all, lists the limited ones in order, and lifts them one by one, all at once, or with a 0 MB/s limit', async () => {
      await vm.qmp.execute('set-vcpu-dirty-limit', { 'cpu-index': 1, 'dirty-rate': 200 });
      expect((await query(vm.qmp)).map((i) => [i['cpu-index'], i['limit-rate']])).to.deep.equal([[1, 200]]);
      await vm.qmp.execute('set-vcpu-dirty-limit', { 'dirty-rate': 60 });
      expect((await query(vm.qmp)).map((i) => [i['cpu-index'], i['limit-rate']])).to.deep.equal([[0, 60], [1, 60]]);
      await vm.qmp.execute('cancel-vcpu-dirty-limit', { 'cpu-index': 0 });
      expect((await query(vm.qmp)).map((i) => i['cpu-index'])).to.deep.equal([1]);
      await vm.qmp.execute('set-vcpu-dirty-limit', { 'cpu-index': 1, 'dirty-rate': 0 });
      expect(await query(vm.qmp)).to.deep.equal([]);
      // A quota beyond what a vCPU could ever dirty is kept as given (uint64).
      await vm.qmp.execute('set-vcpu-dirty-limit', { 'dirty-rate': 2n ** 63n });
      expect((await query(vm.qmp)).map((i) => BigInt(i['limit-rate']))).to.deep.equal([2n ** 63n, 2n ** 63n]);
      await vm.qmp.execute('cancel-vcpu-dirty-limit');
      expect(await query(vm.qmp)).to.deep.equal([]);
    });

    it("really lowers a running ab guest's dirty rate, which current-rate shows; lifted, the guest runs free again", async () => {
      const free = await dirtyRates(vm.qmp, 500);
      const limit = 4; // MB/s: 1024 pages/s per vCPU
      const cap = limit * PAGES_PER_MB;
      expect(Math.min(...free), 'the unlimited guest dirties far faster than the limit').to.be.above(10 * cap);
      await vm.qmp.execute('set-vcpu-dirty-limit', { 'dirty-rate': limit });
      await sleep(200);
      const limited = await dirtyRates(vm.qmp, 1200);
      for (const rate of limited) expect(rate).to.be.within(0.3 * cap, 1.3 * cap);
      // current-rate is measured every second while a limit is in force: this one over a second all limited.
      await sleep(900);
      const infos = await eventually('a current-rate', async () => {
        const got = await query(vm.qmp);
        return got.every((i) => i['current-rate'] > 0) ? got : undefined;
      });
      for (const info of infos) expect(info['current-rate'], JSON.stringify(infos)).to.be.within(1, limit + 1);
      await vm.qmp.execute('cancel-vcpu-dirty-limit');
      expect(Math.min(...(await dirtyRates(vm.qmp, 500)))).to.be.above(10 * cap);
    });

    it("is exclusive with auto-converge, with QEMU's text, whichever comes first", async () => {
      const set = (caps: Record<string, boolean>) => vm.qmp.execute('migrate-set-capabilities', {
        capabilities: Object.entries(caps).map(([capability, state]) => ({ capability, state })),
      });
      const states = async () => Object.fromEntries(
        (await vm.qmp.execute<{ capability: string; state: boolean }[]>('query-migrate-capabilities'))
          .filter((c) => c.capability === 'dirty-limit' || c.capability === 'auto-converge')
          .map((c) => [c.capability, c.state]),
      );
      const conflict = { class: 'GenericError', desc: 'dirty-limit conflicts with auto-converge either of then available currently' };
      expect(await refusal(set({ 'dirty-limit': true, 'auto-converge': true }))).to.deep.equal(conflict);
      expect(await states()).to.deep.equal({ 'auto-converge': false, 'dirty-limit': false });
      await set({ 'dirty-limit': true });
      expect(await refusal(set({ 'auto-converge': true }))).to.deep.equal(conflict);
      await set({ 'dirty-limit': false, 'auto-converge': true });
      expect(await refusal(set({ 'dirty-limit': true }))).to.deep.equal(conflict);
      await set({ 'auto-converge': false });
      expect(await states()).to.deep.equal({ 'auto-converge': false, 'dirty-limit': false });
    });
  });

  describe('a migration of a guest that dirties faster than the link', () => {
    afterEach(stopAllInstances);

    /** A guest dirtying a 32 MiB range (all of it every few ms) against a 30 MB/s link: unlimited, it never converges. */
    async function busyPair(smp: number, extra: string[]) {
      const [destination, source] = await Promise.all([
        startInstance(['--ram', '64M', '--smp', String(smp), '--incoming', 'tcp:127.0.0.1:0'], { name: 'dst' }),
        startInstance([
          '--ram', '64M', '--smp', String(smp), '--workload', 'ab', '--ab-start', '1M', '--ab-end', '33M',
          '--param', 'max-bandwidth=30000000', '--cap', 'dirty-limit', ...extra,
        ], { name: 'src' }),
      ]);
      return { source, destination, uri: await boundTcpUri(destination.qmp) };
    }

    /** query-vcpu-dirty-limit once the migration's trigger has capped every vCPU at `limit`. */
    const capped = (qmp: Qmp, smp: number, limit: number) => eventually('every vCPU capped', async () => {
      const infos = await query(qmp);
      return infos.length === smp && infos.every((i) => i['limit-rate'] === limit) ? infos : undefined;
    });

    /** query-migrate once both dirty-limit figures are in and the rates have been measured. */
    const figures = (qmp: Qmp) => eventually('the dirty-limit figures', async () => {
      const info = (await queryMigrate(qmp)) as unknown as DirtyLimitFigures;
      return (info['dirty-limit-ring-full-time'] ?? 0) > 0 ? info : undefined;
    });

    it('caps every vCPU at vcpu-dirty-limit once the trigger fires, holds the caps against the commands, and lifts them once it completes', async () => {
      const { source, destination, uri } = await busyPair(2, ['--param', 'vcpu-dirty-limit=50', '--param', 'x-vcpu-dirty-limit-period=250']);
      expect((await queryMigrate(source.qmp)) as object, 'no figures before').not.to.have.property('dirty-limit-ring-full-time');
      await source.qmp.execute('migrate', { uri });
      await capped(source.qmp, 2, 50);
      // The figures come from the rates of the last whole period (250 ms): let the capped vCPUs fill a few first.
      await new Promise((r) => setTimeout(r, 1000));
      const info = await figures(source.qmp);
      expect(info.status).to.equal('active');
      // ab would dirty far faster: each vCPU sleeps for most of each ring (4096 pages) it fills.
      expect(info['dirty-limit-throttle-time-per-round']).to.be.above(0);
      // A ring of 4096 pages (16 MiB) at about 50 MB/s a vCPU: about 320 ms (loose bounds: the rates are measured on a shared machine).
      expect(info['dirty-limit-ring-full-time']).to.be.within(160_000, 2_000_000);
      for (const rate of await dirtyRates(source.qmp, 1000)) expect(rate).to.be.below(1.3 * 50 * PAGES_PER_MB);
      // The migration's caps are not the orchestrator's to change meanwhile.
      expect(await refusal(source.qmp.execute('set-vcpu-dirty-limit', { 'dirty-rate': 100 }))).to.deep.equal(
        { class: 'GenericError', desc: "can't set dirty page rate limit while migration is running" },
      );
      expect(await refusal(source.qmp.execute('cancel-vcpu-dirty-limit', { 'cpu-index': 0 }))).to.deep.equal(
        { class: 'GenericError', desc: "can't cancel dirty page rate limit while migration is running" },
      );
      // Still no convergence at 2 × 50 MB/s against 30 MB/s: the link is lifted.
      await source.qmp.execute('migrate-set-parameters', { 'max-bandwidth': 100_000_000_000 });
      const done = await waitForMigration(source.qmp, ['completed', 'failed'], 30_000);
      expect(done.status, done['error-desc']).to.equal('completed');
      expect(done).not.to.have.property('dirty-limit-throttle-time-per-round');
      expect(done).not.to.have.property('dirty-limit-ring-full-time');
      expect(await query(source.qmp), 'the caps are lifted').to.deep.equal([]);
      await waitForMigration(destination.qmp, ['completed'], 30_000);
      // Idle again, the commands work.
      await source.qmp.execute('set-vcpu-dirty-limit', { 'cpu-index': 0, 'dirty-rate': 100 });
      expect((await query(source.qmp)).map((i) => i['cpu-index'])).to.deep.equal([0]);
    });

    it('a cancelled migration lifts the caps too', async () => {
      const { source, uri } = await busyPair(2, ['--param', 'vcpu-dirty-limit=50']);
      await source.qmp.execute('migrate', { uri });
      await capped(source.qmp, 2, 50);
      await source.qmp.execute('migrate_cancel');
      await waitForMigration(source.qmp, ['cancelled'], 15_000);
      expect(await query(source.qmp)).to.deep.equal([]);
      expect(Math.min(...(await dirtyRates(source.qmp, 500))), 'the guest runs free').to.be.above(10 * 50 * PAGES_PER_MB);
    });

    it('with a low enough vcpu-dirty-limit converges on its own, within the downtime limit, and the destination passes the ab check', async () => {
      // vcpu-dirty-limit's default, 1 MB/s.
      const { source, destination, uri } = await busyPair(1, []);
      await source.qmp.execute('migrate', { uri });
      const done = await waitForMigration(source.qmp, ['completed', 'failed'], 40_000);
      expect(done.status, done['error-desc']).to.equal('completed');
      expect(done.downtime).to.be.at.most(300);
      expect(await query(source.qmp)).to.deep.equal([]);
      await waitForMigration(destination.qmp, ['completed'], 30_000);
      const report = await abCheckStopped(destination, 1 * MiB, 33 * MiB);
      expect(report.touched).to.equal(true);
      expect(report.badPages).to.deep.equal([]);
    });
  });
});
