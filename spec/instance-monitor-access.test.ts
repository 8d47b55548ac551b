/**
 * Who can reach an instance's monitor: a unix socket is its owner's alone
 * from the moment it exists, and a tcp monitor beyond loopback exists only
 * when asked for knowingly, and is logged loudly (livemig run refuses it
 * otherwise: instance-cli.test.ts).
 */
import { expect } from 'chai';
import { statSync } from 'node:fs';
import { QmpClient } from '../protocols/qmp/client.js';
import { startInstance, stopAllInstances } from './support/instances.js';

describe('monitor access', function () {
  this.timeout(30_000);
  afterEach(stopAllInstances);

  it('creates its unix socket for its owner only (mode 0600)', async () => {
    const vm = await startInstance(['--ram', '16M'], { name: 'perm' });
    expect(statSync(vm.socket).mode & 0o777).to.equal(0o600);
  });

  it('listens beyond loopback with --qmp-remote-plaintext, saying loudly what that means', async () => {
    const vm = await startInstance(['--ram', '16M', '--qmp', 'tcp:0.0.0.0:0', '--qmp-remote-plaintext'], { name: 'remote' });
    const line = vm.stderr().split('\n').find((l) => l.includes('reachable beyond this host'));
    expect(line, vm.stderr()).to.be.a('string');
    const entry = JSON.parse(line!) as { level: number; address: string; msg: string };
    expect(entry.level, 'a warning').to.equal(40);
    expect(entry.msg).to.equal('QMP monitor reachable beyond this host, in plain text, with no authentication: anyone who reaches it can drive the guest and read its memory');
    const port = /:(\d+)$/.exec(entry.address)![1];
    const qmp = await QmpClient.connect(`tcp:127.0.0.1:${port}`, { timeoutMs: 5000 });
    expect(await qmp.execute('query-status')).to.include({ status: 'running' });
    await qmp.close();
  });
});
