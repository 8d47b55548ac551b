/**
 * The run-control and query commands of a real `livemig run`, and the STOP
 * and RESUME events every negotiated client receives.
 */
import { expect } from 'chai';
import { QmpClient } from '../protocols/qmp/client.js';
import type { QmpEvent } from '../protocols/qmp/types.js';
import { startInstance, stopAllInstances } from './support/instances.js';
import { tcpMonitorAddress } from './support/qmp-expect.js';

const RAM = ['--ram', '16M'];
const RUNNING = { running: true, singlestep: false, status: 'running' };
const PAUSED = { running: false, singlestep: false, status: 'paused' };

/** Names of every event a client receives from now on. */
function eventNames(client: QmpClient): string[] {
  const seen: string[] = [];
  client.events.on('event', (e: QmpEvent) => seen.push(e.event));
  return seen;
}

/** An event as QEMU sends STOP/RESUME: no data, a wall-clock timestamp. */
function expectPlainEvent(event: QmpEvent, name: string, before: number): void {
  expect(Object.keys(event).sort()).to.deep.equal(['event', 'timestamp']);
  expect(event.event).to.equal(name);
  expect(Object.keys(event.timestamp).sort()).to.deep.equal(['microseconds', 'seconds']);
  expect(Number.isInteger(event.timestamp.seconds) && Number.isInteger(event.timestamp.microseconds)).to.equal(true);
  expect(event.timestamp.microseconds).to.be.within(0, 999_999);
  const at = event.timestamp.seconds * 1000 + event.timestamp.microseconds / 1000;
  expect(at).to.be.within(before - 1000, Date.now() + 1000);
}

