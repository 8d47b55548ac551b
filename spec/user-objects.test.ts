/**
 * TLS credential and authorisation objects (QEMU's -object, object-add,
 * object-del), on credentials made for the test: each is checked when it
 * is created, with QEMU's errors where QEMU has them (its answers were
 * taken from Debian's QEMU 7.2 over QMP).
 */
import { expect } from 'chai';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Authz } from '../actors/objects/authz.js';
import { parseObjectFlag } from '../actors/objects/object-flag.js';
import { UserObjects, type UserObject } from '../actors/objects/user-objects.js';
import type { QmpError } from '../protocols/qmp/errors.js';
import type { JsonObject } from '../protocols/qmp/types.js';
import { startInstance, stopAllInstances } from './support/instances.js';
import { refusal } from './support/qmp-expect.js';
import { makeTestPki, type TestPki } from '../tools/pki.js';

const authzOf = (o: UserObject): Authz => (o as { authz: Authz }).authz;

describe('TLS credentials and authorisation objects', function () {
  this.timeout(30_000);
  let dir: string;
  let pki: TestPki;
  let objects: UserObjects;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'livemig-pki-'));
    pki = await makeTestPki(dir);
  });
  after(() => rmSync(dir, { recursive: true, force: true }));
  beforeEach(() => (objects = new UserObjects()));
  afterEach(() => objects.close());

  /** The QMP error text of an add that must fail. */
  const refused = (args: JsonObject): string => {
    try {
      objects.add(args);
    } catch (err) {
      return (err as QmpError).desc;
    }
    throw new Error(`added ${JSON.stringify(args)}`);
  };

  it('loads x509 credentials for either end, a client without a certificate of its own too', () => {
    const server = objects.add({ 'qom-type': 'tls-creds-x509', id: 'tls0', dir: pki.server, endpoint: 'server' });
    expect(server).to.deep.include({ id: 'tls0', type: 'tls-creds-x509' });
    expect((server as { creds: { verifyPeer: boolean; cert?: string } }).creds).to.include({ verifyPeer: true });
    objects.add({ 'qom-type': 'tls-creds-x509', id: 'tls1', dir: pki.client, endpoint: 'client' });
    const bare = mkdtempSync(join(dir, 'bare-'));
    writeFileSync(join(bare, 'ca-cert.pem'), (pem('ca', pki.server)));
    objects.add({ 'qom-type': 'tls-creds-x509', id: 'tls2', dir: bare, endpoint: 'client', 'verify-peer': false });
    expect(objects.list().map((o) => o.id)).to.deep.equal(['tls0', 'tls1', 'tls2']);
  });

  it("refuses what QEMU refuses, in QEMU's words", () => {
    expect(refused({ 'qom-type': 'tls-creds-x509', id: 'tls0', dir: '/nonexistent', endpoint: 'server' }))
      .to.equal('Unable to access credentials /nonexistent/ca-cert.pem: No such file or directory');
    objects.add({ 'qom-type': 'tls-creds-x509', id: 'tls0', dir: pki.server, endpoint: 'server' });
    expect(refused({ 'qom-type': 'tls-creds-x509', id: 'tls0', dir: pki.server, endpoint: 'server' }))
      .to.equal("attempt to add duplicate property 'tls0' to object (type 'container')");
    expect(refused({ 'qom-type': 'tls-creds-x509', id: 'tls3', dir: pki.server, endpoint: 'bogus' })).to.equal("Parameter 'endpoint' does not accept value 'bogus'");
    expect(refused({ 'qom-type': 'tls-creds-psk', id: 'psk0', dir: '/nonexistent', endpoint: 'server' }))
      .to.equal('Unable to access credentials /nonexistent/keys.psk: No such file or directory');
    expect(refused({ 'qom-type': 'nonsense-type', id: 'x' })).to.equal("Parameter 'qom-type' does not accept value 'nonsense-type'");
    expect(refused({ 'qom-type': 'tls-creds-x509', id: '1bad', dir: pki.server, endpoint: 'server' })).to.equal("Parameter 'id' expects an identifier");
    expect(refused({ id: 'x' })).to.equal("Parameter 'qom-type' is missing");
    expect(refused({ 'qom-type': 'authz-simple', id: 'a', identity: 'CN=x', dir: '/tmp' })).to.equal("Parameter 'dir' is unexpected");
    expect(() => objects.del('nothere')).to.throw("object 'nothere' not found");
  });

  it('checks the certificates as QEMU\'s sanity check does: expired, signed by another CA, a key that is no key', () => {
    expect(refused({ 'qom-type': 'tls-creds-x509', id: 'old', dir: pki.expiredServer, endpoint: 'server' }))
      .to.equal(`The certificate ${join(pki.expiredServer, 'server-cert.pem')} has expired`);
    objects.add({ 'qom-type': 'tls-creds-x509', id: 'unchecked', dir: pki.expiredServer, endpoint: 'server', 'sanity-check': false });
    expect(refused({ 'qom-type': 'tls-creds-x509', id: 'stranger', dir: pki.strangerClient, endpoint: 'client' }))
      .to.equal(`The certificate ${join(pki.strangerClient, 'client-cert.pem')} is not signed by the CA in ${join(pki.strangerClient, 'ca-cert.pem')}`);
    const broken = mkdtempSync(join(dir, 'broken-'));
    writeFileSync(join(broken, 'ca-cert.pem'), pem('ca', pki.server));
    writeFileSync(join(broken, 'server-cert.pem'), pem('server-cert', pki.server));
    writeFileSync(join(broken, 'server-key.pem'), '-----BEGIN PRIVATE KEY-----\nbm90IGEga2V5\n-----END PRIVATE KEY-----\n');
    expect(refused({ 'qom-type': 'tls-creds-x509', id: 'badkey', dir: broken, endpoint: 'server' })).to.match(new RegExp(`^Unable to load private key ${join(broken, 'server-key.pem')}: `));
  });

  it('loads PSK keys; a client needs its username in the file', () => {
    objects.add({ 'qom-type': 'tls-creds-psk', id: 'psk0', dir: pki.psk, endpoint: 'server' });
    objects.add({ 'qom-type': 'tls-creds-psk', id: 'psk1', dir: pki.psk, endpoint: 'client' });
    expect(refused({ 'qom-type': 'tls-creds-psk', id: 'psk2', dir: pki.psk, endpoint: 'client', username: 'nobody' }))
      .to.equal(`Username nobody not found in pre-shared key file ${join(pki.psk, 'keys.psk')}`);
    const bad = mkdtempSync(join(dir, 'psk-'));
    writeFileSync(join(bad, 'keys.psk'), 'qemu:not-hex\n');
    expect(refused({ 'qom-type': 'tls-creds-psk', id: 'psk3', dir: bad, endpoint: 'server' })).to.equal(`Unable to load ${join(bad, 'keys.psk')}: line 1 is not username:hexkey`);
    objects.add({ 'qom-type': 'tls-creds-anon', id: 'anon0', endpoint: 'server' });
  });

  it('refuses the properties it cannot honour rather than ignore them', () => {
    expect(refused({ 'qom-type': 'tls-creds-x509', id: 'p', dir: pki.server, endpoint: 'server', priority: 'NORMAL' }))
      .to.equal("Property 'priority' of tls-creds-x509 is not supported by livemig: it is a GnuTLS priority string, and livemig's TLS is Node's OpenSSL");
    expect(refused({ 'qom-type': 'tls-creds-anon', id: 'a', dir: pki.server, endpoint: 'server' }))
      .to.equal("Property 'dir' of tls-creds-anon is not supported by livemig: its only use (dh-params.pem) does not apply to Node's TLS");
  });

  it('authorises as QEMU does: one identity, a list of exact and glob rules in order, a list file read again when it changes', async () => {
    const simple = authzOf(objects.add({ 'qom-type': 'authz-simple', id: 'a0', identity: pki.clientName }));
    expect(simple.isAllowed(pki.clientName)).to.equal(true);
    expect(simple.isAllowed('CN=stranger,O=elsewhere')).to.equal(false);
    const list = authzOf(objects.add({
      'qom-type': 'authz-list', id: 'a1', policy: 'deny',
      rules: [{ match: 'CN=bad,O=livemig', policy: 'deny' }, { match: '*O=livemig', policy: 'allow', format: 'glob' }],
    }));
    expect([pki.clientName, 'CN=bad,O=livemig', 'CN=x,O=other'].map((who) => list.isAllowed(who))).to.deep.equal([true, false, false]);
    const file = join(dir, 'authz.json');
    writeFileSync(file, JSON.stringify({ policy: 'deny', rules: [{ match: pki.clientName, policy: 'allow' }] }));
    const listed = authzOf(objects.add({ 'qom-type': 'authz-listfile', id: 'a2', filename: file, refresh: true }));
    expect(listed.isAllowed(pki.clientName)).to.equal(true);
    writeFileSync(file, JSON.stringify({ policy: 'deny', rules: [] }));
    const deadline = Date.now() + 5000;
    while (listed.isAllowed(pki.clientName) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(listed.isAllowed(pki.clientName), 'the rewritten file is in force').to.equal(false);
    writeFileSync(join(dir, 'bad.json'), '{"rules": [{"match": 1}]}');
    expect(refused({ 'qom-type': 'authz-listfile', id: 'a3', filename: join(dir, 'bad.json') }))
      .to.equal(`Authorization list ${join(dir, 'bad.json')}: rule 0 is not {"match": string, "policy": "allow"|"deny", "format"?: "exact"|"glob"}`);
  });

  it('will not delete an object a running migration uses', () => {
    const used = new UserObjects((id) => id === 'tls0');
    used.add({ 'qom-type': 'tls-creds-anon', id: 'tls0', endpoint: 'client' });
    expect(() => used.del('tls0')).to.throw("object 'tls0' is in use, can not be deleted");
    used.add({ 'qom-type': 'tls-creds-anon', id: 'tls1', endpoint: 'client' });
    used.del('tls1');
    expect(used.list().map((o) => o.id)).to.deep.equal(['tls0']);
  });

  it("reads --object as QEMU's -object: keyval with on/off and doubled commas, or JSON", () => {
    expect(parseObjectFlag('tls-creds-x509,id=tls0,dir=/etc/pki,,x,endpoint=server,verify-peer=off')).to.deep.equal({
      'qom-type': 'tls-creds-x509', id: 'tls0', dir: '/etc/pki,x', endpoint: 'server', 'verify-peer': false,
    });
    expect(parseObjectFlag('{"qom-type": "authz-list", "id": "a", "rules": []}')).to.deep.equal({ 'qom-type': 'authz-list', id: 'a', rules: [] });
    expect(() => parseObjectFlag('tls-creds-x509,id=t,verify-peer=maybe')).to.throw("verify-peer='maybe' is not on or off");
    expect(() => parseObjectFlag('{"qom-type": ')).to.throw(/not valid JSON/);
  });

  describe('over QMP and the command line', () => {
    afterEach(stopAllInstances);

    it('object-add and object-del, and --object at start', async () => {
      const vm = await startInstance(['--ram', '16M', '--object', `tls-creds-x509,id=tls0,dir=${pki.server},endpoint=server`], { name: 'objects' });
      expect(await refusal(vm.qmp.execute('object-add', { 'qom-type': 'tls-creds-x509', id: 'tls0', dir: pki.server, endpoint: 'server' })))
        .to.deep.equal({ class: 'GenericError', desc: "attempt to add duplicate property 'tls0' to object (type 'container')" });
      await vm.qmp.execute('object-add', { 'qom-type': 'authz-simple', id: 'auth0', identity: pki.clientName });
      await vm.qmp.execute('object-del', { id: 'tls0' });
      await vm.qmp.execute('object-add', { 'qom-type': 'tls-creds-x509', id: 'tls0', dir: pki.client, endpoint: 'client' });
      expect((await refusal(vm.qmp.execute('object-del', { id: 'nothere' }))).desc).to.equal("object 'nothere' not found");
      expect((await refusal(vm.qmp.execute('object-add', { 'qom-type': 'tls-creds-x509', id: 'x', dir: 5 }))).desc).to.equal("Invalid parameter type for 'dir', expected: string");
    });
  });
});

/** A PEM file of a test directory, by its role. */
function pem(what: 'ca' | 'server-cert', at: string): string {
  return readFileSync(join(at, what === 'ca' ? 'ca-cert.pem' : 'server-cert.pem'), 'utf8');
}
