/**
 * The convergence predictor (`__org.livemig_query-convergence`): the
 * model's arithmetic on cases worked by hand, the command's refusals as
 * QAPI and QEMU word them, its prediction against real migrations of a
 * guest that clearly converges and one that clearly does not, and
 * `livemig migrate` printing it before it starts.
 */
import { expect } from 'chai';
import { predictConvergence, type ConvergencePrediction, type LeverSettings } from '../actors/convergence/convergence-prediction.js';
import { maxConvergingRate, pendingAfterFirstPass, predictPrecopy, writeRateOfDistinct, type PrecopyInput } from '../actors/convergence/precopy-model.js';
import { QmpError } from '../protocols/qmp/errors.js';
import { CONVERGENCE_COMMAND } from '../protocols/qmp/livemig-extensions.js';
import { runCli } from './support/cli.js';
import { startInstance, stopAllInstances, type TestInstance } from './support/instances.js';
import { boundTcpUri, queryMigrate, sleep, waitForMigration } from './support/migration-driver.js';

const MiB = 1 << 20;

/** 1000 pages, all of them the working set, 100 pages/s, 300 ms: a threshold of 30 pages, batches of 10. */
const SMALL: PrecopyInput = {
  pendingPages: 1000,
  bulkStage: true,
  workingSetPages: 1000,
  dirtyPagesRate: 0,
  bandwidthPagesPerSecond: 100,
  switchoverPagesPerSecond: 100,
  downtimeLimitMs: 300,
  batchPages: 10,
  resendEncodingRate: 1,
};

const SETTINGS: LeverSettings = {
  enabled: { 'auto-converge': false, 'dirty-limit': false, xbzrle: false, 'postcopy-ram': false },
  cpuThrottleInitial: 20,
  cpuThrottleIncrement: 10,
  maxCpuThrottle: 99,
  vcpuDirtyLimit: 1,
  smp: 2,
  xbzrleCacheSize: 64 * MiB,
  postcopyPagesPerSecond: 25_600,
};

async function refusal(instance: TestInstance, args: Record<string, unknown>): Promise<string> {
  try {
    await instance.qmp.execute(CONVERGENCE_COMMAND, args);
  } catch (err) {
    expect(err).to.be.instanceOf(QmpError);
    return `${(err as QmpError).errorClass}: ${(err as QmpError).desc}`;
  }
  throw new Error(`${JSON.stringify(args)} was accepted`);
}

/** Measures the guest's dirty rate as a client would before a migration (dirty-bitmap: every distinct page). */
async function measure(instance: TestInstance, calcTimeMs = 1000): Promise<void> {
  await instance.qmp.execute('calc-dirty-rate', { 'calc-time': calcTimeMs, 'calc-time-unit': 'millisecond', mode: 'dirty-bitmap' });
  for (let i = 0; (await instance.qmp.execute<{ status: string }>('query-dirty-rate')).status !== 'measured'; i++) {
    if (i > 200) throw new Error('the dirty rate was never measured');
    await sleep(50);
  }
}

