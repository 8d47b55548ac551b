/**
 * Multifd channel counting and channel failures between real processes:
 * each fails the migration on both sides with an error naming the cause,
 * the source guest runs on with its memory intact, and neither side keeps a
 * channel worker thread or a channel socket afterwards. A channel's thread
 * is killed through the --fault-injection command (nothing outside the
 * process can end one thread).
 */
import { expect } from 'chai';
import { QmpError } from '../protocols/qmp/errors.js';
import { KILL_MULTIFD_THREAD_COMMAND } from '../protocols/qmp/livemig-extensions.js';
import { startInstance, stopAllInstances, type TestInstance } from './support/instances.js';
import { UNLIMITED, boundTcpUri, memoryKeepsChanging, runState, waitForMigration } from './support/migration-driver.js';
import {
  MiB, activeWithMultifdBytes, expectAbIntact, expectNothingLeftBehind, holdings, logTail,
  multifdArgs, steadyHoldings, uncaughtTrace, type MultifdSetup, type ProcessHoldings,
} from './support/multifd-pair.js';

const AB = { start: 1 * MiB, end: 32 * MiB };
const GUEST = ['--ram', '64M', '--smp', '1'];
const SOURCE = [...GUEST, '--workload', 'ab', '--ab-start', '1M', '--ab-end', '32M'];
/** 16 MB/s: the migration is still streaming when the test strikes. */
const SLOW_LINK = ['--param', 'max-bandwidth=16000000'];

/** The source failed with an error matching `why`; its guest runs on, every ab page intact. */
async function expectSourceFailedAndRunning(source: TestInstance, why: RegExp): Promise<string> {
  const info = await waitForMigration(source.qmp, ['failed', 'completed', 'cancelled'], 20_000);
  expect(info.status, `source: ${info['error-desc']}`).to.equal('failed');
  expect(info['error-desc'], `source error-desc: ${info['error-desc']}`).to.match(why);
  expect(await runState(source.qmp)).to.equal('running');
  expect(await memoryKeepsChanging(source, AB.start, 64 * 1024), 'the source guest stopped running its workload').to.equal(true);
  await source.qmp.execute('stop');
  await expectAbIntact(source, AB.start, AB.end, 'source');
  await source.qmp.execute('cont');
  return info['error-desc']!;
}

/** A destination kept up after a failed load (exit-on-error off), so what it holds afterwards can be looked at. */
async function inspectableDestination(setup: MultifdSetup | undefined, extra: string[] = []): Promise<{ destination: TestInstance; before: ProcessHoldings; uri: string }> {
  const destination = await startInstance([...GUEST, ...(setup ? multifdArgs(setup) : []), ...extra, '--incoming', 'defer'], { name: 'dst' });
  const before = await steadyHoldings(destination.process.pid!);
  await destination.qmp.execute('migrate-incoming', { uri: 'tcp:127.0.0.1:0', 'exit-on-error': false });
  return { destination, before, uri: await boundTcpUri(destination.qmp) };
}

/** The destination failed to load, saying why, and stays up (exit-on-error off). */
async function expectDestinationFailed(destination: TestInstance, why: RegExp): Promise<string> {
  const info = await waitForMigration(destination.qmp, ['failed', 'completed'], 20_000);
  expect(info.status, `destination: ${info['error-desc']}`).to.equal('failed');
  expect(info['error-desc'], `destination error-desc: ${info['error-desc']}`).to.match(why);
  expect(uncaughtTrace(destination.stderr()), `an uncaught exception:\n${logTail(destination)}`).to.deep.equal([]);
  return info['error-desc']!;
}

