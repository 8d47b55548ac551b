/**
 * Postcopy recovery with real processes: the link between a source and a
 * destination in postcopy-active breaks (or is broken off with
 * migrate-pause), both sides pause, the destination listens anew with
 * migrate-recover, the source reconnects with `migrate resume=true`, and the
 * migration completes with the destination's guest whole (the ab check) and
 * having run throughout.
 */
import { expect } from 'chai';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeTestPki } from '../tools/pki.js';
import { FaultProxy } from './support/fault-proxy.js';
import { swallowFrom } from './support/stream-units.js';
import { recordEvents, startInstance, stopAllInstances, type TestInstance } from './support/instances.js';
import { EVENTS, boundTcpUri, memoryKeepsChanging, queryMigrate, runState, sleep, waitForMigration } from './support/migration-driver.js';
import { logTail, uncaughtTrace } from './support/multifd-pair.js';
import { refusal } from './support/qmp-expect.js';
import { connectionsOf, killLocalPort } from './support/sockets.js';
import { POSTCOPY_STALL_MS } from '../actors/return-path/postcopy-liveness.js';
import {
  POSTCOPY, abGuestArgs, expectAbHolds, migrateAndSwitch, postcopyLink, waitForStatuses, type AbGuest,
} from './support/postcopy-pair.js';

const MiB = 1 << 20;
const AB: AbGuest = { start: 1 * MiB, end: 49 * MiB, smp: 2 };
/** Precopy never ends alone; postcopy's background pages at 16 MB/s, so a pause comes while most are still to send. */
const LINK = postcopyLink(64_000_000, 16_000_000);

interface Pair {
  source: TestInstance;
  destination: TestInstance;
  proxy: FaultProxy;
  /** The destination's own port, behind the proxy. */
  destinationPort: number;
  sourceEvents: string[];
  destinationEvents: string[];
}

