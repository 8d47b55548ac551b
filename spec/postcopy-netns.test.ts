/**
 * A real link cut: the destination runs in a network namespace of its own,
 * joined to the host by a veth pair this test creates, and the postcopy
 * migration crosses it. Taking the link down drops every packet without a
 * reset (a stalled link, as a pulled cable is): each side is paused with
 * migrate-pause, the link comes back, and the migration recovers over it
 * and completes with the guest whole. Skipped, saying why, where the
 * machine does not allow network namespaces.
 */
import { expect } from 'chai';
import { execFileSync } from 'node:child_process';
import { recordEvents, startInstance, stopAllInstances } from './support/instances.js';
import { EVENTS, memoryKeepsChanging, queryMigrate, runState, waitForMigration } from './support/migration-driver.js';
import { logTail } from './support/multifd-pair.js';
import { POSTCOPY, abGuestArgs, expectAbHolds, migrateAndSwitch, postcopyLink, waitForStatuses, type AbGuest } from './support/postcopy-pair.js';

const MiB = 1 << 20;
const AB: AbGuest = { start: 1 * MiB, end: 33 * MiB, smp: 1 };
const NS = `lm${process.pid}`;
const HOST_END = `lmv${process.pid}a`;
const GUEST_END = `lmv${process.pid}b`;
const NET = `10.231.${process.pid % 250}`;

const ip = (...args: string[]) => execFileSync('ip', args, { stdio: 'pipe' });

/** The address the destination's query-migrate says it listens on. */
async function listeningUri(qmp: Parameters<typeof queryMigrate>[0]): Promise<string> {
  const address = (await queryMigrate(qmp))['socket-address']?.[0];
  if (address?.type !== 'inet') throw new Error('the destination shows no inet socket-address');
  return `tcp:${address.host}:${address.port}`;
}

describe('postcopy across a real link between two network namespaces', function () {
  this.timeout(120_000);
  let unavailable: string | undefined;

  before(function () {
    try {
      ip('netns', 'add', NS);
      ip('link', 'add', HOST_END, 'type', 'veth', 'peer', 'name', GUEST_END);
      ip('link', 'set', GUEST_END, 'netns', NS);
      ip('addr', 'add', `${NET}.1/24`, 'dev', HOST_END);
      ip('link', 'set', HOST_END, 'up');
      ip('netns', 'exec', NS, 'ip', 'addr', 'add', `${NET}.2/24`, 'dev', GUEST_END);
      ip('netns', 'exec', NS, 'ip', 'link', 'set', GUEST_END, 'up');
      ip('netns', 'exec', NS, 'ip', 'link', 'set', 'lo', 'up');
    } catch (err) {
      unavailable = `network namespaces are not available here: ${(err as Error).message.split('\n')[0]}`;
      console.log(`      skipped: ${unavailable}`);
      this.skip();
    }
  });

  after(async () => {
    await stopAllInstances();
    // Deleting the namespace takes its end of the veth pair, and so the pair.
    try {
      ip('netns', 'del', NS);
    } catch {}
    try {
      ip('link', 'del', HOST_END);
    } catch {}
  });

  it('the link taken down in postcopy: both sides paused, the link back, recovered over it, every page arrives', async () => {
    const [destination, source] = await Promise.all([
      startInstance([...abGuestArgs('48M', AB, false), ...POSTCOPY, ...EVENTS, '--incoming', `tcp:${NET}.2:0`], { name: 'dst', wrap: ['ip', 'netns', 'exec', NS] }),
      startInstance([...abGuestArgs('48M', AB), ...POSTCOPY, ...EVENTS, ...postcopyLink(64_000_000, 8_000_000)], { name: 'src' }),
    ]);
    const sourceEvents = recordEvents(source.qmp);
    const destinationEvents = recordEvents(destination.qmp);
    await migrateAndSwitch(source, destination, await listeningUri(destination.qmp), AB);

    ip('link', 'set', HOST_END, 'down');
    // No reset crosses a link that is down: neither side can tell it from a slow one, so the orchestrator pauses both.
    expect((await queryMigrate(source.qmp)).status).to.equal('postcopy-active');
    await source.qmp.execute('migrate-pause');
    await destination.qmp.execute('migrate-pause');
    for (const side of [source, destination]) {
      const info = await waitForStatuses(side.qmp, ['postcopy-paused', 'completed', 'failed'], 30_000);
      expect(info.status, `${side.name}\n${logTail(side)}`).to.equal('postcopy-paused');
    }
    expect(await runState(destination.qmp)).to.equal('running');

    ip('link', 'set', HOST_END, 'up');
    await destination.qmp.execute('migrate-recover', { uri: `tcp:${NET}.2:0` });
    await source.qmp.execute('migrate', { uri: await listeningUri(destination.qmp), resume: true });
    const done = await waitForMigration(source.qmp, ['completed', 'failed'], 60_000);
    expect(done.status, `source\n${logTail(source)}\n${logTail(destination)}`).to.equal('completed');
    await waitForStatuses(destination.qmp, ['completed'], 30_000);
    const cycle = ['postcopy-active', 'postcopy-paused', 'postcopy-recover', 'postcopy-active', 'completed'];
    expect(sourceEvents).to.deep.equal(['setup', 'active', ...cycle]);
    expect(destinationEvents.filter((s) => s !== 'setup')).to.deep.equal(['active', ...cycle]);
    expect(await memoryKeepsChanging(destination, AB.start, 64 * 1024, 30_000)).to.equal(true);
    await destination.qmp.execute('stop');
    await expectAbHolds(destination, AB, 'destination');
  });
});