describe('multifd failures: channel counting and broken channels', function () {
  this.timeout(45_000);
  afterEach(stopAllInstances);

  it('multifd-channels 2 on the source and 4 on the destination: both fail, saying the counts differ', async () => {
    const [{ destination, before: destinationBefore, uri }, source] = await Promise.all([
      inspectableDestination({ channels: 4 }),
      startInstance([...SOURCE, ...UNLIMITED, ...multifdArgs({ channels: 2 })], { name: 'src' }),
    ]);
    const sourceBefore = await steadyHoldings(source.process.pid!);
    await source.qmp.execute('migrate', { uri });
    await expectSourceFailedAndRunning(source, /multifd-channels is 4 on the destination but 2 here/);
    await expectDestinationFailed(destination, /^load of migration failed: /);
    await expectNothingLeftBehind(source, sourceBefore);
    await expectNothingLeftBehind(destination, destinationBefore);
  });

  const ONE_SIDED = [
    { on: 'destination', destination: { channels: 2 }, source: [] as string[], mismatch: /Capability multifd is on, but received capability is off/ },
    { on: 'source', destination: undefined, source: multifdArgs({ channels: 2 }), mismatch: /Capability multifd is off, but received capability is on/ },
  ];
  for (const c of ONE_SIDED) {
    it(`multifd on the ${c.on} only: the destination refuses the stream and the source fails with its reason`, async () => {
      const [{ destination, before: destinationBefore, uri }, source] = await Promise.all([
        inspectableDestination(c.destination),
        startInstance([...SOURCE, ...UNLIMITED, ...c.source], { name: 'src' }),
      ]);
      const sourceBefore = await steadyHoldings(source.process.pid!);
      await source.qmp.execute('migrate', { uri });
      await expectDestinationFailed(destination, c.mismatch);
      // The destination's reason, not a wait for channel ports that never come.
      await expectSourceFailedAndRunning(source, c.mismatch);
      await expectNothingLeftBehind(source, sourceBefore);
      await expectNothingLeftBehind(destination, destinationBefore);
    });
  }

  it('the destination killed mid-stream (4 channels): the source fails, saying the destination went away, and keeps no worker or socket', async () => {
    const setup = { channels: 4 };
    const [destination, source] = await Promise.all([
      startInstance([...GUEST, ...multifdArgs(setup), '--incoming', 'tcp:127.0.0.1:0'], { name: 'dst' }),
      startInstance([...SOURCE, ...SLOW_LINK, ...multifdArgs(setup)], { name: 'src' }),
    ]);
    const sourceBefore = await steadyHoldings(source.process.pid!);
    await source.qmp.execute('migrate', { uri: await boundTcpUri(destination.qmp) });
    const midway = await activeWithMultifdBytes(source.qmp, 2 * MiB);
    // A source keeps its channel workers warm from the moment multifd is on,
    // so they are already in the "before" count; an abort ends them.
    expect(holdings(source.process.pid!).threads, 'source threads while streaming').to.be.at.least(sourceBefore.threads);
    expect(midway.status).to.equal('active');
    destination.process.kill('SIGKILL');
    await expectSourceFailedAndRunning(source, /multifd channel \d+|migration channel|return path/);
    await expectNothingLeftBehind(source, sourceBefore);
  });

  for (const side of ['source', 'destination'] as const) {
    it(`the ${side}'s thread of multifd channel 1 killed mid-stream: both fail, the ${side} naming the channel, and the source guest runs on intact`, async () => {
      const setup = { channels: 2 };
      const inject = side === 'source' ? ['--fault-injection'] : [];
      const [{ destination, before: destinationBefore, uri }, source] = await Promise.all([
        inspectableDestination(setup, side === 'destination' ? ['--fault-injection'] : []),
        startInstance([...SOURCE, ...SLOW_LINK, ...multifdArgs(setup), ...inject], { name: 'src' }),
      ]);
      const sourceBefore = await steadyHoldings(source.process.pid!);
      await source.qmp.execute('migrate', { uri });
      await activeWithMultifdBytes(source.qmp, 2 * MiB);
      await (side === 'source' ? source : destination).qmp.execute(KILL_MULTIFD_THREAD_COMMAND, { channel: 1 });
      const killed = /multifd channel 1: its thread ended \(exit code 1\)/;
      if (side === 'source') {
        await expectSourceFailedAndRunning(source, killed);
        await expectDestinationFailed(destination, /^load of migration failed: /);
      } else {
        await expectDestinationFailed(destination, killed);
        await expectSourceFailedAndRunning(source, /multifd channel \d+|migration channel|return path/);
      }
      await expectNothingLeftBehind(source, sourceBefore);
      await expectNothingLeftBehind(destination, destinationBefore);
    });
  }

  it(`${KILL_MULTIFD_THREAD_COMMAND} is refused without --fault-injection, with no multifd migration under way, and for a channel that is not there`, async () => {
    const plain = await startInstance([...GUEST, ...multifdArgs({ channels: 2 })], { name: 'plain' });
    const refusal = (err: unknown) => (err instanceof QmpError ? `${err.errorClass}: ${err.message}` : String(err));
    expect(await plain.qmp.execute(KILL_MULTIFD_THREAD_COMMAND, { channel: 0 }).catch(refusal)).to.equal(
      `GenericError: ${KILL_MULTIFD_THREAD_COMMAND} injects a fault: only an instance started with --fault-injection accepts it`);
    const [{ destination, uri }, source] = await Promise.all([
      inspectableDestination({ channels: 2 }),
      startInstance([...SOURCE, ...SLOW_LINK, ...multifdArgs({ channels: 2 }), '--fault-injection'], { name: 'src' }),
    ]);
    expect(await source.qmp.execute(KILL_MULTIFD_THREAD_COMMAND, { channel: 0 }).catch(refusal)).to.equal(
      'GenericError: No migration with multifd channels is under way here');
    await source.qmp.execute('migrate', { uri });
    await activeWithMultifdBytes(source.qmp, 1 * MiB);
    expect(await source.qmp.execute(KILL_MULTIFD_THREAD_COMMAND, { channel: 2 }).catch(refusal)).to.equal(
      'GenericError: there is no connected multifd channel 2 (2 channels)');
    expect(await source.qmp.execute(KILL_MULTIFD_THREAD_COMMAND, { channel: -1 }).catch(refusal)).to.match(/^GenericError: Parameter 'channel' expects uint8/);
    await source.qmp.execute('migrate_cancel');
    await waitForMigration(source.qmp, ['cancelled'], 20_000);
    await waitForMigration(destination.qmp, ['failed'], 20_000);
  });

  it('zstd on the source, zlib on the destination: the destination finds the compression mismatch on a channel and both fail', async () => {
    const [{ destination, before: destinationBefore, uri }, source] = await Promise.all([
      inspectableDestination({ channels: 2, compression: 'zlib' }),
      startInstance([...SOURCE, ...SLOW_LINK, ...multifdArgs({ channels: 2, compression: 'zstd' })], { name: 'src' }),
    ]);
    const sourceBefore = await steadyHoldings(source.process.pid!);
    await source.qmp.execute('migrate', { uri });
    // QEMU's wording ("flags received … flags expected …"), and which channel saw it.
    const reason = await expectDestinationFailed(destination, /multifd (channel )?\d+: flags received 4 flags expected 2/);
    const why = reason.replace(/^load of migration failed: /, '').replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    await expectSourceFailedAndRunning(source, new RegExp(why));
    await expectNothingLeftBehind(source, sourceBefore);
    await expectNothingLeftBehind(destination, destinationBefore);
  });
});
