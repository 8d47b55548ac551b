/**
 * `livemig run --metrics HOST:PORT`: the Prometheus endpoint scraped during
 * real migrations between real processes, its figures held against
 * query-migrate taken just before and just after each scrape; failures
 * counted by reason class; postcopy's requests and blocktime; the address
 * rules (loopback only, unless --metrics-remote), as one-line CLI errors.
 */
import { expect } from 'chai';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FAILURE_REASONS, failureReason } from '../actors/metrics/failure-reason.js';
import { isLoopbackMetrics, parseMetricsAddress } from '../actors/metrics/metrics-address.js';
import { MULTI_CHANNEL_REQUIRED } from '../protocols/transport/uri.js';
import { runCli } from './support/cli.js';
import { REPO_ROOT, startInstance, stopAllInstances, type TestInstance } from './support/instances.js';
import { EVENTS, UNLIMITED, boundTcpUri, exitCode, queryMigrate, sleep, unusedTcpUri, waitForMigration, type MigrateInfo } from './support/migration-driver.js';
import { POSTCOPY, abGuestArgs, destinationRequests, migrateAndSwitch, postcopyLink, waitForStatuses, type AbGuest } from './support/postcopy-pair.js';

const MiB = 1 << 20;
const METRICS = ['--metrics', '127.0.0.1:0'];

/** One sample of the exposition: its labels and value. */
interface Sample {
  labels: Record<string, string>;
  value: number;
}

/** A scrape, parsed: samples by metric name, and the HELP and TYPE lines. */
class Scrape {
  readonly samples = new Map<string, Sample[]>();
  readonly help = new Map<string, string>();
  readonly type = new Map<string, string>();

  constructor(readonly text: string) {
    for (const line of text.split('\n')) {
      if (line === '') continue;
      const meta = /^# (HELP|TYPE) (\S+) (.*)$/.exec(line);
      if (meta) {
        (meta[1] === 'HELP' ? this.help : this.type).set(meta[2]!, meta[3]!);
        continue;
      }
      const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
      if (!m) throw new Error(`not a sample line: ${line}`);
      const labels: Record<string, string> = {};
      for (const l of (m[2] ?? '').matchAll(/([a-zA-Z_]\w*)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]!] = l[2]!;
      const list = this.samples.get(m[1]!) ?? [];
      list.push({ labels, value: Number(m[3]) });
      this.samples.set(m[1]!, list);
    }
  }

  /** The value of the one sample of `name` whose labels include `labels`; throws if there is none or several. */
  value(name: string, labels: Record<string, string> = {}): number {
    const found = this.all(name, labels);
    if (found.length !== 1) throw new Error(`${found.length} samples of ${name}${JSON.stringify(labels)} in:\n${this.text}`);
    return found[0]!.value;
  }

  all(name: string, labels: Record<string, string> = {}): Sample[] {
    return (this.samples.get(name) ?? []).filter((s) => Object.entries(labels).every(([k, v]) => s.labels[k] === v));
  }

  /** The status whose state-set sample is 1 on `side`. */
  status(side: 'source' | 'destination'): string {
    const current = this.all('livemig_migration_status', { side }).filter((s) => s.value === 1);
    if (current.length !== 1) throw new Error(`${current.length} current statuses on the ${side} side`);
    return current[0]!.labels.status!;
  }
}

/** Where an instance's metrics endpoint listens, from its log line (it listens before the monitor opens). */
async function metricsUrl(instance: TestInstance): Promise<string> {
  const deadline = Date.now() + 5_000;
  for (;;) {
    for (const line of instance.stderr().split('\n')) {
      if (!line.includes('metrics endpoint listening')) continue;
      const { address } = JSON.parse(line) as { address: string };
      return `http://127.0.0.1:${address.slice(address.lastIndexOf(':') + 1)}/metrics`;
    }
    if (Date.now() > deadline) throw new Error(`no 'metrics endpoint listening' line in:\n${instance.stderr()}`);
    await sleep(20);
  }
}

async function scrape(url: string): Promise<Scrape> {
  const res = await fetch(url, { signal: AbortSignal.timeout(5_000) });
  expect(res.status, `GET ${url}`).to.equal(200);
  expect(res.headers.get('content-type')).to.equal('text/plain; version=0.0.4; charset=utf-8');
  return new Scrape(await res.text());
}

/** query-migrate, the destination's view with the livemig extension. */
async function incomingBytes(instance: TestInstance): Promise<number> {
  const info = await instance.qmp.execute<{ '__org.livemig_incoming'?: { bytes: number } }>('query-migrate');
  return info['__org.livemig_incoming']?.bytes ?? 0;
}