describe('postcopy recovery', function () {
  this.timeout(120_000);
  const proxies: FaultProxy[] = [];
  afterEach(async () => {
    await Promise.all(proxies.splice(0).map((p) => p.close()));
    await stopAllInstances();
  });

  /** An ab pair through a fault proxy, switched to postcopy; the destination guest runs. `only` holds each side's own flags. */
  async function switchedPair(caps: string[] = [], only: { source?: string[]; destination?: string[] } = {}): Promise<Pair> {
    const [destination, source] = await Promise.all([
      startInstance([...abGuestArgs('64M', AB, false), ...POSTCOPY, ...caps, ...EVENTS, ...only.destination ?? [], '--incoming', 'tcp:127.0.0.1:0'], { name: 'dst' }),
      startInstance([...abGuestArgs('64M', AB), ...POSTCOPY, ...caps, ...EVENTS, ...LINK, ...only.source ?? []], { name: 'src' }),
    ]);
    const sourceEvents = recordEvents(source.qmp);
    const destinationEvents = recordEvents(destination.qmp);
    const destinationPort = Number((await boundTcpUri(destination.qmp)).split(':')[2]);
    const proxy = await FaultProxy.start({ host: '127.0.0.1', port: destinationPort });
    proxies.push(proxy);
    await migrateAndSwitch(source, destination, proxy.uri, AB);
    return { source, destination, proxy, destinationPort, sourceEvents, destinationEvents };
  }

  async function expectPaused(pair: Pair, withinMs = 30_000): Promise<void> {
    const { source, destination } = pair;
    const s = await waitForStatuses(source.qmp, ['postcopy-paused', 'completed', 'failed'], withinMs).catch((err: Error) => {
      throw new Error(`${err.message}\n${logTail(source)}\n${logTail(destination)}`);
    });
    expect(s.status, `source: ${s['error-desc']}\n${logTail(source)}`).to.equal('postcopy-paused');
    const d = await waitForStatuses(destination.qmp, ['postcopy-paused', 'completed', 'failed'], withinMs).catch((err: Error) => {
      throw new Error(`${err.message}\n${logTail(source)}\n${logTail(destination)}`);
    });
    expect(d.status, `destination: ${d['error-desc']}\n${logTail(destination)}`).to.equal('postcopy-paused');
    expect(await runState(destination.qmp), 'the destination guest runs on, waiting on what it misses').to.equal('running');
  }

  /** migrate-recover on a new port; the URI the source should resume to (through a proxy of its own when asked). */
  async function recoverAddress(pair: Pair, throughProxy = false): Promise<{ uri: string; proxy?: FaultProxy }> {
    await pair.destination.qmp.execute('migrate-recover', { uri: 'tcp:127.0.0.1:0' });
    const uri = await boundTcpUri(pair.destination.qmp);
    if (!throughProxy) return { uri };
    const proxy = await FaultProxy.start({ host: '127.0.0.1', port: Number(uri.split(':')[2]) });
    proxies.push(proxy);
    return { uri: proxy.uri, proxy };
  }

  /** migrate-recover on a new port (straight, not through the proxy), `migrate resume=true` to it; both complete. */
  async function recoverAndComplete(pair: Pair): Promise<void> {
    const { source } = pair;
    const { uri } = await recoverAddress(pair);
    await source.qmp.execute('migrate', { uri, resume: true });
    await expectCompleted(pair);
  }

  /** Both sides completed, the destination guest runs its workload and holds every page; the source's copy never ran again. */
  async function expectCompleted(pair: Pair): Promise<void> {
    const { source, destination } = pair;
    // The status leaves postcopy-paused only once the new connection is up (QEMU 8.2 has no state for the connecting).
    await waitForStatuses(source.qmp, ['postcopy-recover', 'postcopy-active', 'completed', 'failed'], 30_000);
    const s = await waitForMigration(source.qmp, ['completed', 'failed', 'postcopy-paused'], 60_000);
    expect(s.status, `source: ${s['error-desc']}\n${logTail(source)}\n${logTail(destination)}`).to.equal('completed');
    const d = await waitForStatuses(destination.qmp, ['completed', 'failed', 'postcopy-paused'], 30_000);
    expect(d.status, `destination: ${d['error-desc']}\n${logTail(destination)}`).to.equal('completed');
    expect(await memoryKeepsChanging(destination, AB.start, 64 * 1024, 30_000), 'the destination guest does not run its workload').to.equal(true);
    await destination.qmp.execute('stop');
    await expectAbHolds(destination, AB, 'destination');
    expect(await runState(source.qmp)).to.equal('postmigrate');
    expect(uncaughtTrace(source.stderr()), logTail(source)).to.deep.equal([]);
    expect(uncaughtTrace(destination.stderr()), logTail(destination)).to.deep.equal([]);
  }

  const PAUSED_AND_BACK = ['postcopy-active', 'postcopy-paused', 'postcopy-recover', 'postcopy-active', 'completed'];

  it('a link cut by a proxy: both sides pause, recover over a new address, complete with every page', async () => {
    const pair = await switchedPair();
    pair.proxy.cut();
    await expectPaused(pair);
    await recoverAndComplete(pair);
    expect(pair.sourceEvents).to.deep.equal(['setup', 'active', ...PAUSED_AND_BACK]);
    expect(pair.destinationEvents.filter((s) => s !== 'setup')).to.deep.equal(['active', ...PAUSED_AND_BACK]);
  });

  it('a stalled link in postcopy-active (nothing passes, nothing closes): each side pauses by itself once nothing moved for the stall timeout', async () => {
    const pair = await switchedPair();
    pair.proxy.stall();
    await expectPaused(pair, POSTCOPY_STALL_MS * 4);
    expect(pair.destination.stderr()).to.include(`the migration stream stalled: nothing came from the source for ${POSTCOPY_STALL_MS / 1000} s`);
    expect(pair.source.stderr()).to.include('The migration channel stalled: nothing could be written to it for');
    await recoverAndComplete(pair);
    expect(pair.sourceEvents).to.deep.equal(['setup', 'active', ...PAUSED_AND_BACK]);
  });

  it("the source's end of the connection closed under it (ss -K): both sides pause, recover, complete", async () => {
    const pair = await switchedPair();
    const mine = connectionsOf(pair.source.process.pid!).filter((c) => c.peer.port === pair.proxy.port);
    expect(mine, "the source's connections to the proxy").to.have.length(1);
    killLocalPort(mine[0]!.local.port);
    await expectPaused(pair);
    await recoverAndComplete(pair);
    expect(pair.sourceEvents).to.deep.equal(['setup', 'active', ...PAUSED_AND_BACK]);
  });

  it("the destination's end of the connection closed under it (ss -K): both sides pause, recover, complete", async () => {
    const pair = await switchedPair();
    killLocalPort(pair.destinationPort);
    await expectPaused(pair);
    await recoverAndComplete(pair);
    expect(pair.destinationEvents.filter((s) => s !== 'setup')).to.deep.equal(['active', ...PAUSED_AND_BACK]);
  });

  it('the preempt connection alone closed: both sides pause, recover (a new preempt connection), complete', async () => {
    const pair = await switchedPair(['--cap', 'postcopy-preempt']);
    // The destination's connections: the main one (its own port, from the proxy) and the preempt one (straight from the source).
    const preempt = connectionsOf(pair.destination.process.pid!).filter((c) => c.local.port !== pair.destinationPort);
    expect(preempt, "the destination's preempt connection").to.have.length(1);
    killLocalPort(preempt[0]!.local.port);
    await expectPaused(pair);
    expect(pair.destination.stderr() + pair.source.stderr(), 'a side says the preempt channel broke').to.match(/postcopy-preempt/);
    await recoverAndComplete(pair);
    expect(pair.sourceEvents).to.deep.equal(['setup', 'active', ...PAUSED_AND_BACK]);
  });

  it('POSTCOPY_RUN lost with the link: both pause, the destination guest not yet run; the recovery sends RUN again and completes', async () => {
    const [destination, source] = await Promise.all([
      startInstance([...abGuestArgs('64M', AB, false), ...POSTCOPY, ...EVENTS, '--incoming', 'tcp:127.0.0.1:0'], { name: 'dst' }),
      startInstance([...abGuestArgs('64M', AB), ...POSTCOPY, ...EVENTS, ...LINK], { name: 'src' }),
    ]);
    const sourceEvents = recordEvents(source.qmp);
    const destinationEvents = recordEvents(destination.qmp);
    const destinationPort = Number((await boundTcpUri(destination.qmp)).split(':')[2]);
    // The package and its answer pass; from POSTCOPY_RUN on nothing reaches the destination.
    const { tamperTowardsDestination, swallowing } = swallowFrom('postcopy-run');
    const proxy = await FaultProxy.start({ host: '127.0.0.1', port: destinationPort }, { tamperTowardsDestination });
    proxies.push(proxy);
    const pair: Pair = { source, destination, proxy, destinationPort, sourceEvents, destinationEvents };
    await migrateAndSwitch(source, destination, proxy.uri, AB);
    expect(swallowing()).to.equal(true);
    // Nothing comes to the destination: it pauses by itself once the stall bound passes; the cut pauses the source.
    const d = await waitForStatuses(destination.qmp, ['postcopy-paused', 'completed', 'failed'], POSTCOPY_STALL_MS + 20_000);
    expect(d.status, `destination: ${d['error-desc']}\n${logTail(destination)}`).to.equal('postcopy-paused');
    expect(await runState(destination.qmp), 'POSTCOPY_RUN never came').to.equal('inmigrate');
    proxy.cut();
    const s = await waitForStatuses(source.qmp, ['postcopy-paused', 'completed', 'failed'], 30_000);
    expect(s.status, `source: ${s['error-desc']}\n${logTail(source)}`).to.equal('postcopy-paused');
    await recoverAndComplete(pair);
    expect(sourceEvents).to.deep.equal(['setup', 'active', ...PAUSED_AND_BACK]);
    expect(destinationEvents.filter((st) => st !== 'setup')).to.deep.equal(['active', ...PAUSED_AND_BACK]);
  });

  it('migrate-pause on the source pauses both sides; they recover and complete', async () => {
    const pair = await switchedPair();
    await pair.source.qmp.execute('migrate-pause');
    await expectPaused(pair);
    // As in QEMU 8.2, query-migrate gives no error-desc outside `failed`: the reason is in the log.
    expect(pair.source.stderr()).to.include('Postcopy migration is paused by the user');
    await recoverAndComplete(pair);
    expect(pair.sourceEvents).to.deep.equal(['setup', 'active', ...PAUSED_AND_BACK]);
  });

  it('after a recovery the background pages still go at max-postcopy-bandwidth (the destination guest held stopped asks for none)', async () => {
    const ab: AbGuest = { start: 1 * MiB, end: 16 * MiB, smp: 1 };
    const [destination, source] = await Promise.all([
      // -S: the guest stays stopped after the switch, so no page is requested and only the background sends.
      startInstance([...abGuestArgs('32M', ab, false), ...POSTCOPY, ...EVENTS, '-S', '--incoming', 'tcp:127.0.0.1:0'], { name: 'dst' }),
      startInstance([...abGuestArgs('32M', ab), ...POSTCOPY, ...EVENTS, ...postcopyLink(64 * MiB, MiB)], { name: 'src' }),
    ]);
    await migrateAndSwitch(source, destination, await boundTcpUri(destination.qmp), ab);
    await source.qmp.execute('migrate-pause');
    await waitForStatuses(source.qmp, ['postcopy-paused']);
    await waitForStatuses(destination.qmp, ['postcopy-paused']);
    await destination.qmp.execute('migrate-recover', { uri: 'tcp:127.0.0.1:0' });
    await source.qmp.execute('migrate', { uri: await boundTcpUri(destination.qmp), resume: true });
    // The status leaves postcopy-paused only once the new connection is up.
    await waitForStatuses(source.qmp, ['postcopy-recover', 'postcopy-active', 'completed', 'failed'], 30_000);
    const resumed = await waitForStatuses(source.qmp, ['postcopy-active', 'completed', 'failed', 'postcopy-paused'], 30_000);
    expect(resumed.status, logTail(source)).to.equal('postcopy-active');
    const before = (await queryMigrate(source.qmp)).ram?.transferred ?? 0;
    const from = Date.now();
    await sleep(1_000);
    const after = await queryMigrate(source.qmp);
    // An upper bound only (a loaded host sends less): the rate over the time that passed, and a window's burst.
    const allowed = (MiB * (Date.now() - from)) / 1000 + 256 * 1024;
    expect(after.status, logTail(source)).to.equal('postcopy-active');
    expect((after.ram?.transferred ?? 0) - before, `bytes sent in ${Date.now() - from} ms at 1 MiB/s\n${logTail(source)}`).to.be.at.most(allowed);
    // Lifted, the rest goes at once, and the destination holds the guest the source stopped.
    await source.qmp.execute('migrate-set-parameters', { 'max-postcopy-bandwidth': 0 });
    expect((await waitForMigration(source.qmp, ['completed', 'failed'], 60_000)).status).to.equal('completed');
    expect((await waitForStatuses(destination.qmp, ['completed', 'failed'], 30_000)).status).to.equal('completed');
    expect(await runState(destination.qmp)).to.equal('paused');
    const own = await destination.qmp.execute<{ ok: boolean }>('__org.livemig_check-ab');
    expect(own.ok, 'the destination\'s ab check').to.equal(true);
  });

  it('migrate-pause on the destination pauses both sides; they recover and complete', async () => {
    const pair = await switchedPair();
    await pair.destination.qmp.execute('migrate-pause');
    await expectPaused(pair);
    expect(pair.destination.stderr()).to.include('Postcopy migration is paused by the user');
    await recoverAndComplete(pair);
    expect(pair.destinationEvents.filter((s) => s !== 'setup')).to.deep.equal(['active', ...PAUSED_AND_BACK]);
  });

  it('with postcopy-preempt: the preempt channel is opened anew, requests pending at the cut are served, every page arrives', async () => {
    const pair = await switchedPair(['--cap', 'postcopy-preempt']);
    pair.proxy.cut();
    await expectPaused(pair);
    await recoverAndComplete(pair);
    const info = await queryMigrate(pair.source.qmp);
    expect(info.ram!['postcopy-requests'], 'pages asked for').to.be.above(0);
    expect(pair.sourceEvents).to.deep.equal(['setup', 'active', ...PAUSED_AND_BACK]);
  });

  it('over TLS with preempt: the recovery\'s new connections are TLS too, and every page arrives', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'livemig-recovery-pki-'));
    try {
      const pki = await makeTestPki(dir);
      const tls = (creds: string, endpoint: string) => ['--object', `tls-creds-x509,id=tls0,dir=${creds},endpoint=${endpoint}`, '--param', 'tls-creds=tls0'];
      const pair = await switchedPair(['--cap', 'postcopy-preempt'], { source: tls(pki.client, 'client'), destination: tls(pki.server, 'server') });
      pair.proxy.cut();
      await expectPaused(pair);
      await recoverAndComplete(pair);
      expect(pair.sourceEvents).to.deep.equal(['setup', 'active', ...PAUSED_AND_BACK]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a recovery that hangs (its link stalled) is broken off by migrate-pause on each side, and the next one completes', async () => {
    const pair = await switchedPair();
    pair.proxy.cut();
    await expectPaused(pair);
    const hanging = await recoverAddress(pair, true);
    hanging.proxy!.stall();
    await pair.source.qmp.execute('migrate', { uri: hanging.uri, resume: true });
    await waitForStatuses(pair.source.qmp, ['postcopy-recover'], 30_000);
    expect(await refusal(pair.source.qmp.execute('migrate', { uri: hanging.uri, resume: true })))
      .to.deep.equal({ class: 'GenericError', desc: 'Cannot resume if there is no paused migration' });
    // Each side breaks its own end off: through a black hole, neither hears the other go.
    await pair.source.qmp.execute('migrate-pause');
    await waitForStatuses(pair.source.qmp, ['postcopy-paused'], 30_000);
    expect((await queryMigrate(pair.destination.qmp)).status).to.equal('postcopy-recover');
    await pair.destination.qmp.execute('migrate-pause');
    await expectPaused(pair);
    await recoverAndComplete(pair);
    const twice = ['postcopy-active', 'postcopy-paused', 'postcopy-recover', 'postcopy-paused', 'postcopy-recover', 'postcopy-active', 'completed'];
    expect(pair.sourceEvents).to.deep.equal(['setup', 'active', ...twice]);
  });

  it('a link cut again during postcopy-recover pauses both sides again; the next recovery completes', async () => {
    const pair = await switchedPair();
    pair.proxy.cut();
    await expectPaused(pair);
    const second = await recoverAddress(pair, true);
    second.proxy!.stall();
    await pair.source.qmp.execute('migrate', { uri: second.uri, resume: true });
    await waitForStatuses(pair.source.qmp, ['postcopy-recover'], 30_000);
    await waitForStatuses(pair.destination.qmp, ['postcopy-recover'], 30_000);
    second.proxy!.cut();
    await expectPaused(pair);
    await recoverAndComplete(pair);
  });

  it('a recovery over a link of 4096 bytes/s (bitmaps and pending pages crossing slowly) completes once the link is back to speed', async () => {
    const pair = await switchedPair();
    pair.proxy.cut();
    await expectPaused(pair);
    const slow = await recoverAddress(pair, true);
    slow.proxy!.throttle(4096);
    await pair.source.qmp.execute('migrate', { uri: slow.uri, resume: true });
    // The bitmaps (2 KiB for this guest) and RESUME_ACK cross at 4 KiB/s; requested pages follow as slowly.
    await waitForStatuses(pair.source.qmp, ['postcopy-active'], 60_000);
    await new Promise((r) => setTimeout(r, 1000));
    slow.proxy!.resume();
    await expectCompleted(pair);
    expect(pair.sourceEvents).to.deep.equal(['setup', 'active', ...PAUSED_AND_BACK]);
  });

  it('resume and migrate-recover are refused over a URI that cannot reconnect; a second migrate-recover replaces the first, and recovery over unix: completes', async () => {
    const pair = await switchedPair();
    pair.proxy.cut();
    await expectPaused(pair);
    const { source, destination } = pair;
    const cannot = (uri: string) => ({ class: 'GenericError', desc: `Postcopy recovery needs a tcp: or unix: URI (a return path and a new connection), not '${uri}'` });
    for (const uri of ['exec:cat', 'file:/tmp/x', 'fd:3']) {
      expect(await refusal(source.qmp.execute('migrate', { uri, resume: true })), uri).to.deep.equal(cannot(uri));
      expect(await refusal(destination.qmp.execute('migrate-recover', { uri })), uri).to.deep.equal(cannot(uri));
    }
    // An address the source cannot reach, then a unix socket it can: the second replaces the first.
    await destination.qmp.execute('migrate-recover', { uri: 'tcp:127.0.0.1:0' });
    const first = await boundTcpUri(destination.qmp);
    const path = join(destination.dir, 'recover.sock');
    await destination.qmp.execute('migrate-recover', { uri: `unix:${path}` });
    expect((await queryMigrate(destination.qmp))['socket-address']).to.deep.equal([{ type: 'unix', path }]);
    // The first address listens no more: the source's resume there fails to connect and it stays paused.
    const pausesBefore = source.stderr().split('Migration paused').length;
    await source.qmp.execute('migrate', { uri: first, resume: true });
    for (const deadline = Date.now() + 10_000; source.stderr().split('Migration paused').length === pausesBefore;) {
      if (Date.now() > deadline) throw new Error(`the resume to a closed address did not fail\n${logTail(source)}`);
      await new Promise((r) => setTimeout(r, 20));
    }
    expect((await queryMigrate(source.qmp)).status).to.equal('postcopy-paused');
    await source.qmp.execute('migrate', { uri: `unix:${path}`, resume: true });
    await expectCompleted(pair);
  });

  it('resume is refused with release-ram (pages given back may never have arrived): the migration stays paused', async () => {
    const pair = await switchedPair(['--cap', 'release-ram']);
    pair.proxy.cut();
    await expectPaused(pair);
    await pair.destination.qmp.execute('migrate-recover', { uri: 'tcp:127.0.0.1:0' });
    const uri = await boundTcpUri(pair.destination.qmp);
    expect(await refusal(pair.source.qmp.execute('migrate', { uri, resume: true })))
      .to.deep.equal({ class: 'GenericError', desc: 'Postcopy recovery cannot work when release-ram capability is set' });
    expect((await queryMigrate(pair.source.qmp)).status).to.equal('postcopy-paused');
    expect((await queryMigrate(pair.destination.qmp)).status).to.equal('postcopy-paused');
  });

  it('with multifd: the channels carried precopy only and are not opened again; the recovery completes on the main connection', async () => {
    const pair = await switchedPair(['--cap', 'multifd']);
    pair.proxy.cut();
    await expectPaused(pair);
    await recoverAndComplete(pair);
    expect(pair.sourceEvents).to.deep.equal(['setup', 'active', ...PAUSED_AND_BACK]);
  });

  it('migrate-pause, migrate-recover and migrate resume=true are refused outside their states, with QEMU\'s errors', async () => {
    const [destination, source] = await Promise.all([
      startInstance([...abGuestArgs('64M', AB, false), ...POSTCOPY, '--incoming', 'defer'], { name: 'dst' }),
      startInstance([...abGuestArgs('64M', AB), ...POSTCOPY], { name: 'src' }),
    ]);
    const pause = { class: 'GenericError', desc: 'migrate-pause is currently only supported during postcopy-active or postcopy-recover state' };
    expect(await refusal(source.qmp.execute('migrate-pause'))).to.deep.equal(pause);
    expect(await refusal(destination.qmp.execute('migrate-pause'))).to.deep.equal(pause);
    expect(await refusal(destination.qmp.execute('migrate-recover', { uri: 'tcp:127.0.0.1:0' })))
      .to.deep.equal({ class: 'GenericError', desc: 'Migrate recover can only be run when postcopy is paused.' });
    expect(await refusal(source.qmp.execute('migrate', { uri: 'tcp:127.0.0.1:1', resume: true })))
      .to.deep.equal({ class: 'GenericError', desc: 'Cannot resume if there is no paused migration' });
  });
});
