/**
 * Who can reach an instance's monitor: a unix socket is its owner's alone
 * from the moment it exists, and a tcp monitor beyond loopback exists only
 * when asked for knowingly, and is logged loudly (livemig run refuses it
 * otherwise: instance-cli.test.ts).
 */
import { expect } from 'chai';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import { QmpClient } from '../protocols/qmp/client.js';
import { makeTestPki, type TestPki } from '../tools/pki.js';
import { startInstance, stopAllInstances } from './support/instances.js';

/** The monitor's port, from the line the instance logs when it listens. */
function monitorPort(stderr: string): number {
  const line = stderr.split('\n').find((l) => l.includes('QMP monitor listening') && l.includes('tcp:'));
  return Number(/:(\d+)"/.exec(line!)![1]);
}

/**
 * A QMP exchange over TLS with the client credentials in `dir`: the
 * greeting, qmp_capabilities, then `command`'s answer; or what went wrong.
 */
function qmpOverTls(port: number, dir: string | undefined, command: string): Promise<string> {
  return new Promise((resolve) => {
    const read = (file: string) => readFileSync(join(dir!, file), 'utf8');
    const socket = dir === undefined
      ? net.connect({ port, host: '127.0.0.1' })
      : tls.connect({ port, host: '127.0.0.1', servername: 'localhost', ca: read('ca-cert.pem'), cert: read('client-cert.pem'), key: read('client-key.pem') });
    let text = '';
    const timer = setTimeout(() => finish('no answer'), 5000);
    const finish = (outcome: string) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(outcome);
    };
    if (dir === undefined) socket.write('{"execute": "qmp_capabilities"}\n');
    socket.on('data', (chunk: Buffer) => {
      text += chunk.toString();
      const lines = text.split('\n').filter((l) => l !== '');
      if (lines.length === 1 && text.endsWith('\n')) socket.write(`{"execute": "qmp_capabilities"}\n{"execute": "${command}"}\n`);
      if (lines.length === 3) finish(lines[2]!);
    });
    socket.on('error', (err) => finish(`error: ${err.message}`));
    socket.on('close', () => finish(text === '' ? 'closed' : `closed after ${JSON.stringify(text)}`));
  });
}

describe('monitor access', function () {
  this.timeout(30_000);
  afterEach(stopAllInstances);
  let pkiDir: string;
  let pki: TestPki;
  before(async () => {
    pkiDir = mkdtempSync(join(tmpdir(), 'livemig-monitor-pki-'));
    pki = await makeTestPki(pkiDir);
  });
  after(() => rmSync(pkiDir, { recursive: true, force: true }));

  it('listens beyond loopback over TLS (QEMU\'s chardev tls-creds): a client with credentials drives it, a plaintext one gets nothing', async () => {
    const vm = await startInstance([
      '--ram', '16M', '--object', `tls-creds-x509,id=mon0,dir=${pki.server},endpoint=server`, '--qmp', 'tcp:0.0.0.0:0,tls-creds=mon0',
    ], { name: 'tls-monitor' });
    expect(vm.stderr(), 'no plaintext warning').not.to.include('reachable beyond this host');
    const port = monitorPort(vm.stderr());
    expect(JSON.parse(await qmpOverTls(port, pki.client, 'query-status'))).to.have.nested.property('return.status', 'running');
    expect(await qmpOverTls(port, undefined, 'query-status')).to.match(/^(closed|error)/);
  });

  it('a TLS monitor with tls-authz drops a client whose name is not allowed', async () => {
    const vm = await startInstance([
      '--ram', '16M', '--object', `tls-creds-x509,id=mon0,dir=${pki.server},endpoint=server`,
      '--object', `authz-simple,id=auth0,identity=${pki.clientName.replace(/,/g, ',,')}`, '--qmp', 'tcp:127.0.0.1:0,tls-creds=mon0,tls-authz=auth0',
    ], { name: 'authz-monitor' });
    const port = monitorPort(vm.stderr());
    expect(JSON.parse(await qmpOverTls(port, pki.client, 'query-status'))).to.have.property('return');
    expect(await qmpOverTls(port, pki.hostileClient, 'query-status')).to.match(/^(closed|error)/);
    // The monitor goes on answering others.
    expect(JSON.parse(await qmpOverTls(port, pki.client, 'query-status'))).to.have.property('return');
  });

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