/** Every metric the README documents, with its type. */
const DOCUMENTED: Record<string, string> = {
  livemig_migration_status: 'gauge',
  kubevirt_vmi_migration_succeeded: 'gauge',
  kubevirt_vmi_migration_failed: 'gauge',
  kubevirt_vmi_migration_start_time_seconds: 'gauge',
  kubevirt_vmi_migration_end_time_seconds: 'gauge',
  kubevirt_vmi_migration_data_processed_bytes: 'gauge',
  kubevirt_vmi_migration_data_remaining_bytes: 'gauge',
  kubevirt_vmi_migration_data_bytes_total: 'counter',
  kubevirt_vmi_migration_memory_transfer_rate_bytes: 'gauge',
  kubevirt_vmi_migration_dirty_memory_rate_bytes: 'gauge',
  livemig_migration_dirty_syncs_total: 'counter',
  livemig_migration_downtime_seconds: 'gauge',
  livemig_migration_expected_downtime_seconds: 'gauge',
  livemig_migration_multifd_bytes_total: 'counter',
  livemig_migration_xbzrle_bytes_total: 'counter',
  livemig_migration_xbzrle_pages_total: 'counter',
  livemig_migration_xbzrle_cache_misses_total: 'counter',
  livemig_migration_received_bytes_total: 'counter',
  livemig_migration_postcopy_requests_total: 'counter',
  livemig_migration_postcopy_blocktime_seconds: 'gauge',
  livemig_migration_postcopy_vcpu_blocktime_seconds: 'gauge',
  livemig_migration_failures_total: 'counter',
};

