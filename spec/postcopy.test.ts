/**
 * Postcopy between real `livemig run` processes: a running guest that
 * precopy cannot move (it dirties memory faster than max-bandwidth lets the
 * pages go) switches to postcopy on `migrate-start-postcopy`, runs on the
 * destination at once while the pages it touches are fetched on demand,
 * and ends with every page in place — plain, with postcopy-preempt, with
 * multifd, and with postcopy-blocktime. Byte checks use the `ab` guest
 * (whose stopped memory has one exact shape); the `random` guest, whose
 * destination keeps rewriting memory the source no longer has, is judged by
 * completion, statuses and counters.
 */
import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { recordEvents, startInstance, stopAllInstances, type TestInstance } from './support/instances.js';
import { EVENTS, boundTcpUri, memoryKeepsChanging, queryMigrate, runState, waitForMigration, type MigrateInfo } from './support/migration-driver.js';
import { PAGE, logTail, multifdArgs } from './support/multifd-pair.js';
import { refusal } from './support/qmp-expect.js';
import {
  CONT_REFUSED, POSTCOPY, abGuestArgs, abRunning, activeWithBytes, destinationRequests, expectAbHolds, migrateAndSwitch, postcopyLink,
  waitForStatuses, type AbGuest,
} from './support/postcopy-pair.js';
import { scratchDirPerTest } from './support/scratch-dir.js';

const MiB = 1 << 20;
const AB: AbGuest = { start: 1 * MiB, end: 49 * MiB, smp: 2 };
const GUEST = abGuestArgs('64M', AB, false);
const AB_SOURCE = abGuestArgs('64M', AB);
/** Precopy at 64 MB/s never ends alone; postcopy's background pages at 32 MB/s. */
const LINK = postcopyLink(64_000_000, 32_000_000);

interface Pair {
  source: TestInstance;
  destination: TestInstance;
  sourceEvents: string[];
  destinationEvents: string[];
}

/** A destination (idle, waiting for the stream) and an ab source, with postcopy-ram and `caps` on both. */
async function startAbPair(caps: string[], listen = 'tcp:127.0.0.1:0'): Promise<Pair> {
  const [destination, source] = await Promise.all([
    startInstance([...GUEST, ...POSTCOPY, ...caps, ...EVENTS, '--incoming', listen], { name: 'dst' }),
    startInstance([...AB_SOURCE, ...POSTCOPY, ...caps, ...EVENTS, ...LINK], { name: 'src' }),
  ]);
  return { source, destination, sourceEvents: recordEvents(source.qmp), destinationEvents: recordEvents(destination.qmp) };
}

/**
 * Migrates the pair's ab guest with a switch to postcopy and judges it: the
 * destination runs the guest during postcopy-active, pages were requested on
 * demand (the same count on both sides), both sides completed through
 * postcopy-active, the destination holds every page, and the source guest
 * stayed stopped. Returns both sides' final query-migrate.
 */
async function expectAbMigratedByPostcopy(pair: Pair, uri: string): Promise<{ source: MigrateInfo; destination: Record<string, unknown> }> {
  const { source, destination } = pair;
  await migrateAndSwitch(source, destination, uri, AB);
  // The destination runs the guest while pages are still coming; the source's copy is stopped for good.
  expect(await runState(destination.qmp), 'destination guest during postcopy').to.equal('running');
  expect(await runState(source.qmp), 'source guest after the switch').to.be.oneOf(['finish-migrate', 'postmigrate']);

  const sourceInfo = await waitForMigration(source.qmp, ['completed', 'failed', 'postcopy-paused'], 60_000);
  expect(sourceInfo.status, `source: ${sourceInfo['error-desc']}\n${logTail(source)}\n${logTail(destination)}`).to.equal('completed');
  const destinationInfo = await waitForStatuses(destination.qmp, ['completed', 'failed', 'postcopy-paused'], 30_000);
  expect(destinationInfo.status, `destination: ${destinationInfo['error-desc']}\n${logTail(destination)}`).to.equal('completed');

  expect(pair.sourceEvents, 'source MIGRATION events').to.deep.equal(['setup', 'active', 'postcopy-active', 'completed']);
  // `--incoming URI` at start announced `setup` before the test's monitor connected.
  expect(pair.destinationEvents.filter((s) => s !== 'setup'), 'destination MIGRATION events').to.deep.equal(['active', 'postcopy-active', 'completed']);

  const ram = sourceInfo.ram!;
  expect(ram['postcopy-requests'], 'pages the destination asked for').to.be.above(0);
  expect(destinationRequests(destinationInfo), 'requests sent by the destination against those served by the source').to.equal(ram['postcopy-requests']);
  expect(ram['postcopy-bytes'], 'bytes sent after the switch').to.be.above(0);
  expect(sourceInfo.downtime, 'downtime (stop to package sent)').to.be.a('number').and.at.least(0);
  const extension = (sourceInfo as unknown as Record<string, { 'stop-to-run'?: number }>)['__org.livemig_postcopy'];
  expect(extension?.['stop-to-run'], 'stop-to-run: the destination ran the guest after the package was sent').to.be.a('number').and.at.least(sourceInfo.downtime!);

  expect(await runState(destination.qmp)).to.equal('running');
  expect(await memoryKeepsChanging(destination, AB.start, 64 * 1024, 30_000), 'the destination guest does not run its workload').to.equal(true);
  await destination.qmp.execute('stop');
  await expectAbHolds(destination, AB, 'destination');
  expect(await runState(source.qmp)).to.equal('postmigrate');
  return { source: sourceInfo, destination: destinationInfo };
}

