/**
 * Postcopy recovery with real processes: the link between a source and a
 * destination in postcopy-active breaks (or is broken off with
 * migrate-pause), both sides pause, the destination listens anew with
 * migrate-recover, the source reconnects with `migrate resume=true`, and the
 * migration completes with the destination's guest whole (the ab check) and
 * having run throughout.
 */
import { expect } from 'chai';
import { FaultProxy } from './support/fault-proxy.js';
import { recordEvents, startInstance, stopAllInstances, type TestInstance } from './support/instances.js';
import { EVENTS, boundTcpUri, memoryKeepsChanging, queryMigrate, runState, waitForMigration } from './support/migration-driver.js';
import { logTail, uncaughtTrace } from './support/multifd-pair.js';
import { refusal } from './support/qmp-expect.js';
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

  /** An ab pair through a fault proxy, switched to postcopy; the destination guest runs. */
  async function switchedPair(caps: string[] = []): Promise<Pair> {
    const [destination, source] = await Promise.all([
      startInstance([...abGuestArgs('64M', AB, false), ...POSTCOPY, ...caps, ...EVENTS, '--incoming', 'tcp:127.0.0.1:0'], { name: 'dst' }),
      startInstance([...abGuestArgs('64M', AB), ...POSTCOPY, ...caps, ...EVENTS, ...LINK], { name: 'src' }),
    ]);
    const sourceEvents = recordEvents(source.qmp);
    const destinationEvents = recordEvents(destination.qmp);
    const proxy = await FaultProxy.start({ host: '127.0.0.1', port: Number((await boundTcpUri(destination.qmp)).split(':')[2]) });
    proxies.push(proxy);
    await migrateAndSwitch(source, destination, proxy.uri, AB);
    return { source, destination, proxy, sourceEvents, destinationEvents };
  }

  async function expectPaused(pair: Pair): Promise<void> {
    const { source, destination } = pair;
    const s = await waitForStatuses(source.qmp, ['postcopy-paused', 'completed', 'failed'], 30_000);
    expect(s.status, `source: ${s['error-desc']}\n${logTail(source)}`).to.equal('postcopy-paused');
    const d = await waitForStatuses(destination.qmp, ['postcopy-paused', 'completed', 'failed'], 30_000);
    expect(d.status, `destination: ${d['error-desc']}\n${logTail(destination)}`).to.equal('postcopy-paused');
    expect(await runState(destination.qmp), 'the destination guest runs on, waiting on what it misses').to.equal('running');
  }

  /** migrate-recover on a new port (straight, not through the proxy), `migrate resume=true` to it; both complete. */
  async function recoverAndComplete(pair: Pair): Promise<void> {
    const { source, destination } = pair;
    await destination.qmp.execute('migrate-recover', { uri: 'tcp:127.0.0.1:0' });
    const uri = await boundTcpUri(destination.qmp);
    await source.qmp.execute('migrate', { uri, resume: true });
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

  it('migrate-pause on the source, then on the destination after a first recovery', async () => {
    const pair = await switchedPair();
    await pair.source.qmp.execute('migrate-pause');
    await expectPaused(pair);
    // As in QEMU 8.2, query-migrate gives no error-desc outside `failed`: the reason is in the log.
    expect(pair.source.stderr()).to.include('Postcopy migration is paused by the user');
    await recoverAndComplete(pair);
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
