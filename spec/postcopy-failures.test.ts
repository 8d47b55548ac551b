/**
 * Postcopy when things go wrong. After the switch the guest runs on the
 * destination and the source keeps the only copy of the pages not yet sent:
 * a lost connection pauses both sides (postcopy-paused) with both processes
 * up, and neither `migrate_cancel` nor `cont` on the source may throw that
 * away. Before the switch nothing is lost yet: a transport with no return
 * path fails the migration at setup, and the source guest runs on; and the
 * switch is only made once the destination confirms the package, so a
 * package lost on the link fails the migration with the guest still here.
 */
import { expect } from 'chai';
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { FaultProxy } from './support/fault-proxy.js';
import { swallowFrom } from './support/stream-units.js';
import { recordEvents, startInstance, stopAllInstances, type TestInstance } from './support/instances.js';
import {
  EVENTS, UNLIMITED, boundTcpUri, exitCode, memoryKeepsChanging, queryMigrate, runState, waitForMigration,
} from './support/migration-driver.js';
import { logTail, uncaughtTrace } from './support/multifd-pair.js';
import { refusal } from './support/qmp-expect.js';
import {
  CONT_REFUSED, POSTCOPY, abGuestArgs, abRunning, activeWithBytes, expectAbHolds, migrateAndSwitch, postcopyLink, waitForStatuses, type AbGuest,
} from './support/postcopy-pair.js';
import { scratchDirPerTest } from './support/scratch-dir.js';

const MiB = 1 << 20;
const cancelRefused = (status: string) =>
  `Cannot cancel a migration in ${status}: the guest already runs on the destination, and only the destination has its latest state`;