/** A process's resident set now, from /proc. */
function residentBytes(pid: number): number {
  const kib = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!kib) throw new Error(`no VmRSS for process ${pid}`);
  return Number(kib[1]) * 1024;
}

describe('postcopy of a running guest', function () {
  this.timeout(120_000);
  const scratch = scratchDirPerTest('livemig-postcopy-', stopAllInstances);

  it('ab guest (2 vCPUs) over tcp: switches mid-migration, runs on the destination while pages are fetched on demand, every page arrives', async () => {
    const pair = await startAbPair([]);
    const { source, destination } = pair;
    const result = await expectAbMigratedByPostcopy(pair, await boundTcpUri(destination.qmp));
    // Without postcopy-blocktime the destination shows no blocktime, as QEMU.
    expect(result.destination).not.to.have.any.keys('postcopy-blocktime', 'postcopy-vcpu-blocktime');

    // Completed: the source's stale copy stays stopped.
    expect(await refusal(source.qmp.execute('cont'))).to.deep.equal({ class: 'GenericError', desc: CONT_REFUSED });
    expect(await runState(source.qmp)).to.equal('postmigrate');
    // Accepted once the migration is over, as in QEMU, and it changes nothing.
    await source.qmp.execute('migrate-start-postcopy');
    await destination.qmp.execute('cont');
    expect((await queryMigrate(source.qmp)).status).to.equal('completed');
    expect((await queryMigrate(destination.qmp)).status).to.equal('completed');
    expect(await runState(source.qmp)).to.equal('postmigrate');
    expect(await runState(destination.qmp)).to.equal('running');
    expect(pair.sourceEvents.at(-1)).to.equal('completed');
  });

  it('with postcopy-preempt over unix: requested pages on their own connection, every page arrives', async () => {
    const path = join(scratch(), 'migrate.sock');
    const pair = await startAbPair(['--cap', 'postcopy-preempt'], `unix:${path}`);
    await expectAbMigratedByPostcopy(pair, `unix:${path}`);
  });

  it('with multifd (2 channels): precopy pages on the channels, postcopy pages on the main channel, every page arrives', async () => {
    const pair = await startAbPair(multifdArgs());
    const { source } = await expectAbMigratedByPostcopy(pair, await boundTcpUri(pair.destination.qmp));
    expect(source.ram!['multifd-bytes'], 'precopy bytes carried by the multifd channels').to.be.above(0);
  });

  it('with multifd and postcopy-preempt: the destination names every channel at once, the source finds each, every page arrives', async () => {
    const pair = await startAbPair([...multifdArgs(), '--cap', 'postcopy-preempt']);
    const { source } = await expectAbMigratedByPostcopy(pair, await boundTcpUri(pair.destination.qmp));
    expect(source.ram!['multifd-bytes'], 'precopy bytes carried by the multifd channels').to.be.above(0);
  });

  it('with release-ram: the source gives back each page it sends in postcopy (its RSS falls as postcopy runs), every page arrives', async () => {
    const pair = await startAbPair(['--cap', 'release-ram']);
    const pid = pair.source.process.pid!;
    const rss: number[] = [];
    const sampling = (async () => {
      for (;;) {
        const info = await queryMigrate(pair.source.qmp);
        if (info.status === 'postcopy-active') rss.push(residentBytes(pid));
        if (['completed', 'failed', 'postcopy-paused'].includes(info.status)) return;
        await new Promise((r) => setTimeout(r, 20));
      }
    })();
    const { source } = await expectAbMigratedByPostcopy(pair, await boundTcpUri(pair.destination.qmp));
    await sampling;
    const released = (source as unknown as Record<string, { 'released-bytes': number } | undefined>)['__org.livemig_postcopy']?.['released-bytes'] ?? 0;
    // Guest pages lie on whole OS pages, so each page sent after the switch is released (postcopy-bytes adds the frames' headers).
    const sent = source.ram!['postcopy-bytes']!;
    expect(released, `released-bytes against the ${sent} bytes sent after the switch`).to.be.within(0.9 * sent, sent);
    expect(released % PAGE, 'released-bytes in whole pages').to.equal(0);
    expect(rss.length, 'RSS samples in postcopy-active').to.be.at.least(2);
    const fell = rss[0]! - residentBytes(pid);
    expect(fell, `the source's RSS fell by ${fell} bytes while ${released} were released`).to.be.at.least(released / 2);
  });

  it('with postcopy-blocktime: the destination reports how long its vCPUs waited on missing pages, one figure per vCPU', async () => {
    const pair = await startAbPair(['--cap', 'postcopy-blocktime']);
    const { destination } = await expectAbMigratedByPostcopy(pair, await boundTcpUri(pair.destination.qmp));
    const total = destination['postcopy-blocktime'];
    const perVcpu = destination['postcopy-vcpu-blocktime'] as number[];
    expect(total, 'postcopy-blocktime').to.be.a('number');
    expect(Number.isInteger(total) && (total as number) >= 0, `postcopy-blocktime ${total}`).to.equal(true);
    expect(perVcpu, 'postcopy-vcpu-blocktime').to.be.an('array').with.lengthOf(AB.smp);
    for (const figure of perVcpu) expect(Number.isInteger(figure) && figure >= 0, `vCPU blocktime ${figure}`).to.equal(true);
    // Pages were requested, so some vCPU waited; all of them waited at once for no longer than any one of them did.
    expect(Math.max(...perVcpu), 'the longest vCPU wait').to.be.above(0);
    expect(total as number, 'the time all vCPUs waited at once, against the shortest vCPU figure').to.be.at.most(Math.min(...perVcpu));
  });

  it('a random guest dirtying faster than the link: precopy alone goes on through dirty sync after dirty sync, postcopy completes it', async () => {
    // 20 000 pages/s (≈ 80 MB/s) over 4 MiB against 10 MB/s with a 10 ms downtime limit: every pass leaves
    // nearly the whole working set dirty, far above the ≈ 100 KB that may stay for the switchover.
    const guest = ['--ram', '32M', '--smp', '2'];
    const [destination, source] = await Promise.all([
      startInstance([...guest, ...POSTCOPY, ...EVENTS, '--incoming', 'tcp:127.0.0.1:0'], { name: 'dst' }),
      startInstance([
        ...guest, ...POSTCOPY, ...EVENTS, '--workload', 'random', '--dirty-rate', '20000', '--working-set', '4M',
        '--param', 'max-bandwidth=10000000', '--param', 'downtime-limit=10', '--param', 'max-postcopy-bandwidth=10000000',
      ], { name: 'src' }),
    ]);
    const sourceEvents = recordEvents(source.qmp);
    const destinationEvents = recordEvents(destination.qmp);
    // Its vCPUs may start late on a loaded host: a first pass with nothing dirtied behind it would end in precopy.
    expect(await memoryKeepsChanging(source, 0, 4 * MiB, 30_000), 'the random guest does not run').to.equal(true);
    await source.qmp.execute('migrate', { uri: await boundTcpUri(destination.qmp) });

    // Precopy alone: several dirty syncs, and still active with pages left each time.
    let precopy = await activeWithBytes(source.qmp, 1);
    const deadline = Date.now() + 60_000;
    while (precopy.ram!['dirty-sync-count']! < 6) {
      expect(precopy.status, `precopy of the random guest: ${precopy['error-desc']}`).to.equal('active');
      expect(Date.now(), `only ${precopy.ram!['dirty-sync-count']} dirty syncs`).to.be.below(deadline);
      await new Promise((r) => setTimeout(r, 50));
      precopy = await queryMigrate(source.qmp);
    }
    expect(precopy.status, 'after 6 dirty syncs').to.equal('active');
    expect(precopy.ram!.remaining, 'pages left to send after 6 dirty syncs').to.be.above(0);
    expect(precopy.ram!['dirty-pages-rate'], 'pages dirtied per second').to.be.above(0);
    expect(sourceEvents).to.deep.equal(['setup', 'active']);

    await source.qmp.execute('migrate-start-postcopy');
    const sourceInfo = await waitForMigration(source.qmp, ['completed', 'failed', 'postcopy-paused'], 60_000);
    expect(sourceInfo.status, `source: ${sourceInfo['error-desc']}\n${logTail(destination)}`).to.equal('completed');
    const destinationInfo = await waitForStatuses(destination.qmp, ['completed', 'failed', 'postcopy-paused'], 30_000);
    expect(destinationInfo.status, `destination: ${destinationInfo['error-desc']}`).to.equal('completed');
    expect(sourceEvents).to.deep.equal(['setup', 'active', 'postcopy-active', 'completed']);
    expect(destinationEvents.filter((s) => s !== 'setup')).to.deep.equal(['active', 'postcopy-active', 'completed']);
    // The working set was dirty at the switch: the running destination guest asked for what it touched.
    expect(sourceInfo.ram!['postcopy-requests'], 'pages the destination asked for').to.be.above(0);
    expect(destinationRequests(destinationInfo)).to.equal(sourceInfo.ram!['postcopy-requests']);
    expect(sourceInfo.ram!['dirty-sync-count'], 'dirty syncs').to.be.at.least(6);
    // The guest runs on at the destination; the source's copy stays stopped.
    expect(await runState(destination.qmp)).to.equal('running');
    expect(await memoryKeepsChanging(destination, 0, 4 * MiB, 30_000), 'the destination guest does not dirty its working set').to.equal(true);
    expect(await runState(source.qmp)).to.equal('postmigrate');
    expect(await refusal(source.qmp.execute('cont'))).to.deep.equal({ class: 'GenericError', desc: CONT_REFUSED });
  });
});