describe('metrics endpoint (--metrics)', function () {
  this.timeout(120_000);
  afterEach(stopAllInstances);

  it('during a real precopy migration, every figure lies within the query-migrate answers taken around its scrape, and both sides end completed', async function () {
    this.timeout(90_000);
    // At 50 MB/s the ab guest's ~99 MiB range takes two seconds a pass and never converges: the migration runs until the limit is lifted.
    const [destination, source] = await Promise.all([
      startInstance(['--ram', '256M', ...METRICS, '--incoming', 'tcp:127.0.0.1:0'], { name: 'dst' }),
      startInstance(['--ram', '256M', '--workload', 'ab', '--param', 'max-bandwidth=50000000', ...METRICS], { name: 'src' }),
    ]);
    const [sourceUrl, destinationUrl] = await Promise.all([metricsUrl(source), metricsUrl(destination)]);

    const idle = await scrape(sourceUrl);
    for (const [name, type] of Object.entries(DOCUMENTED)) {
      expect(idle.type.get(name), `TYPE of ${name}`).to.equal(type);
      expect(idle.help.get(name), `HELP of ${name}`).to.be.a('string').and.not.equal('');
    }
    expect(idle.status('source')).to.equal('none');
    expect(idle.status('destination')).to.equal('none');
    expect(idle.value('kubevirt_vmi_migration_data_processed_bytes')).to.equal(0);
    expect((await scrape(destinationUrl)).status('destination')).to.equal('setup');

    const started = Date.now();
    await source.qmp.execute('migrate', { uri: await boundTcpUri(destination.qmp) });
    // The destination leaves setup once the stream arrives; only then are both sides active.
    await waitForMigration(destination.qmp, ['active'], 30_000);
    let last = 0;
    let samples = 0;
    while (samples < 5) {
      const before = await queryMigrate(source.qmp);
      const incomingBefore = await incomingBytes(destination);
      const [s, d] = [await scrape(sourceUrl), await scrape(destinationUrl)];
      const after = await queryMigrate(source.qmp);
      const incomingAfter = await incomingBytes(destination);
      if (before.status !== 'active' || after.status !== 'active') {
        expect(after.status, after['error-desc']).to.be.oneOf(['setup', 'active']);
        await sleep(50);
        continue;
      }
      const what = `sample ${samples}`;
      expect(s.status('source'), what).to.equal('active');
      expect(d.status('destination'), what).to.equal('active');
      const processed = s.value('kubevirt_vmi_migration_data_processed_bytes');
      expect(processed, `${what}: processed bytes within query-migrate's transferred before and after`).to.be.within(before.ram!.transferred!, after.ram!.transferred!);
      expect(processed, `${what}: processed bytes never go back`).to.be.at.least(last);
      last = processed;
      expect(s.value('kubevirt_vmi_migration_data_bytes_total'), `${what}: total`).to.equal(before.ram!.total).and.equal(after.ram!.total);
      expect(s.value('kubevirt_vmi_migration_data_remaining_bytes'), `${what}: remaining`).to.be.within(0, before.ram!.total!);
      expect(s.value('livemig_migration_dirty_syncs_total'), `${what}: dirty syncs`).to.be.within(before.ram!['dirty-sync-count']!, after.ram!['dirty-sync-count']!);
      expect(d.value('livemig_migration_received_bytes_total'), `${what}: the destination's received bytes`).to.be.within(incomingBefore, incomingAfter);
      // The rate limit holds the transfer to 50 MB/s; query-migrate's mbps is megabits.
      const rate = s.value('kubevirt_vmi_migration_memory_transfer_rate_bytes');
      expect(rate, `${what}: transfer rate`).to.be.within(0, 4 * 50_000_000);
      expect(s.value('kubevirt_vmi_migration_dirty_memory_rate_bytes'), `${what}: dirty rate`).to.be.at.least(0);
      expect(s.value('livemig_migration_downtime_seconds'), `${what}: no downtime yet`).to.equal(0);
      expect(s.value('kubevirt_vmi_migration_start_time_seconds', { side: 'source' }) * 1000, `${what}: start time`).to.be.within(started - 1_000, Date.now());
      expect(s.all('kubevirt_vmi_migration_end_time_seconds', { side: 'source' }), `${what}: no end time yet`).to.deep.equal([]);
      samples++;
      await sleep(200);
    }
    const running = await queryMigrate(source.qmp);
    expect(running.status, 'still running at 50 MB/s').to.equal('active');
    const syncs = (await scrape(sourceUrl)).value('livemig_migration_dirty_syncs_total');

    // Lift the limit: the next pass converges.
    await source.qmp.execute('migrate-set-parameters', { 'max-bandwidth': 100_000_000_000 });
    const done = await waitForMigration(source.qmp, ['completed', 'failed'], 60_000);
    expect(done.status, done['error-desc']).to.equal('completed');
    const arrived = await waitForMigration(destination.qmp, ['completed', 'failed'], 30_000);
    expect(arrived.status, arrived['error-desc']).to.equal('completed');
    const [s, d] = [await scrape(sourceUrl), await scrape(destinationUrl)];
    const final = await queryMigrate(source.qmp);
    expect(s.status('source')).to.equal('completed');
    expect(d.status('destination')).to.equal('completed');
    expect(s.value('kubevirt_vmi_migration_succeeded', { side: 'source' })).to.equal(1);
    expect(d.value('kubevirt_vmi_migration_succeeded', { side: 'destination' })).to.equal(1);
    expect(s.value('kubevirt_vmi_migration_failed', { side: 'source' })).to.equal(0);
    expect(s.value('kubevirt_vmi_migration_data_processed_bytes'), 'processed = the final transferred').to.equal(final.ram!.transferred);
    expect(s.value('kubevirt_vmi_migration_data_processed_bytes')).to.be.at.least(last);
    expect(s.value('kubevirt_vmi_migration_data_bytes_total')).to.equal(final.ram!.total);
    expect(s.value('kubevirt_vmi_migration_data_remaining_bytes'), 'nothing remains').to.equal(0);
    expect(s.value('kubevirt_vmi_migration_dirty_memory_rate_bytes'), 'no dirty rate once completed (query-migrate fills none)').to.equal(0);
    expect(s.value('kubevirt_vmi_migration_memory_transfer_rate_bytes'), "the completed migration's mbps").to.equal(final.ram!.mbps! * 125_000);
    expect(s.value('livemig_migration_dirty_syncs_total')).to.equal(final.ram!['dirty-sync-count']).and.be.at.least(syncs);
    expect(s.value('livemig_migration_downtime_seconds'), 'downtime').to.equal(final.downtime! / 1000).and.be.above(0);
    expect(d.value('livemig_migration_received_bytes_total')).to.equal(await incomingBytes(destination));
    const start = s.value('kubevirt_vmi_migration_start_time_seconds', { side: 'source' });
    const end = s.value('kubevirt_vmi_migration_end_time_seconds', { side: 'source' });
    expect((end - start) * 1000, 'end - start = total-time').to.be.closeTo(final['total-time']!, 2);
    expect(d.value('kubevirt_vmi_migration_end_time_seconds', { side: 'destination' })).to.be.at.least(d.value('kubevirt_vmi_migration_start_time_seconds', { side: 'destination' }));
    for (const scraped of [s, d]) {
      for (const sample of scraped.all('livemig_migration_failures_total')) expect(sample.value, JSON.stringify(sample.labels)).to.equal(0);
    }
  });

  it('counts each failed migration once, under the class of its error-desc: a destination that is not there, then one that refuses the guest', async () => {
    const source = await startInstance(['--ram', '32M', ...UNLIMITED, ...EVENTS, ...METRICS], { name: 'src' });
    const url = await metricsUrl(source);
    const before = await scrape(url);
    expect(before.all('livemig_migration_failures_total').map((s) => `${s.labels.side}/${s.labels.reason}`), 'every class starts at 0')
      .to.have.members(['source', 'destination'].flatMap((side) => FAILURE_REASONS.map((r) => `${side}/${r}`)));

    await source.qmp.execute('migrate', { uri: await unusedTcpUri() });
    const refused = await waitForMigration(source.qmp, ['failed', 'completed'], 30_000);
    expect(refused.status).to.equal('failed');
    expect(failureReason(refused['error-desc']), refused['error-desc']).to.equal('connect');
    let s = await scrape(url);
    expect(s.status('source')).to.equal('failed');
    expect(s.value('kubevirt_vmi_migration_failed', { side: 'source' })).to.equal(1);
    expect(s.value('livemig_migration_failures_total', { side: 'source', reason: 'connect' })).to.equal(1);

    // A destination with half the RAM refuses the stream and says why on the return path.
    const destination = await startInstance(['--ram', '16M', '--incoming', 'tcp:127.0.0.1:0'], { name: 'dst' });
    await source.qmp.execute('migrate', { uri: await boundTcpUri(destination.qmp) });
    const mismatch = await waitForMigration(source.qmp, ['failed', 'completed'], 30_000);
    expect(mismatch.status).to.equal('failed');
    expect(mismatch['error-desc']).to.match(/^Sibling indicated error .*Length mismatch/);
    expect(await exitCode(destination)).to.equal(1);
    s = await scrape(url);
    expect(s.value('livemig_migration_failures_total', { side: 'source', reason: 'connect' })).to.equal(1);
    expect(s.value('livemig_migration_failures_total', { side: 'source', reason: 'peer' })).to.equal(1);
    const total = s.all('livemig_migration_failures_total').reduce((n, x) => n + x.value, 0);
    expect(total, 'two failures, counted once each').to.equal(2);
    // The label is a class, never the text.
    expect(s.text).not.to.include('Length mismatch');
  });

  it('postcopy: page requests on both sides and the destination blocktime are those of query-migrate', async function () {
    this.timeout(120_000);
    const ab: AbGuest = { start: 1 * MiB, end: 33 * MiB, smp: 2 };
    const [destination, source] = await Promise.all([
      startInstance([...abGuestArgs('64M', ab, false), ...POSTCOPY, '--cap', 'postcopy-blocktime', ...METRICS, '--incoming', 'tcp:127.0.0.1:0'], { name: 'dst' }),
      startInstance([...abGuestArgs('64M', ab), ...POSTCOPY, ...postcopyLink(64_000_000, 32_000_000), ...METRICS], { name: 'src' }),
    ]);
    const [sourceUrl, destinationUrl] = await Promise.all([metricsUrl(source), metricsUrl(destination)]);
    await migrateAndSwitch(source, destination, await boundTcpUri(destination.qmp), ab);
    const during = await scrape(sourceUrl);
    expect(during.status('source')).to.be.oneOf(['postcopy-active', 'completed']);
    const [sourceDone, destinationDone] = await Promise.all([
      waitForStatuses(source.qmp, ['completed', 'failed'], 60_000),
      waitForStatuses(destination.qmp, ['completed', 'failed'], 60_000),
    ]);
    expect(sourceDone.status, sourceDone['error-desc']).to.equal('completed');
    expect(destinationDone.status, String(destinationDone['error-desc'])).to.equal('completed');
    const [s, d] = [await scrape(sourceUrl), await scrape(destinationUrl)];
    const requests = s.value('livemig_migration_postcopy_requests_total', { side: 'source' });
    expect(requests, 'requests served').to.equal((sourceDone as MigrateInfo).ram!['postcopy-requests']).and.be.above(0);
    expect(d.value('livemig_migration_postcopy_requests_total', { side: 'destination' }), 'requests sent').to.equal(destinationRequests(destinationDone));
    expect(d.value('livemig_migration_postcopy_blocktime_seconds')).to.equal((destinationDone['postcopy-blocktime'] as number) / 1000);
    const perVcpu = d.all('livemig_migration_postcopy_vcpu_blocktime_seconds').sort((a, b) => Number(a.labels.vcpu) - Number(b.labels.vcpu));
    expect(perVcpu.map((x) => x.value)).to.deep.equal((destinationDone['postcopy-vcpu-blocktime'] as number[]).map((ms) => ms / 1000));
    expect(s.value('livemig_migration_downtime_seconds')).to.equal(sourceDone.downtime! / 1000);
  });

  it('the README documents every metric the endpoint serves, and no other', async () => {
    const instance = await startInstance(['--ram', '16M', ...METRICS], { name: 'vm' });
    const served = [...(await scrape(await metricsUrl(instance))).type.keys()].sort();
    expect(served).to.deep.equal(Object.keys(DOCUMENTED).sort());
    const readme = readFileSync(join(REPO_ROOT, 'README.md'), 'utf8');
    const section = readme.slice(readme.indexOf('### Metrics'), readme.indexOf('### Migration capabilities'));
    const documented = [...section.matchAll(/^\| `([a-z_]+)(?:\{[a-z,]+\})?` \| (gauge|counter) \|/gm)].map((m) => [m[1], m[2]]);
    expect(Object.fromEntries(documented)).to.deep.equal(DOCUMENTED);
  });

  it('answers only GET/HEAD /metrics, and closes with the instance', async () => {
    const instance = await startInstance(['--ram', '16M', ...METRICS], { name: 'vm' });
    const url = await metricsUrl(instance);
    expect((await fetch(url.replace('/metrics', '/'))).status).to.equal(404);
    expect((await fetch(url, { method: 'POST' })).status).to.equal(405);
    const head = await fetch(url, { method: 'HEAD' });
    expect(head.status).to.equal(200);
    expect(await head.text()).to.equal('');
    await instance.qmp.execute('quit').catch(() => {});
    expect(await exitCode(instance)).to.equal(0);
    const after = await fetch(url, { signal: AbortSignal.timeout(5_000) }).then(() => 'answered', (err: Error & { cause?: { code?: string } }) => err.cause?.code ?? err.message);
    expect(after).to.equal('ECONNREFUSED');
  });

  it('listens beyond loopback with --metrics-remote, and says so in the log', async () => {
    const instance = await startInstance(['--ram', '16M', '--metrics', '0.0.0.0:0', '--metrics-remote'], { name: 'vm' });
    const url = await metricsUrl(instance);
    expect((await scrape(url)).status('source')).to.equal('none');
    const warning = instance.stderr().split('\n').find((l) => l.includes('metrics endpoint reachable beyond this host'));
    expect(warning, instance.stderr()).to.be.a('string');
    expect((JSON.parse(warning!) as { level: number }).level, 'logged as a warning').to.equal(40);
  });
});