describe('postcopy failures', function () {
  this.timeout(60_000);
  const proxies: FaultProxy[] = [];
  const scratch = scratchDirPerTest('livemig-postcopy-failures-', async () => {
    await Promise.all(proxies.splice(0).map((p) => p.close()));
    await stopAllInstances();
  });

  describe('after the switch: the migration pauses, nothing can throw the guest away', () => {
    const AB: AbGuest = { start: 1 * MiB, end: 49 * MiB, smp: 2 };
    const GUEST = abGuestArgs('64M', AB, false);
    /** Precopy never ends alone; postcopy's background pages at 32 MB/s. */
    const SOURCE = [...abGuestArgs('64M', AB), ...POSTCOPY, ...EVENTS, ...postcopyLink(64_000_000, 32_000_000)];

    /** An ab source and a destination through a fault proxy, switched to postcopy; the destination guest runs. */
    async function switchedThroughProxy(): Promise<{ source: TestInstance; destination: TestInstance; proxy: FaultProxy; sourceEvents: string[]; destinationEvents: string[] }> {
      const [destination, source] = await Promise.all([
        startInstance([...GUEST, ...POSTCOPY, ...EVENTS, '--incoming', 'tcp:127.0.0.1:0'], { name: 'dst' }),
        startInstance(SOURCE, { name: 'src' }),
      ]);
      const sourceEvents = recordEvents(source.qmp);
      const destinationEvents = recordEvents(destination.qmp);
      const proxy = await FaultProxy.start({ host: '127.0.0.1', port: Number((await boundTcpUri(destination.qmp)).split(':')[2]) });
      proxies.push(proxy);
      await migrateAndSwitch(source, destination, proxy.uri, AB);
      return { source, destination, proxy, sourceEvents, destinationEvents };
    }

    /**
     * Both sides paused with both processes up: the destination guest runs
     * (its vCPUs wait on the pages they miss), the source guest stays
     * stopped and holds every page; neither cancel nor cont is taken.
     */
    async function expectBothPaused(source: TestInstance, destination: TestInstance, sourceEvents: string[], destinationEvents: string[]): Promise<void> {
      const sourceInfo = await waitForStatuses(source.qmp, ['postcopy-paused', 'completed', 'failed'], 30_000);
      expect(sourceInfo.status, `source: ${sourceInfo['error-desc']}\n${logTail(source)}`).to.equal('postcopy-paused');
      const destinationInfo = await waitForStatuses(destination.qmp, ['postcopy-paused', 'completed', 'failed'], 30_000);
      expect(destinationInfo.status, `destination: ${destinationInfo['error-desc']}\n${logTail(destination)}`).to.equal('postcopy-paused');
      expect(sourceEvents).to.deep.equal(['setup', 'active', 'postcopy-active', 'postcopy-paused']);
      expect(destinationEvents.filter((s) => s !== 'setup')).to.deep.equal(['active', 'postcopy-active', 'postcopy-paused']);

      expect(await refusal(source.qmp.execute('migrate_cancel'))).to.deep.equal({ class: 'GenericError', desc: cancelRefused('postcopy-paused') });
      expect(await refusal(source.qmp.execute('cont'))).to.deep.equal({ class: 'GenericError', desc: CONT_REFUSED });
      expect((await queryMigrate(source.qmp)).status, 'after the refused cancel').to.equal('postcopy-paused');

      expect(source.process.exitCode, 'source process').to.equal(null);
      expect(destination.process.exitCode, 'destination process').to.equal(null);
      expect(await runState(destination.qmp), 'destination guest').to.equal('running');
      expect(await runState(source.qmp), 'source guest').to.be.oneOf(['finish-migrate', 'postmigrate']);
      await expectAbHolds(source, AB, 'source');
      expect(uncaughtTrace(source.stderr()), logTail(source)).to.deep.equal([]);
      expect(uncaughtTrace(destination.stderr()), logTail(destination)).to.deep.equal([]);
    }

    it('a cut while pages flow pauses both sides; the source keeps every page, the destination keeps running the guest', async () => {
      const { source, destination, proxy, sourceEvents, destinationEvents } = await switchedThroughProxy();
      proxy.cut();
      await expectBothPaused(source, destination, sourceEvents, destinationEvents);
    });

    it('in postcopy-active, migrate_cancel and cont on the source are refused and change nothing; a cut then pauses both sides', async () => {
      const { source, destination, proxy, sourceEvents, destinationEvents } = await switchedThroughProxy();
      // A stalled link: postcopy cannot end while the refusals are tried.
      proxy.stall();
      expect(await refusal(source.qmp.execute('migrate_cancel'))).to.deep.equal({ class: 'GenericError', desc: cancelRefused('postcopy-active') });
      expect(await refusal(source.qmp.execute('cont'))).to.deep.equal({ class: 'GenericError', desc: CONT_REFUSED });
      expect((await queryMigrate(source.qmp)).status).to.equal('postcopy-active');
      expect((await queryMigrate(destination.qmp)).status).to.equal('postcopy-active');
      expect(await runState(source.qmp)).to.equal('finish-migrate');
      expect(await runState(destination.qmp)).to.equal('running');
      proxy.cut();
      await expectBothPaused(source, destination, sourceEvents, destinationEvents);
    });
  });

  describe('a package that never arrives: the migration fails, and the guest runs on at the source', () => {
    const AB: AbGuest = { start: 1 * MiB, end: 49 * MiB, smp: 2 };
    const SOURCE = [...abGuestArgs('64M', AB), ...POSTCOPY, ...EVENTS, ...postcopyLink(64_000_000, 32_000_000)];

    it('a link that swallows the package: no answer to it, so the source fails and runs its guest; the destination, never committed, fails', async () => {
      const [destination, source] = await Promise.all([
        startInstance([...abGuestArgs('64M', AB, false), ...POSTCOPY, '--incoming', 'tcp:127.0.0.1:0'], { name: 'dst' }),
        startInstance(SOURCE, { name: 'src' }),
      ]);
      const events = recordEvents(source.qmp);
      // From the package on, nothing reaches the destination: the source has written it all the same, and
      // QEMU's would now be past its point of no return.
      const { tamperTowardsDestination, swallowing } = swallowFrom('packaged');
      const proxy = await FaultProxy.start({ host: '127.0.0.1', port: Number((await boundTcpUri(destination.qmp)).split(':')[2]) }, { tamperTowardsDestination });
      proxies.push(proxy);
      await abRunning(source, AB);
      await source.qmp.execute('migrate', { uri: proxy.uri });
      await activeWithBytes(source.qmp, 256 * 1024);
      await source.qmp.execute('migrate-start-postcopy');

      const info = await waitForStatuses(source.qmp, ['failed', 'postcopy-paused', 'completed'], 40_000);
      expect(info.status, logTail(source)).to.equal('failed');
      expect(info['error-desc']).to.equal('the destination did not confirm the postcopy package within 10 s');
      expect(events).to.deep.equal(['setup', 'active', 'postcopy-active', 'failed']);
      expect(await runState(source.qmp)).to.equal('running');
      expect(await memoryKeepsChanging(source, AB.start, 64 * 1024)).to.equal(true);
      await source.qmp.execute('stop');
      await expectAbHolds(source, AB, 'source');

      // The link goes for good: the destination never had the package, so it fails rather than pause.
      expect(swallowing()).to.equal(true);
      proxy.cut();
      expect(await exitCode(destination), logTail(destination)).to.equal(1);
      expect(destination.stderr()).to.not.include('postcopy migration paused');
    });
  });

  describe('postcopy-preempt on one side only: the migration fails at setup, saying which side lacks it', () => {
    const AB: AbGuest = { start: 1 * MiB, end: 16 * MiB, smp: 1 };
    const PREEMPT = [...POSTCOPY, '--cap', 'postcopy-preempt'];

    for (const [sourceCaps, destinationCaps, why] of [
      [PREEMPT, POSTCOPY, 'Capability postcopy-preempt is off, but received capability is on'],
      [POSTCOPY, PREEMPT, 'Capability postcopy-preempt is on, but received capability is off'],
    ] as const) {
      it(`source ${sourceCaps.includes('postcopy-preempt') ? 'with' : 'without'} it, destination ${destinationCaps.includes('postcopy-preempt') ? 'with' : 'without'}`, async () => {
        const [destination, source] = await Promise.all([
          startInstance([...abGuestArgs('32M', AB, false), ...destinationCaps, '--incoming', 'tcp:127.0.0.1:0'], { name: 'dst' }),
          startInstance([...abGuestArgs('32M', AB), ...UNLIMITED, ...EVENTS, ...sourceCaps], { name: 'src' }),
        ]);
        const events = recordEvents(source.qmp);
        await source.qmp.execute('migrate', { uri: await boundTcpUri(destination.qmp) });
        const info = await waitForMigration(source.qmp, ['failed', 'completed'], 30_000);
        expect(info.status, logTail(source)).to.equal('failed');
        expect(info['error-desc'], 'the destination says why').to.include(why);
        // A source without preempt has gone active by the time the destination's refusal comes.
        expect(events.at(-1)).to.equal('failed');
        const incoming = await waitForStatuses(destination.qmp, ['failed'], 30_000).catch(() => undefined);
        if (incoming) expect(incoming['error-desc']).to.include(why);
        // Nothing was lost: the source guest runs on with every page.
        expect(await runState(source.qmp)).to.equal('running');
        await source.qmp.execute('stop');
        await expectAbHolds(source, AB, 'source');
        expect(uncaughtTrace(source.stderr()), logTail(source)).to.deep.equal([]);
      });
    }
  });

  describe('one-way transports: no return path, so no postcopy', () => {
    const AB: AbGuest = { start: 1 * MiB, end: 16 * MiB, smp: 1 };
    const SOURCE = [...abGuestArgs('32M', AB), ...UNLIMITED, ...EVENTS];

    /** The migration failed at setup with `why`, wrote nothing to `path`, and the guest runs on with every page. */
    async function expectFailedAtSetup(source: TestInstance, events: string[], path: string): Promise<void> {
      const info = await waitForMigration(source.qmp, ['failed', 'completed'], 30_000);
      expect(info.status, logTail(source)).to.equal('failed');
      expect(info['error-desc']).to.equal('Unable to open return-path for postcopy');
      expect(events.splice(0)).to.deep.equal(['setup', 'failed']);
      expect(!existsSync(path) || statSync(path).size === 0, `${path} holds part of a stream`).to.equal(true);
      expect(await runState(source.qmp)).to.equal('running');
      expect(await memoryKeepsChanging(source, AB.start, 64 * 1024, 30_000), 'the source guest does not run its workload').to.equal(true);
      await source.qmp.execute('stop');
      await expectAbHolds(source, AB, 'source');
      await source.qmp.execute('cont');
    }

    it("postcopy-ram (or return-path) with exec: or file: fails at setup: 'Unable to open return-path for postcopy'", async () => {
      const source = await startInstance([...SOURCE, ...POSTCOPY], { name: 'src' });
      const events = recordEvents(source.qmp);

      const execPath = join(scratch(), 'exec.mig');
      await source.qmp.execute('migrate', { uri: `exec:cat > ${execPath}` });
      await expectFailedAtSetup(source, events, execPath);

      const filePath = join(scratch(), 'file.mig');
      await source.qmp.execute('migrate', { uri: `file:${filePath}` });
      await expectFailedAtSetup(source, events, filePath);

      // return-path alone asks for the same reverse direction.
      await source.qmp.execute('migrate-set-capabilities', {
        capabilities: [{ capability: 'postcopy-ram', state: false }, { capability: 'return-path', state: true }],
      });
      const otherPath = join(scratch(), 'return-path.mig');
      await source.qmp.execute('migrate', { uri: `file:${otherPath}` });
      await expectFailedAtSetup(source, events, otherPath);
    });

    it("postcopy-preempt with exec: or file: is refused by migrate and migrate-incoming: 'Migration requires multi-channel URIs (e.g. tcp)'", async () => {
      const preempt = [...POSTCOPY, '--cap', 'postcopy-preempt'];
      const [destination, source] = await Promise.all([
        startInstance(['--ram', '32M', ...preempt, '--incoming', 'defer'], { name: 'dst' }),
        startInstance([...SOURCE, ...preempt], { name: 'src' }),
      ]);
      const events = recordEvents(source.qmp);
      const refused = { class: 'GenericError', desc: 'Migration requires multi-channel URIs (e.g. tcp)' };
      const path = join(scratch(), 'preempt.mig');
      for (const uri of [`file:${path}`, `exec:cat > ${path}`]) {
        expect(await refusal(source.qmp.execute('migrate', { uri })), uri).to.deep.equal(refused);
        expect(await refusal(destination.qmp.execute('migrate-incoming', { uri })), `incoming ${uri}`).to.deep.equal(refused);
      }
      // Refused before anything started: no status on either side, no event, the guests as they were.
      expect(await queryMigrate(source.qmp)).not.to.have.property('status');
      expect(await queryMigrate(destination.qmp)).not.to.have.property('status');
      expect(events).to.deep.equal([]);
      expect(existsSync(path), 'a file written by a refused migrate').to.equal(false);
      expect(await runState(source.qmp)).to.equal('running');
      expect(await runState(destination.qmp)).to.equal('inmigrate');
    });
  });
});
