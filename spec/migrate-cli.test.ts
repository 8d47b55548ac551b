/**
 * `livemig migrate`'s virsh-like options and `livemig info`, each run as a
 * child process against real instances: every option drives a real
 * migration (postcopy after the first pass, a timeout that suspends or
 * switches to postcopy, multifd with N channels and zstd, a bandwidth, TLS,
 * not live and --suspend), `info` reads a running migration as query-migrate
 * shows it, and options that need what livemig has not built are refused
 * with exit status 2, naming what is missing.
 */
import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CAPABILITY_SUPPORT, type MigrationCapability } from '../actors/options/capabilities.js';
import { virshLikePlan } from '../tools/migrate-options.js';
import { livemigProgram } from '../tools/program-bundle.js';
import { makeTestPki, type TestPki } from '../tools/pki.js';
import { LIVEMIG, REPO_ROOT, recordEvents, startInstance, stopAllInstances, type TestInstance } from './support/instances.js';
import { abCheckStopped, boundTcpUri, queryMigrate, runState, sleep, waitForMigration, type MigrateInfo } from './support/migration-driver.js';

const MiB = 1 << 20;
const GUEST = ['--ram', '64M', '--smp', '1'];
/** A guest that keeps [1 MiB, 24 MiB) dirty: at 16 MiB/s its precopy never converges. */
const BUSY = [...GUEST, '--workload', 'ab', '--ab-start', '1M', '--ab-end', '24M'];
const SLOW = ['--bandwidth', '16'];

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Starts `livemig ARGS` (killed after `timeoutMs`): from source under tsx, or the bundled program (what `livemig run` uses). */
async function startLivemig(args: string[], { timeoutMs = 60_000, bundled = false } = {}): Promise<{ done: Promise<Run>; stdout(): string }> {
  const program = bundled ? [await livemigProgram()] : ['--import', 'tsx', LIVEMIG];
  const child = spawn(process.execPath, [...program, ...args], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'], timeout: timeoutMs, killSignal: 'SIGKILL' });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const done = new Promise<Run>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, stdout, stderr }));
  });
  return { done, stdout: () => stdout };
}

/** Runs `livemig ARGS` to its end. */
async function livemig(args: string[], options: { timeoutMs?: number; bundled?: boolean } = {}): Promise<Run> {
  return (await startLivemig(args, options)).done;
}

interface Pair {
  source: TestInstance;
  destination: TestInstance;
}

async function startPair(source: string[], destination: string[] = GUEST): Promise<Pair> {
  const [dst, src] = await Promise.all([
    startInstance([...destination, '--incoming', 'defer'], { name: 'dst' }),
    startInstance(source, { name: 'src' }),
  ]);
  return { source: src, destination: dst };
}

/** `livemig migrate --json` between the pair, over loopback tcp (port 0: the destination's choice). */
async function migrate({ source, destination }: Pair, options: string[]): Promise<{ run: Run; summary: Summary }> {
  const run = await livemig(['migrate', '--from', `unix:${source.socket}`, '--to', `unix:${destination.socket}`, '--uri', 'tcp:127.0.0.1:0', '--json', ...options]);
  let summary: Summary;
  try {
    summary = JSON.parse(run.stdout) as Summary;
  } catch {
    throw new Error(`migrate --json printed no JSON (exit ${run.code}):\n${run.stdout}\n${run.stderr}`);
  }
  return { run, summary };
}

interface Summary {
  status: string;
  uri: string;
  source: MigrateInfo;
  destination: MigrateInfo;
  'run-states': { source?: string; destination?: string };
  actions: { action: string; reason: string; 'at-ms': number; error?: string }[];
  digests?: { source: string; destination: string };
}

async function parameters(instance: TestInstance): Promise<Record<string, unknown>> {
  return instance.qmp.execute<Record<string, unknown>>('query-migrate-parameters');
}

async function capability(instance: TestInstance, name: string): Promise<boolean> {
  const caps = await instance.qmp.execute<{ capability: string; state: boolean }[]>('query-migrate-capabilities');
  return caps.find((c) => c.capability === name)!.state;
}

/** Every page of the ab range arrived, none stale. */
async function expectAbIntact(instance: TestInstance): Promise<void> {
  const report = await abCheckStopped(instance, 1 * MiB, 24 * MiB);
  expect(report.touched, 'the ab range was never written').to.equal(true);
  expect(report.badPages).to.deep.equal([]);
}