describe('metrics: addresses and failure classes', () => {
  it('parses HOST:PORT and tells loopback from the rest', () => {
    expect(parseMetricsAddress('127.0.0.1:9464')).to.deep.equal({ host: '127.0.0.1', port: 9464 });
    expect(parseMetricsAddress('[::1]:0')).to.deep.equal({ host: '::1', port: 0 });
    expect(parseMetricsAddress(':9464')).to.deep.equal({ host: '', port: 9464 });
    for (const loopback of ['127.0.0.1:1', '127.9.8.7:1', '[::1]:1', 'localhost:1']) expect(isLoopbackMetrics(parseMetricsAddress(loopback)), loopback).to.equal(true);
    for (const remote of ['0.0.0.0:1', ':1', '[::]:1', '10.0.0.1:1', 'example.org:1']) expect(isLoopbackMetrics(parseMetricsAddress(remote)), remote).to.equal(false);
    for (const bad of ['9464', 'tcp:127.0.0.1:9464', '127.0.0.1:65536', '127.0.0.1:', '::1:9464', 'http://127.0.0.1:9464/metrics']) {
      expect(() => parseMetricsAddress(bad), bad).to.throw(/expected HOST:PORT/);
    }
  });

  /** Error texts livemig produces (source and destination side) → their class. */
  const TEXTS: [string, string][] = [
    ["Failed to connect to '127.0.0.1:4444': connect ECONNREFUSED 127.0.0.1:4444", 'connect'],
    ["Failed to connect to '/tmp/x/nobody.sock': connect ENOENT /tmp/x/nobody.sock", 'connect'],
    ["Failed to connect to '10.0.0.1:4444': timed out after 10000 ms", 'connect'],
    ['Sibling indicated error 1: Length mismatch: pc.ram: 0x2000000 in != 0x4000000: Invalid argument', 'peer'],
    ['The migration channel failed: read ECONNRESET', 'channel'],
    ['Unable to write to the migration channel: write EPIPE', 'channel'],
    ['the destination closed the return path without SHUT', 'channel'],
    ['The migration channel stalled: nothing could be written to it for 30 s', 'timeout'],
    ['load of migration failed: the migration connection sent no channel hello within 10 s: no migration source speaks on it', 'timeout'],
    ['multifd channel(s) 2, 3 did not connect within 10000 ms', 'timeout'],
    ["No TLS credentials with id 'nope'", 'tls'],
    ['load of migration failed: Length mismatch: pc.ram: 0x2000000 in != 0x4000000: Invalid argument', 'config'],
    ['Capability multifd is off, but received capability is on', 'config'],
    [MULTI_CHANNEL_REQUIRED, 'config'],
    ['load of migration failed: Unsupported migration stream version 99 (this build reads version 1)', 'stream'],
    ['load of migration failed: Migration stream truncated in a frame (3 of 8 bytes)', 'stream'],
    ["Received return-path message 'pong', which this migration never asked for", 'stream'],
    ['something nobody foresaw', 'other'],
  ];
  for (const [text, reason] of TEXTS) {
    it(`classes "${text}" as ${reason}`, () => {
      expect(failureReason(text)).to.equal(reason);
      expect(FAILURE_REASONS).to.include(reason);
    });
  }
});

