/**
 * A real `livemig run` greets and negotiates as QEMU 8.2 does, on a unix
 * socket and on a TCP port it picked itself (`--qmp tcp:127.0.0.1:0`).
 */
import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { QmpClient } from '../protocols/qmp/client.js';
import type { QmpEvent } from '../protocols/qmp/types.js';
import { REPO_ROOT, startInstance, stopAllInstances } from './support/instances.js';
import { refusal, tcpMonitorAddress } from './support/qmp-expect.js';

const RAM = ['--ram', '16M'];
const NOT_NEGOTIATED = { class: 'CommandNotFound', desc: "Expecting capabilities negotiation with 'qmp_capabilities'" };

describe('livemig instance: QMP greeting and capabilities negotiation', function () {
  const clients: QmpClient[] = [];
  const expectedPackage = `livemig ${(JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string }).version}`;

  async function connect(address: string, negotiate: boolean): Promise<QmpClient> {
    const client = await QmpClient.connect(address, { negotiate, timeoutMs: 5000 });
    clients.push(client);
    return client;
  }

  afterEach(async () => {
    await Promise.all(clients.splice(0).map((c) => c.close().catch(() => {})));
    await stopAllInstances();
  });

  it('greets over a unix socket as QEMU 8.2, with livemig as the package and oob offered', async () => {
    const vm = await startInstance(RAM, { name: 'greet-unix' });
    const client = await connect(`unix:${vm.socket}`, false);
    expect(client.greeting).to.deep.equal({
      QMP: { version: { qemu: { micro: 0, minor: 2, major: 8 }, package: expectedPackage }, capabilities: ['oob'] },
    });
  });

  it('greets the same over --qmp tcp:127.0.0.1:0, at the port it logs on stderr', async () => {
    const vm = await startInstance([...RAM, '--qmp', 'tcp:127.0.0.1:0'], { name: 'greet-tcp' });
    const address = await tcpMonitorAddress(vm);
    expect(address).to.match(/^tcp:127\.0\.0\.1:\d+$/);
    expect(Number(address.split(':')[2])).to.be.above(0);
    const client = await connect(address, false);
    expect(client.greeting).to.deep.equal(vm.qmp.greeting);
    expect(await refusal(client.execute('query-status'))).to.deep.equal(NOT_NEGOTIATED);
    expect(await client.execute('qmp_capabilities')).to.deep.equal({});
    expect(await client.execute('query-status')).to.deep.equal({ running: true, singlestep: false, status: 'running' });
  });

  it('answers every command but qmp_capabilities with CommandNotFound until negotiated, and runs none of them', async () => {
    const vm = await startInstance(RAM, { name: 'not-negotiated' });
    const client = await connect(`unix:${vm.socket}`, false);
    for (const command of ['query-status', 'query-version', 'query-commands', 'stop', 'quit', 'query-migrate', 'no-such-command']) {
      expect(await refusal(client.execute(command)), command).to.deep.equal(NOT_NEGOTIATED);
    }
    // The id is echoed on the refusal, as on any answer.
    client.sendRaw('{"execute": "query-status", "id": {"n": 7}}');
    expect(await client.nextResponse()).to.deep.equal({ error: NOT_NEGOTIATED, id: { n: 7 } });
    expect(await client.execute('qmp_capabilities')).to.deep.equal({});
    // Neither stop nor quit ran: the guest still runs and the process is up.
    expect(await client.execute('query-status')).to.deep.equal({ running: true, singlestep: false, status: 'running' });
    expect(vm.process.exitCode).to.equal(null);
  });

  it('refuses a second qmp_capabilities on the same connection and keeps serving', async () => {
    const vm = await startInstance(RAM, { name: 'negotiate-twice' });
    expect(await refusal(vm.qmp.execute('qmp_capabilities'))).to.deep.equal({
      class: 'CommandNotFound',
      desc: 'Capabilities negotiation is already complete, command ignored',
    });
    expect(await vm.qmp.execute('query-status')).to.deep.equal({ running: true, singlestep: false, status: 'running' });
  });

  it('negotiates each connection on its own', async () => {
    const vm = await startInstance(RAM, { name: 'per-connection' });
    const second = await connect(`unix:${vm.socket}`, false);
    expect(await refusal(second.execute('query-status'))).to.deep.equal(NOT_NEGOTIATED);
    expect(await vm.qmp.execute('query-status')).to.deep.equal({ running: true, singlestep: false, status: 'running' });
  });

  it('accepts enable: ["oob"] and refuses an unknown capability without negotiating', async () => {
    const vm = await startInstance(RAM, { name: 'enable' });
    const bad = await connect(`unix:${vm.socket}`, false);
    expect(await refusal(bad.execute('qmp_capabilities', { enable: ['nosuch'] }))).to.deep.equal({
      class: 'GenericError',
      desc: "Parameter 'null' does not accept value 'nosuch'",
    });
    expect(await refusal(bad.execute('query-status'))).to.deep.equal(NOT_NEGOTIATED);
    const oob = await connect(`unix:${vm.socket}`, false);
    expect(await oob.execute('qmp_capabilities', { enable: ['oob'] })).to.deep.equal({});
    expect(await oob.execute('query-status')).to.deep.equal({ running: true, singlestep: false, status: 'running' });
  });

  it('sends events only to clients that have negotiated', async () => {
    const vm = await startInstance(RAM, { name: 'events-gated' });
    const waiting = await connect(`unix:${vm.socket}`, false);
    const seen: string[] = [];
    waiting.events.on('event', (e: QmpEvent) => seen.push(e.event));
    const stopped = vm.qmp.waitEvent('STOP');
    await vm.qmp.execute('stop');
    await stopped;
    // Had STOP gone to the waiting client, it would arrive before this answer.
    waiting.sendRaw('{"execute": "qmp_capabilities", "id": "n"}');
    expect(await waiting.nextResponse()).to.deep.equal({ return: {}, id: 'n' });
    expect(seen).to.deep.equal([]);
    // Once negotiated it gets the next one.
    const resumed = waiting.waitEvent('RESUME');
    await vm.qmp.execute('cont');
    await resumed;
    expect(seen).to.deep.equal(['RESUME']);
  });
});