describe('livemig migrate (virsh-like options) and livemig info, as child processes', function () {
  this.timeout(90_000);
  afterEach(stopAllInstances);

  it('refuses options that need what livemig has not built, naming it, and combinations libvirt refuses: exit 2, before touching a monitor', async () => {
    // Refused while their capability is (CAPABILITY_SUPPORT); once built, they migrate like the rest.
    const notBuilt = (capability: MigrationCapability, ...refused: [string[], RegExp][]) => (CAPABILITY_SUPPORT[capability] === 'refused' ? refused : []);
    const cases: [string[], RegExp][] = [
      ...notBuilt('auto-converge', [['--auto-converge'], /--auto-converge is not supported by livemig yet: it needs the auto-converge capability/]),
      ...notBuilt('xbzrle',
        [['--compressed'], /--compressed without --comp-methods is xbzrle, which is not supported by livemig yet: it needs the xbzrle capability/],
        [['--compressed', '--comp-methods', 'xbzrle'], /--comp-methods xbzrle is not supported by livemig yet: it needs the xbzrle capability/]),
      ...notBuilt('compress', [['--compressed', '--comp-methods', 'mt'], /--comp-methods mt is not supported by livemig yet: it needs the compress capability/]),
      [['--compressed', '--comp-methods', 'zstd'], /--comp-methods zstd needs --parallel/],
      [['--parallel', '--compressed', '--comp-methods', 'xbzrle'], /--comp-methods xbzrle (is not supported by livemig yet|does not go with --parallel)/],
      [['--parallel-connections', '4'], /--parallel-connections needs --parallel/],
      [['--postcopy-after-precopy'], /--postcopy-after-precopy needs --postcopy/],
      [['--postcopy', '--timeout-postcopy'], /--timeout-postcopy needs --timeout/],
      [['--no-live', '--timeout', '5'], /--timeout needs a live migration/],
    ];
    // Monitors that do not exist: a refusal must come before any connection.
    const runs = await Promise.all(cases.map(([options]) => livemig(['migrate', '--from', 'unix:/nonexistent/src.qmp', '--to', 'unix:/nonexistent/dst.qmp', '--uri', 'tcp:127.0.0.1:0', ...options], { bundled: true })));
    runs.forEach((run, i) => {
      const [options, says] = cases[i]!;
      expect({ options, code: run.code, stdout: run.stdout }).to.deep.equal({ options, code: 2, stdout: '' });
      expect(run.stderr.trimEnd().split('\n'), options.join(' ')).to.have.length(1);
      expect(run.stderr, options.join(' ')).to.match(/^livemig migrate: /).and.match(says);
    });
  });

  it('--postcopy --postcopy-after-precopy: a busy guest that precopy cannot move at --bandwidth 16 switches to postcopy after its first pass', async () => {
    const pair = await startPair(BUSY);
    const events = recordEvents(pair.source.qmp);
    const { run, summary } = await migrate(pair, ['--postcopy', '--postcopy-after-precopy', ...SLOW]);
    expect(run.code, run.stderr).to.equal(0);
    expect(summary.status).to.equal('completed');
    expect(summary.actions.map((a) => [a.action, a.reason, a.error])).to.deep.equal([['migrate-start-postcopy', 'postcopy-after-precopy', undefined]]);
    expect(events).to.include('postcopy-active');
    expect(summary.source.ram!['postcopy-bytes']).to.be.greaterThan(0);
    expect(summary.source.ram!['dirty-sync-count']).to.be.at.least(2);
    expect(await capability(pair.destination, 'postcopy-ram')).to.equal(true);
    expect((await parameters(pair.source))['max-bandwidth']).to.equal(16 * MiB);
    expect(summary['run-states']).to.deep.equal({ source: 'postmigrate', destination: 'running' });
    await expectAbIntact(pair.destination);
  });

  it('--timeout (suspend): the source guest is stopped at the timeout, the migration completes, and runs on the destination', async () => {
    const pair = await startPair(BUSY);
    const stops = recordEvents(pair.source.qmp, ['STOP']);
    const resumes = recordEvents(pair.destination.qmp, ['RESUME']);
    const { run, summary } = await migrate(pair, ['--timeout', '2', ...SLOW]);
    expect(run.code, run.stderr).to.equal(0);
    expect(summary.status).to.equal('completed');
    expect(summary.actions.map((a) => [a.action, a.reason, a.error])).to.deep.equal([['stop-source', 'timeout', undefined], ['cont-destination', 'resume', undefined]]);
    expect(summary.actions[0]!['at-ms']).to.be.at.least(2000);
    expect(stops, 'the source guest was stopped').to.have.length(1);
    expect(resumes, 'the destination guest was resumed').to.have.length(1);
    expect(summary['run-states']).to.deep.equal({ source: 'postmigrate', destination: 'running' });
    await expectAbIntact(pair.destination);
  });

  it('--compressed (libvirt: xbzrle when no method is named), as --comp-methods xbzrle: the capability on both sides, its page cache in query-migrate', async () => {
    expect(virshLikePlan({ compressed: true, compMethods: 'xbzrle' }).caps).to.deep.equal([{ capability: 'xbzrle', state: true }]);
    const pair = await startPair(BUSY);
    const { run, summary } = await migrate(pair, ['--compressed', '--timeout', '2', ...SLOW]);
    expect(run.code, run.stderr).to.equal(0);
    expect(summary.status).to.equal('completed');
    for (const side of [pair.source, pair.destination]) expect(await capability(side, 'xbzrle'), side.name).to.equal(true);
    const cache = (summary.source as MigrateInfo & { 'xbzrle-cache'?: object })['xbzrle-cache'];
    expect(cache, 'query-migrate shows the page cache').to.not.equal(undefined);
    await expectAbIntact(pair.destination);
  });

  it('livemig info: --json matches query-migrate during a migration, on both sides; --watch redraws until it ends', async () => {
    const { source, destination } = await startPair(BUSY);
    await destination.qmp.execute('migrate-incoming', { uri: 'tcp:127.0.0.1:0' });
    await source.qmp.execute('migrate-set-parameters', { 'max-bandwidth': 16 * MiB });
    // A precopy that cannot converge: it runs until the test stops the guest.
    await source.qmp.execute('migrate', { uri: await boundTcpUri(destination.qmp) });
    await waitForMigration(source.qmp, ['active'], 10_000);
    const watch = await startLivemig(['info', '--from', `unix:${source.socket}`, '--watch']);
    const before = await queryMigrate(source.qmp);
    const [info, incoming] = await Promise.all([source, destination].map((side) => livemig(['info', '--from', `unix:${side.socket}`, '--json'])));
    const after = await queryMigrate(source.qmp);

    expect(info!.code, info!.stderr).to.equal(0);
    const job = JSON.parse(info!.stdout) as Record<string, number | string>;
    expect(job).to.include({ type: 'unbounded', operation: 'outgoing-migration', status: 'active' });
    // Read between two query-migrates: each moving figure between theirs, the fixed ones equal.
    const between = (value: unknown, low: number, high: number, what: string) => expect(value, what).to.be.within(low, high);
    expect(job).to.include({ memory_total: before.ram!.total, data_total: before.ram!.total, memory_page_size: before.ram!['page-size'], setup_time: before['setup-time'] });
    between(job.memory_processed, before.ram!.transferred!, after.ram!.transferred!, 'memory_processed');
    expect(job.data_processed).to.equal(job.memory_processed);
    // Remaining falls through a pass and rises at each dirty sync: only bounded.
    between(job.memory_remaining, 0, before.ram!.total!, 'memory_remaining');
    expect(job.data_remaining).to.equal(job.memory_remaining);
    between(job.memory_iteration, before.ram!['dirty-sync-count']!, after.ram!['dirty-sync-count']!, 'memory_iteration');
    between(job.memory_normal, before.ram!.normal!, after.ram!.normal!, 'memory_normal');
    between(job.memory_constant, before.ram!.duplicate!, after.ram!.duplicate!, 'memory_constant');
    between(job.time_elapsed, before['total-time']!, after['total-time']!, 'time_elapsed');
    expect(job).to.have.property('downtime').that.is.a('number');
    expect(job).to.have.property('memory_bps').that.is.a('number');

    expect(incoming!.code, incoming!.stderr).to.equal(0);
    expect(JSON.parse(incoming!.stdout)).to.include({ type: 'unbounded', operation: 'incoming-migration', status: 'active' });

    // Two screens drawn while it ran, then the guest stops, precopy converges, and --watch ends with it.
    for (const deadline = Date.now() + 20_000; watch.stdout().split('\n\n').length < 2; await sleep(100)) {
      if (Date.now() > deadline) throw new Error(`info --watch drew no second screen:\n${watch.stdout()}`);
    }
    await source.qmp.execute('stop');
    const watched = await watch.done;
    expect(watched.code, watched.stderr).to.equal(0);
    const screens = watched.stdout.trimEnd().split('\n\n');
    expect(screens[0]).to.match(/^Job type: {9}Unbounded\nOperation: {8}Outgoing migration\nStatus: {11}active\n/);
    expect(screens[0]).to.match(/^Memory bandwidth: \d+\.\d{3} (B|KiB|MiB)\/s$/m).and.match(/^Expected downtime: \d+ +ms$/m);
    for (const label of ['Time elapsed', 'Data processed', 'Data remaining', 'Data total', 'Memory processed', 'Memory remaining', 'Memory total', 'Dirty rate', 'Page size', 'Iteration', 'Constant pages', 'Normal pages', 'Normal data', 'Setup time']) {
      expect(screens[0]).to.match(new RegExp(`^${label}: +\\S`, 'm'));
    }
    expect(screens.at(-1)).to.match(/^Job type: {9}Completed$/m).and.match(/^Data remaining: {3}0\.000 B$/m).and.match(/^Total downtime: +\d+ +ms$/m);
  });

  it('--postcopy --timeout --timeout-postcopy switches to postcopy at the timeout', async () => {
    const pair = await startPair(BUSY);
    const { run, summary } = await migrate(pair, ['--postcopy', '--timeout', '2', '--timeout-postcopy', ...SLOW]);
    expect(run.code, run.stderr).to.equal(0);
    expect(summary.status).to.equal('completed');
    expect(summary.actions.map((a) => [a.action, a.reason, a.error])).to.deep.equal([['migrate-start-postcopy', 'timeout', undefined]]);
    expect(summary.actions[0]!['at-ms']).to.be.at.least(2000);
    expect(summary.source.ram!['postcopy-bytes']).to.be.greaterThan(0);
    expect(summary['run-states'].destination).to.equal('running');
    await expectAbIntact(pair.destination);
  });

  it('--parallel --parallel-connections 3 --compressed --comp-methods zstd --bandwidth: multifd over 3 channels with zstd, max-bandwidth on the source; --param still applies', async () => {
    const pair = await startPair([...GUEST, '--fill', 'random']);
    const { run, summary } = await migrate(pair, [
      '--parallel', '--parallel-connections', '3', '--compressed', '--comp-methods', 'zstd', '--comp-zstd-level', '2',
      '--bandwidth', '1000', '--abort-on-error', '--param', 'downtime-limit=400',
    ]);
    expect(run.code, run.stderr).to.equal(0);
    expect(summary.status).to.equal('completed');
    expect(summary.source.ram!['multifd-bytes']).to.be.greaterThan(0);
    expect(summary.digests!.destination).to.equal(summary.digests!.source);
    for (const side of [pair.source, pair.destination]) {
      expect(await capability(side, 'multifd'), side.name).to.equal(true);
      expect(await parameters(side), side.name).to.include({ 'multifd-channels': 3, 'multifd-compression': 'zstd', 'multifd-zstd-level': 2, 'downtime-limit': 400 });
    }
    expect((await parameters(pair.source))['max-bandwidth']).to.equal(1000 * MiB);
  });

  describe('with TLS credentials', () => {
    let pkiDir: string;
    let pki: TestPki;
    before(async () => {
      pkiDir = mkdtempSync(join(tmpdir(), 'livemig-cli-pki-'));
      pki = await makeTestPki(pkiDir);
    });
    after(() => rmSync(pkiDir, { recursive: true, force: true }));

    it('--tls uses the objects the instances were started with; --no-live stops the guest first and --suspend leaves it paused on the destination', async () => {
      const pair = await startPair(
        [...BUSY, '--object', `tls-creds-x509,id=tls0,dir=${pki.client},endpoint=client`],
        [...GUEST, '--object', `tls-creds-x509,id=tls0,dir=${pki.server},endpoint=server`],
      );
      const { run, summary } = await migrate(pair, ['--tls', '--no-live', '--suspend']);
      expect(run.code, run.stderr).to.equal(0);
      expect(summary.status).to.equal('completed');
      for (const side of [pair.source, pair.destination]) expect((await parameters(side))['tls-creds'], side.name).to.equal('tls0');
      expect(summary.actions.map((a) => [a.action, a.reason])).to.deep.equal([['stop-destination', 'suspend'], ['stop-source', 'no-live']]);
      expect(summary['run-states']).to.deep.equal({ source: 'postmigrate', destination: 'paused' });
      await expectAbIntact(pair.destination);
    });

    it('--tls-creds naming objects an instance lacks fails with the reason and what to do (exit 1)', async () => {
      const pair = await startPair(GUEST);
      const { run, summary } = await migrate(pair, ['--tls', '--tls-creds', 'nosuch']);
      expect(run.code).to.equal(1);
      expect(summary.status).to.equal('error');
      expect(run.stderr).to.match(/^livemig migrate: the destination: migrate-incoming: No TLS credentials with id 'nosuch' \(--tls uses credentials/);
      expect(await runState(pair.source.qmp)).to.equal('running');
    });
  });
});