describe('convergence predictor', function () {
  this.timeout(120_000);
  afterEach(stopAllInstances);

  describe('the model, on cases worked by hand', () => {
    it('a guest that writes nothing: one pass down to half a batch under the threshold, the rest in a second, none left for the downtime', () => {
      // 1000 − 30 + 10/2 = 975 pages at 100 pages/s leave 25: under the threshold, but the sync that ends the first
      // pass decides nothing, so a second pass sends them (0.25 s) and the next sync finds none.
      expect(predictPrecopy(SMALL)).to.deep.equal({ converges: true, passes: 2, expectedDowntimeMs: 0, precopyTimeMs: 10_000 });
    });

    it('a page sent during the pass is written again after it with probability rate × (rest of the pass) / working set', () => {
      // 1 page/s over 1000 pages for 9.75 s: the 975 pages sent are rewritten, on average, with probability 9.75/2000.
      const first = pendingAfterFirstPass({ ...SMALL, dirtyPagesRate: 1 });
      expect(first).to.be.closeTo(25 + (975 * 9.75) / 2000, 0.05);
      // The second pass sends all of them, in first/100 s: each is rewritten after with probability (first/100)/2000, a
      // page not in it with probability (first/100)/1000.
      const seconds = first / 100;
      const p = predictPrecopy({ ...SMALL, dirtyPagesRate: 1 });
      expect(p).to.include({ converges: true, passes: 2 });
      expect(p.expectedDowntimeMs).to.be.closeTo(((first * seconds / 2000 + (1000 - first) * seconds / 1000) / 100) * 1000, 0.01);
      expect(p.precopyTimeMs).to.be.closeTo(9750 + seconds * 1000, 0.01);
    });

    it('past the first pass, a first pass of dirty pages still under way goes whole before the next sync decides', () => {
      // 25 pages pending, under the 30-page threshold: as it would be decided at once, the prediction sends them first.
      const p = predictPrecopy({ ...SMALL, pendingPages: 25, bulkStage: false, firstDirtyPass: true });
      expect(p).to.deep.equal({ converges: true, passes: 1, expectedDowntimeMs: 0, precopyTimeMs: 250 });
      expect(predictPrecopy({ ...SMALL, pendingPages: 25, bulkStage: false })).to.deep.equal({ converges: true, passes: 1, expectedDowntimeMs: 250, precopyTimeMs: 0 });
    });

    it('a guest dirtying faster than pages go stalls where it dirties new pages as fast as they go: working set × (1 − bandwidth/rate)', () => {
      for (const [rate, stall] of [[200, 500], [400, 750]] as const) {
        const p = predictPrecopy({ ...SMALL, dirtyPagesRate: rate });
        expect(p.converges, `${rate} pages/s`).to.equal(false);
        expect(p.stallPages, `${rate} pages/s`).to.be.closeTo(stall, 1);
      }
    });

    it('converges below the rate at which that stall is the threshold (less the half batch): bandwidth / (1 − 25/1000)', () => {
      const max = maxConvergingRate({ ...SMALL, dirtyPagesRate: 400 });
      expect(max).to.be.closeTo(100 / (1 - 25 / 1000), 1);
      expect(predictPrecopy({ ...SMALL, dirtyPagesRate: max }).converges).to.equal(true);
      expect(predictPrecopy({ ...SMALL, dirtyPagesRate: max + 2 }).converges).to.equal(false);
    });

    it('turns a count of distinct pages back into page writes over the working set', () => {
      expect(writeRateOfDistinct(1000 * (1 - Math.exp(-0.5)), 1, 1000)).to.be.closeTo(500, 1e-6);
      expect(writeRateOfDistinct(300, 2, 1_000_000)).to.be.closeTo(150, 0.1);
    });

    it('says what each lever needs: the throttle step, the vcpu-dirty-limit, the xbzrle encoding rate and cache, postcopy what is left', () => {
      // 100 MB/s, a working set of 1000 MB, 200 MB/s of writes; it converges below 25600 / (1 − 7168/256000) ≈ 26337 pages/s ≈ 103 MB/s.
      const model: PrecopyInput = {
        pendingPages: 262_144, bulkStage: true, workingSetPages: 256_000, dirtyPagesRate: 51_200,
        bandwidthPagesPerSecond: 25_600, switchoverPagesPerSecond: 25_600, downtimeLimitMs: 300, batchPages: 1024, resendEncodingRate: 1,
      };
      const p = predictConvergence({ model, dirtyRateSource: 'argument', bandwidthSource: 'argument', dirtySyncCount: 0 }, SETTINGS);
      expect(p).to.include({ converges: false, 'dirty-rate': 200, 'threshold-size': 30 * MiB, 'working-set': 1000 * MiB });
      expect(p['stall-size']).to.be.closeTo((1 - 1 / 2) * 1000 * MiB, MiB);
      // A throttle of 1 − 103/200 ≈ 49 %: auto-converge's steps 20, 30, 40, 50.
      expect(p.levers['auto-converge']).to.deep.equal({ enabled: false, converges: true, 'cpu-throttle-percentage': 50 });
      // 103 MB/s over 2 vCPUs: 51 each; the parameter's 1 MB/s converges too.
      expect(p.levers['dirty-limit']).to.deep.equal({ enabled: false, converges: true, 'vcpu-dirty-limit': 51 });
      // The working set needs a 1 GiB cache: 64 MiB does not hold it.
      expect(p.levers.xbzrle).to.include({ converges: false, 'xbzrle-cache-size': 1 << 30 });
      const rate = p.levers.xbzrle['encoding-rate']!;
      expect(predictPrecopy({ ...model, resendEncodingRate: rate }).converges).to.equal(true);
      expect(predictPrecopy({ ...model, resendEncodingRate: rate * 0.95 }).converges).to.equal(false);
      expect(p.levers['postcopy-ram'].converges).to.equal(true);
      expect(p.levers['postcopy-ram']['postcopy-bytes']).to.be.within(30 * MiB, 1000 * MiB);
    });

    it('counts dirty syncs as QEMU does: one at setup, one after each pass, one in the stop-and-copy', () => {
      const p: ConvergencePrediction = predictConvergence({ model: { ...SMALL, dirtyPagesRate: 1 }, dirtyRateSource: 'argument', bandwidthSource: 'argument', dirtySyncCount: 0 }, SETTINGS);
      expect(p).to.include({ converges: true, passes: 2, 'dirty-sync-count': 4, 'expected-downtime': 3, 'precopy-time': 10_047 });
      expect(p.levers['auto-converge']).to.deep.equal({ enabled: false, converges: true, 'cpu-throttle-percentage': 0 });
    });
  });

  describe('the command', () => {
    it('refuses bad and unknown arguments as QAPI does, and says which command measures the dirty rate when none was', async () => {
      const vm = await startInstance(['--ram', '32M', '--workload', 'random', '--dirty-rate', '1000', '--working-set', '8M'], { name: 'predict-args' });
      expect(await refusal(vm, {})).to.equal('GenericError: No dirty rate measured yet: give dirty-rate, or measure it with calc-dirty-rate');
      expect(await refusal(vm, { speed: 1 })).to.equal("GenericError: Parameter 'speed' is unexpected");
      expect(await refusal(vm, { 'dirty-rate': 'fast' })).to.equal("GenericError: Parameter 'dirty-rate' expects uint64");
      expect(await refusal(vm, { 'dirty-rate': 1, bandwidth: true })).to.equal("GenericError: Parameter 'bandwidth' expects uint64");
      expect(await refusal(vm, { 'dirty-rate': 1, bandwidth: 0 })).to.equal("GenericError: Parameter 'bandwidth' expects a size above 0");
      expect(await refusal(vm, { 'dirty-rate': 1, 'downtime-limit': 2_000_001 })).to.equal(
        "GenericError: Parameter 'downtime-limit' expects an integer in the range of 0 to (2000 * 1000) ms");
      expect(await refusal(vm, { 'dirty-rate': 1, 'working-set': 64 * MiB })).to.equal(
        `GenericError: Parameter 'working-set' expects a size between 4096 and the guest's RAM (${32 * MiB})`);
      await vm.qmp.execute('calc-dirty-rate', { 'calc-time': 5, mode: 'dirty-bitmap' });
      expect(await refusal(vm, {})).to.equal('GenericError: The dirty rate is still being measured: query-dirty-rate shows when it is done');
    });

    it('takes what it is given, and max-bandwidth and downtime-limit from the parameters', async () => {
      const vm = await startInstance(['--ram', '32M', '--param', `max-bandwidth=${16 * MiB}`, '--param', 'downtime-limit=100'], { name: 'predict-given' });
      const p = await vm.qmp.execute<ConvergencePrediction>(CONVERGENCE_COMMAND, { 'dirty-rate': 2, 'working-set': 8 * MiB });
      expect(p).to.include({
        'dirty-rate': 2, 'dirty-pages-rate': 512, 'dirty-rate-source': 'argument', bandwidth: 16 * MiB, 'bandwidth-source': 'max-bandwidth',
        'downtime-limit': 100, 'working-set': 8 * MiB, 'threshold-size': Math.round(1.6 * MiB), converges: true,
      });
      const q = await vm.qmp.execute<ConvergencePrediction>(CONVERGENCE_COMMAND, { 'dirty-rate': 2, bandwidth: MiB, 'downtime-limit': 1000 });
      expect(q).to.include({ bandwidth: MiB, 'bandwidth-source': 'argument', 'downtime-limit': 1000, 'working-set': 32 * MiB });
    });
  });

  describe('against real migrations', () => {
    /** 32 MiB of data, 16 MiB of it written at random; 16 MiB/s: a threshold of 4.8 MiB, and convergence below ~5800 writes/s. */
    const GUEST = ['--ram', '32M', '--smp', '1', '--param', `max-bandwidth=${16 * MiB}`];
    const WORKING_SET = 16 * MiB;

    async function predictAndMigrate(rate: number): Promise<{ prediction: ConvergencePrediction; source: TestInstance }> {
      const [source, destination] = await Promise.all([
        startInstance([...GUEST, '--fill', 'random', '--workload', 'random', '--dirty-rate', String(rate), '--working-set', String(WORKING_SET)], { name: `src-${rate}` }),
        startInstance([...GUEST, '--incoming', 'tcp:127.0.0.1:0', '--paused'], { name: `dst-${rate}` }),
      ]);
      await measure(source);
      const prediction = await source.qmp.execute<ConvergencePrediction>(CONVERGENCE_COMMAND, { 'working-set': WORKING_SET });
      expect(prediction['dirty-rate-source']).to.equal('calc-dirty-rate');
      await source.qmp.execute('migrate', { uri: await boundTcpUri(destination.qmp) });
      return { prediction, source };
    }

    it('a guest writing 500 pages/s: predicted to converge, and it does, in about the passes predicted', async () => {
      const { prediction, source } = await predictAndMigrate(500);
      expect(prediction.converges).to.equal(true);
      const done = await waitForMigration(source.qmp, ['completed', 'failed'], 60_000);
      expect(done.status).to.equal('completed');
      expect(done.ram!['dirty-sync-count']).to.be.within(prediction['dirty-sync-count']! - 1, prediction['dirty-sync-count']! + 3);
    });

    it('a guest writing 20000 pages/s: predicted not to converge, and it keeps passing over what stays dirty', async () => {
      const { prediction, source } = await predictAndMigrate(20_000);
      expect(prediction.converges).to.equal(false);
      expect(prediction.levers['postcopy-ram'].converges).to.equal(true);
      // Passes, not time: a migration predicted to converge here would have in a pass or two.
      const passes = 10;
      await waitForMigration(source.qmp, ['active'], 30_000);
      for (let i = 0; ; i++) {
        const info = await queryMigrate(source.qmp);
        expect(info.status).to.equal('active');
        if (info.ram!['dirty-sync-count']! >= passes) break;
        if (i > 1200) throw new Error(`only ${info.ram!['dirty-sync-count']} dirty syncs after a minute`);
        await sleep(50);
      }
      // During the migration its own figures speak: still no convergence.
      const live = await source.qmp.execute<ConvergencePrediction>(CONVERGENCE_COMMAND, { 'working-set': WORKING_SET });
      expect(live).to.include({ 'dirty-rate-source': 'migration', 'bandwidth-source': 'migration' });
      await source.qmp.execute('migrate_cancel');
      await waitForMigration(source.qmp, ['cancelled'], 30_000);
    });
  });

  describe('livemig migrate', () => {
    it('prints the prediction before it starts the migration, and --no-predict skips it', async () => {
      const start = (name: string, args: string[]) => startInstance(['--ram', '32M', '--smp', '1', ...args], { name });
      const [src, dst] = await Promise.all([start('cli-src', ['--workload', 'random', '--dirty-rate', '500', '--working-set', '8M']), start('cli-dst', ['--incoming', 'defer'])]);
      const args = ['--from', `unix:${src.socket}`, '--to', `unix:${dst.socket}`, '--uri', 'tcp:127.0.0.1:0', '--bandwidth', '64'];
      const run = await runCli('migrate', args, 60_000);
      expect(run.code, run.stderr).to.equal(0);
      const lines = run.stdout.split('\n');
      expect(lines[0]).to.match(/^prediction: precopy converges in \d+ passes, expected downtime \d+ ms \(dirty rate \d+ MB\/s, 64\.0 MiB\/s max-bandwidth, downtime-limit 300 ms\)$/);

      const [src2, dst2] = await Promise.all([start('cli-src2', []), start('cli-dst2', ['--incoming', 'defer'])]);
      const quiet = await runCli('migrate', ['--from', `unix:${src2.socket}`, '--to', `unix:${dst2.socket}`, '--uri', 'tcp:127.0.0.1:0', '--no-predict'], 60_000);
      expect(quiet.code, quiet.stderr).to.equal(0);
      expect(quiet.stdout).not.to.match(/prediction/);
    });

    it('for a guest that would not converge, names the levers that would make it', async () => {
      const start = (name: string, args: string[]) => startInstance(['--ram', '32M', '--smp', '1', ...args], { name });
      const [src, dst] = await Promise.all([
        start('busy-src', ['--fill', 'random', '--workload', 'random', '--dirty-rate', '20000', '--working-set', '16M']),
        start('busy-dst', ['--incoming', 'defer']),
      ]);
      // The migration never converges: --timeout 3 suspends the guest and it completes stopped.
      const args = ['--from', `unix:${src.socket}`, '--to', `unix:${dst.socket}`, '--uri', 'tcp:127.0.0.1:0', '--bandwidth', '16', '--timeout', '3'];
      const run = await runCli('migrate', args, 60_000);
      expect(run.code, run.stderr).to.equal(0);
      const [outlook, levers] = run.stdout.split('\n');
      expect(outlook).to.match(/^prediction: precopy does not converge: [\d.]+ MiB stay pending at each dirty sync, over the 4\.8 MiB threshold/);
      expect(levers).to.match(/^prediction: it would converge with auto-converge \(throttle reaching \d+%\); or dirty-limit with vcpu-dirty-limit ≤ \d+ MB\/s; .*or postcopy-ram/);
    });
  });
});