describe('migrate-start-postcopy misuse', function () {
  this.timeout(30_000);
  afterEach(stopAllInstances);

  it("is refused with QEMU's errors without postcopy-ram, and before any migration", async () => {
    const instance = await startInstance(['--ram', '16M'], { name: 'vm' });
    expect(await refusal(instance.qmp.execute('migrate-start-postcopy'))).to.deep.equal({
      class: 'GenericError',
      desc: 'Enable postcopy with migrate_set_capability before the start of migration',
    });
    await instance.qmp.execute('migrate-set-capabilities', { capabilities: [{ capability: 'postcopy-ram', state: true }] });
    expect(await refusal(instance.qmp.execute('migrate-start-postcopy'))).to.deep.equal({
      class: 'GenericError',
      desc: 'Postcopy must be started after migration has been started',
    });
    // Neither refusal started anything.
    expect(await queryMigrate(instance.qmp)).not.to.have.property('status');
    expect(await runState(instance.qmp)).to.equal('running');
  });

  it('asked for during the first pass, with little pending at the sync that ends it: completes in precopy, as QEMU does', async () => {
    const [destination, source] = await Promise.all([
      startInstance(['--ram', '64M', ...POSTCOPY, '--incoming', 'tcp:127.0.0.1:0'], { name: 'dst' }),
      // Nothing written after the first pass, which at 32 MB/s takes 2 s and leaves ~9.6 MB (the threshold) to the sync.
      startInstance(['--ram', '64M', '--fill', 'random', '--paused', ...POSTCOPY, ...EVENTS, '--param', 'max-bandwidth=32000000'], { name: 'src' }),
    ]);
    const sourceEvents = recordEvents(source.qmp);
    await source.qmp.execute('migrate', { uri: await boundTcpUri(destination.qmp) });
    await source.qmp.execute('migrate-start-postcopy');
    const info = await waitForMigration(source.qmp, ['completed', 'failed'], 30_000);
    expect(info.status, info['error-desc']).to.equal('completed');
    // At setup, at the end of the first pass, in the stop-and-copy: no pass of dirty pages before the switchover.
    expect(info.ram!['dirty-sync-count']).to.equal(3);
    expect(sourceEvents).to.not.include('postcopy-active');
    await waitForMigration(destination.qmp, ['completed'], 10_000);
  });

  it('is refused without postcopy-ram while a precopy migration runs, which goes on and completes', async () => {
    const ab: AbGuest = { start: 1 * MiB, end: 16 * MiB, smp: 1 };
    const [destination, source] = await Promise.all([
      startInstance([...abGuestArgs('32M', ab, false), '--incoming', 'tcp:127.0.0.1:0'], { name: 'dst' }),
      startInstance([...abGuestArgs('32M', ab), '--param', 'max-bandwidth=8000000'], { name: 'src' }),
    ]);
    // Running, so its first pass carries 15 MiB of written pages, and is still going when postcopy is asked for.
    await abRunning(source, ab);
    await source.qmp.execute('migrate', { uri: await boundTcpUri(destination.qmp) });
    await activeWithBytes(source.qmp, 64 * 1024);
    expect(await refusal(source.qmp.execute('migrate-start-postcopy'))).to.deep.equal({
      class: 'GenericError',
      desc: 'Enable postcopy with migrate_set_capability before the start of migration',
    });
    expect((await queryMigrate(source.qmp)).status).to.equal('active');
    await source.qmp.execute('migrate-set-parameters', { 'max-bandwidth': 100_000_000_000 });
    const info = await waitForMigration(source.qmp, ['completed', 'failed'], 60_000);
    expect(info.status, info['error-desc']).to.equal('completed');
    expect(info.ram!['postcopy-requests']).to.equal(0);
  });
});