describe('livemig instance: QMP commands', function () {
  const clients: QmpClient[] = [];

  afterEach(async () => {
    await Promise.all(clients.splice(0).map((c) => c.close().catch(() => {})));
    await stopAllInstances();
  });

  describe('query-status', () => {
    it('reports running after a plain start', async () => {
      const vm = await startInstance(RAM, { name: 'status-running' });
      expect(await vm.qmp.execute('query-status')).to.deep.equal(RUNNING);
    });

    it('reports prelaunch with -S, and cont starts the guest with RESUME', async () => {
      const vm = await startInstance([...RAM, '-S'], { name: 'status-prelaunch' });
      expect(await vm.qmp.execute('query-status')).to.deep.equal({ running: false, singlestep: false, status: 'prelaunch' });
      const resumed = vm.qmp.waitEvent('RESUME');
      expect(await vm.qmp.execute('cont')).to.deep.equal({});
      await resumed;
      expect(await vm.qmp.execute('query-status')).to.deep.equal(RUNNING);
    });

    it('reports prelaunch with --paused too', async () => {
      const vm = await startInstance([...RAM, '--paused'], { name: 'status-paused-flag' });
      expect(await vm.qmp.execute('query-status')).to.deep.equal({ running: false, singlestep: false, status: 'prelaunch' });
    });

    it('reports inmigrate with --incoming defer, and query-migrate is still {}', async () => {
      const vm = await startInstance([...RAM, '--incoming', 'defer'], { name: 'status-inmigrate' });
      expect(await vm.qmp.execute('query-status')).to.deep.equal({ running: false, singlestep: false, status: 'inmigrate' });
      expect(await vm.qmp.execute('query-migrate')).to.deep.equal({});
    });
  });

  describe('stop and cont', () => {
    it('stop pauses the guest with a STOP event, cont resumes it with RESUME', async () => {
      const vm = await startInstance(RAM, { name: 'stop-cont' });
      let before = Date.now();
      const stopped = vm.qmp.waitEvent('STOP');
      expect(await vm.qmp.execute('stop')).to.deep.equal({});
      expectPlainEvent(await stopped, 'STOP', before);
      expect(await vm.qmp.execute('query-status')).to.deep.equal(PAUSED);
      before = Date.now();
      const resumed = vm.qmp.waitEvent('RESUME');
      expect(await vm.qmp.execute('cont')).to.deep.equal({});
      expectPlainEvent(await resumed, 'RESUME', before);
      expect(await vm.qmp.execute('query-status')).to.deep.equal(RUNNING);
    });

    it('sends no event for stop on a paused guest or cont on a running one', async () => {
      const vm = await startInstance(RAM, { name: 'stop-twice' });
      const seen = eventNames(vm.qmp);
      await vm.qmp.execute('stop');
      await vm.qmp.execute('stop');
      expect(await vm.qmp.execute('query-status')).to.deep.equal(PAUSED);
      await vm.qmp.execute('cont');
      await vm.qmp.execute('cont');
      expect(await vm.qmp.execute('query-status')).to.deep.equal(RUNNING);
      // The last answer follows every event the commands caused.
      expect(seen).to.deep.equal(['STOP', 'RESUME']);
    });

    it('stop and cont on a destination waiting in inmigrate only set autostart: no event, status unchanged', async () => {
      const vm = await startInstance([...RAM, '--incoming', 'defer'], { name: 'stop-inmigrate' });
      const seen = eventNames(vm.qmp);
      const INMIGRATE = { running: false, singlestep: false, status: 'inmigrate' };
      expect(await vm.qmp.execute('stop')).to.deep.equal({});
      expect(await vm.qmp.execute('query-status')).to.deep.equal(INMIGRATE);
      expect(await vm.qmp.execute('cont')).to.deep.equal({});
      expect(await vm.qmp.execute('query-status')).to.deep.equal(INMIGRATE);
      expect(seen).to.deep.equal([]);
    });

    it('sends STOP and RESUME to every connected client, over unix and TCP', async () => {
      const vm = await startInstance([...RAM, '--qmp', 'tcp:127.0.0.1:0'], { name: 'two-clients' });
      const second = await vm.connect();
      clients.push(second);
      const overTcp = await QmpClient.connect(await tcpMonitorAddress(vm), { timeoutMs: 5000 });
      clients.push(overTcp);
      const all = [vm.qmp, second, overTcp];
      const seen = all.map(eventNames);

      let waits = all.map((c) => c.waitEvent('STOP'));
      await vm.qmp.execute('stop');
      await Promise.all(waits);
      expect(await overTcp.execute('query-status')).to.deep.equal(PAUSED);

      // Run by another client: the events still reach all three.
      waits = all.map((c) => c.waitEvent('RESUME'));
      await second.execute('cont');
      await Promise.all(waits);
      expect(await vm.qmp.execute('query-status')).to.deep.equal(RUNNING);
      expect(seen).to.deep.equal([
        ['STOP', 'RESUME'],
        ['STOP', 'RESUME'],
        ['STOP', 'RESUME'],
      ]);
    });
  });

  describe('queries', () => {
    it('query-migrate answers {} before any migration', async () => {
      const vm = await startInstance(RAM, { name: 'query-migrate' });
      expect(await vm.qmp.execute('query-migrate')).to.deep.equal({});
    });

    it('query-version answers the version of the greeting', async () => {
      const vm = await startInstance(RAM, { name: 'query-version' });
      const version = await vm.qmp.execute('query-version');
      expect(version).to.deep.equal(vm.qmp.greeting.QMP.version);
      expect(version).to.deep.include({ qemu: { micro: 0, minor: 2, major: 8 } });
    });

    it('query-commands lists every command once, livemig extensions included', async () => {
      const vm = await startInstance(RAM, { name: 'query-commands' });
      const listed = await vm.qmp.execute<{ name: string }[]>('query-commands');
      expect(listed.every((c) => Object.keys(c).length === 1 && typeof c.name === 'string')).to.equal(true);
      const names = listed.map((c) => c.name);
      expect(new Set(names).size, 'no duplicates').to.equal(names.length);
      expect(names).to.include.members([
        'qmp_capabilities',
        'query-version',
        'query-commands',
        'query-status',
        'stop',
        'cont',
        'quit',
        'query-migrate',
        'query-migrate-capabilities',
        'migrate-set-capabilities',
        'query-migrate-parameters',
        'migrate-set-parameters',
        'pmemsave',
        '__org.livemig_query-digest',
      ]);
      // Every extension is named as QEMU names downstream extensions.
      for (const name of names) expect(name, name).to.match(/^(__org\.livemig_)?[a-z][a-z0-9_-]*$/);
    });
  });
});
