/**
 * A real `livemig run` shuts down cleanly on `quit`, SIGTERM and SIGINT:
 * exit code 0, every monitor connection ended, unix socket files removed,
 * TCP ports closed, and its log JSON lines to the end.
 */
import { expect } from 'chai';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { QmpClient } from '../protocols/qmp/client.js';
import { QmpConnectionError } from '../protocols/qmp/errors.js';
import { startInstance, stopAllInstances, type TestInstance } from './support/instances.js';
import { tcpMonitorAddress } from './support/qmp-expect.js';

const GUEST = ['--ram', '16M', '--smp', '2', '--workload', 'ab', '--ab-start', '1M', '--ab-end', '8M'];

async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const bound = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not happen within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, bound]);
  } finally {
    clearTimeout(timer);
  }
}

/** Resolves once the client's connection has ended (a call on it then fails as closed). */
async function connectionEnded(client: QmpClient): Promise<void> {
  const error = await client.nextResponse(10_000).then(
    () => new Error('a response arrived'),
    (e: unknown) => e as Error,
  );
  expect(error).to.be.instanceOf(QmpConnectionError);
  expect((error as QmpConnectionError).code).to.equal('closed');
}

/** Every stderr line is a JSON log record a collector can parse. */
function expectJsonLog(instance: TestInstance): void {
  const lines = instance.stderr().split('\n');
  expect(lines.pop(), 'ends with a newline').to.equal('');
  expect(lines.length).to.be.above(0);
  for (const line of lines) {
    const record = JSON.parse(line) as Record<string, unknown>;
    expect(record, line).to.include.keys('level', 'time', 'msg');
    expect(typeof record.level, line).to.equal('number');
    expect(typeof record.msg, line).to.equal('string');
  }
}

/** Nothing listens at `address` any more. */
async function refusesConnections(address: string): Promise<void> {
  const error = await QmpClient.connect(address, { timeoutMs: 2000 }).then(
    async (c) => {
      await c.close();
      return new Error(`${address} still accepts connections`);
    },
    (e: unknown) => e as Error,
  );
  expect(error).to.be.instanceOf(QmpConnectionError);
  expect(error.message).to.match(/ECONNREFUSED|ENOENT/);
}

describe('livemig instance: clean shutdown', function () {
  const clients: QmpClient[] = [];

  afterEach(async () => {
    await Promise.all(clients.splice(0).map((c) => c.close().catch(() => {})));
    await stopAllInstances();
  });

  it('quit answers {}, then the process exits 0 with its unix socket file removed and its TCP port closed', async () => {
    const vm = await startInstance([...GUEST, '--qmp', 'tcp:127.0.0.1:0'], { name: 'quit' });
    const tcp = await tcpMonitorAddress(vm);
    const other = await vm.connect();
    clients.push(other);
    expect(existsSync(vm.socket)).to.equal(true);
    expect(await vm.qmp.execute('quit')).to.deep.equal({});
    expect(await within(vm.exited, 10_000, 'exit after quit')).to.equal(0);
    await connectionEnded(vm.qmp);
    await connectionEnded(other);
    expect(existsSync(vm.socket), 'unix socket file removed').to.equal(false);
    await refusesConnections(`unix:${vm.socket}`);
    await refusesConnections(tcp);
    expectJsonLog(vm);
  });

  it('quit from a TCP client shuts down the same way', async () => {
    const vm = await startInstance([...GUEST, '--qmp', 'tcp:127.0.0.1:0'], { name: 'quit-tcp' });
    const overTcp = await QmpClient.connect(await tcpMonitorAddress(vm), { timeoutMs: 5000 });
    clients.push(overTcp);
    expect(await overTcp.execute('quit')).to.deep.equal({});
    expect(await within(vm.exited, 10_000, 'exit after quit')).to.equal(0);
    expect(existsSync(vm.socket)).to.equal(false);
  });

  it('quit works on a stopped guest too', async () => {
    const vm = await startInstance([...GUEST, '-S'], { name: 'quit-prelaunch' });
    expect(await vm.qmp.execute('quit')).to.deep.equal({});
    expect(await within(vm.exited, 10_000, 'exit after quit')).to.equal(0);
    expect(existsSync(vm.socket)).to.equal(false);
  });

  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    it(`${signal} makes the process exit 0 with its unix socket file removed and clients disconnected`, async () => {
      const vm = await startInstance([...GUEST, '--qmp', 'tcp:127.0.0.1:0'], { name: signal.toLowerCase() });
      const tcp = await tcpMonitorAddress(vm);
      expect(vm.process.kill(signal)).to.equal(true);
      expect(await within(vm.exited, 10_000, `exit after ${signal}`)).to.equal(0);
      expect(vm.process.signalCode).to.equal(null);
      await connectionEnded(vm.qmp);
      expect(existsSync(vm.socket), 'unix socket file removed').to.equal(false);
      await refusesConnections(tcp);
      expectJsonLog(vm);
    });
  }

  it('SIGTERM on a destination waiting on --incoming unix: removes that socket file too', async () => {
    const migrationDir = mkdtempSync(join(tmpdir(), 'livemig-incoming-'));
    try {
      const path = join(migrationDir, 'incoming.sock');
      const vm = await startInstance(['--ram', '16M', '--incoming', `unix:${path}`], { name: 'sigterm-incoming' });
      // Listening: QEMU shows where, and no status until a source connects.
      expect(await vm.qmp.execute('query-migrate')).to.deep.include({ 'socket-address': [{ type: 'unix', path }] });
      expect(existsSync(path), 'listening').to.equal(true);
      vm.process.kill('SIGTERM');
      expect(await within(vm.exited, 10_000, 'exit after SIGTERM')).to.equal(0);
      expect(existsSync(vm.socket), 'QMP socket file removed').to.equal(false);
      expect(existsSync(path), 'migration socket file removed').to.equal(false);
    } finally {
      rmSync(migrationDir, { recursive: true, force: true });
    }
  });
});