describe('livemig run --metrics: command line', function () {
  this.timeout(30_000);
  let dir: string;
  beforeEach(() => (dir = mkdtempSync(join(tmpdir(), 'livemig-metrics-cli-'))));
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  const run = (args: string[], timeoutMs?: number) => runCli('run', args, timeoutMs);

  it('--help explains --metrics and --metrics-remote', async () => {
    const { code, stdout } = await run(['--help']);
    expect(code).to.equal(0);
    expect(stdout).to.match(/--metrics <HOST:PORT>/).and.match(/--metrics-remote/);
  });

  it('an address in use stops the start with one line naming --metrics (exit code 1, as a busy --qmp address), leaving no socket file', async () => {
    const held = createServer();
    await new Promise<void>((resolve) => held.listen(0, '127.0.0.1', resolve));
    const { port } = held.address() as AddressInfo;
    try {
      const socket = join(dir, 'vm.qmp');
      const { code, stderr } = await run(['--ram', '16M', '--qmp', `unix:${socket}`, '--metrics', `127.0.0.1:${port}`]);
      expect(code, stderr).to.equal(1);
      expect(stderr).to.equal(`livemig run: --metrics 127.0.0.1:${port}: listen EADDRINUSE: address already in use 127.0.0.1:${port}\n`);
      expect(existsSync(socket)).to.equal(false);
    } finally {
      held.close();
    }
  });

  const MISTAKES: [what: string, args: string[], says: string][] = [
    ['an address that is not HOST:PORT', ['--metrics', 'nonsense'], "--metrics 'nonsense': expected HOST:PORT"],
    ['a port out of range', ['--metrics', '127.0.0.1:70000'], "--metrics '127.0.0.1:70000': expected HOST:PORT"],
    ['a URL', ['--metrics', 'http://127.0.0.1:9464/metrics'], 'expected HOST:PORT'],
    ['every interface, not asked for knowingly', ['--metrics', '0.0.0.0:0'], '--metrics 0.0.0.0:0 would let anyone who reaches this host read the migration figures'],
    ['an empty host (every interface)', ['--metrics', ':0'], '--metrics :0 would let anyone'],
    ['an address beyond loopback', ['--metrics', '192.0.2.1:9464'], 'or pass --metrics-remote to accept that'],
  ];
  for (const [what, args, says] of MISTAKES) {
    it(`refuses ${what} with one line on stderr and exit code 2: ${args.join(' ')}`, async () => {
      const { code, stdout, stderr } = await run(['--ram', '16M', '--qmp', `unix:${join(dir, 'vm.qmp')}`, ...args]);
      expect(code, stderr).to.equal(2);
      expect(stdout).to.equal('');
      expect(stderr).to.match(/^livemig run: [^\n]*\n$/);
      expect(stderr).to.include(says);
    });
  }
});
