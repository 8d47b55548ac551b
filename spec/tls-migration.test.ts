/**
 * Migration over TLS between real `livemig run` processes, QEMU's TLS test
 * matrix (tests/qtest/migration-test.c) in precopy, multifd and postcopy
 * with preempt: PSK match and mismatch; x509 with the URI's host, an
 * overridden host, a mismatched host, a friendly and a hostile client, an
 * anonymous client allowed and refused. A matching case passes the ab check on the
 * destination; a mismatching one fails on both sides, each naming the cause,
 * with the source guest running on intact. A wire capture shows that no
 * guest byte crosses in plain text.
 */
import { expect } from 'chai';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FaultProxy } from './support/fault-proxy.js';
import { startInstance, stopAllInstances, type TestInstance } from './support/instances.js';
import { UNLIMITED, abCheckStopped, boundTcpUri, queryMigrate, runState, waitForMigration, type MigrateInfo } from './support/migration-driver.js';
import { scratchDirPerTest } from './support/scratch-dir.js';
import { makeTestPki, type TestPki } from '../tools/pki.js';

const MiB = 1 << 20;
const AB_START = 1 * MiB;
const AB_END = 24 * MiB;
const GUEST = ['--ram', '64M', '--smp', '1'];
const SOURCE = [...GUEST, '--workload', 'ab', '--ab-start', '1M', '--ab-end', '24M', ...UNLIMITED];
/** Written into the source's RAM (outside the ab range) for the wire capture to look for. */
const SECRET = Buffer.from('livemig guest secret: 7c1f0e93d2a4b658');
const SECRET_AT = 40 * MiB;
/** The channel hello's magic, "LVMG", as it crosses. */
const STREAM_MAGIC = Buffer.from('LVMG');

interface Side {
  /** --object flags (keyval) and parameters set before the migration. */
  objects: string[];
  params?: Record<string, string | number>;
  caps?: string[];
}

interface Pair {
  source: TestInstance;
  destination: TestInstance;
  uri: string;
}

/** A destination kept up after a failed load (exit-on-error off), so its error can be read. */
async function startPair(src: Side, dst: Side): Promise<Pair> {
  const objects = (side: Side) => side.objects.flatMap((o) => ['--object', o]);
  const caps = (side: Side) => (side.caps ?? []).flatMap((c) => ['--cap', c]);
  const [destination, source] = await Promise.all([
    startInstance([...GUEST, ...objects(dst), ...caps(dst), '--incoming', 'defer'], { name: 'dst' }),
    startInstance([...SOURCE, ...objects(src), ...caps(src)], { name: 'src' }),
  ]);
  // A side with credentials uses them (tls0); a side without is plaintext.
  const params = (side: Side) => ({ 'tls-creds': side.objects.length > 0 ? 'tls0' : '', ...side.params });
  await destination.qmp.execute('migrate-set-parameters', params(dst));
  await source.qmp.execute('migrate-set-parameters', params(src));
  await destination.qmp.execute('migrate-incoming', { uri: 'tcp:127.0.0.1:0', 'exit-on-error': false });
  return { source, destination, uri: await boundTcpUri(destination.qmp) };
}

async function expectMigrated({ source, destination }: Pair): Promise<void> {
  const done = await waitForMigration(source.qmp, ['completed', 'failed']);
  expect(done.status, done['error-desc']).to.equal('completed');
  const arrived = await waitForMigration(destination.qmp, ['completed', 'failed']);
  expect(arrived.status, arrived['error-desc']).to.equal('completed');
  const report = await abCheckStopped(destination, AB_START, AB_END);
  expect(report.touched, 'the ab range was never written').to.equal(true);
  expect(report.badPages).to.deep.equal([]);
}

/** Both sides failed, each with its own cause; the source guest runs on, intact. */
async function expectRefused({ source, destination }: Pair): Promise<{ source: string; destination: string }> {
  const [src, dst] = await Promise.all([
    waitForMigration(source.qmp, ['completed', 'failed']),
    waitForMigration(destination.qmp, ['completed', 'failed']),
  ]) as [MigrateInfo, MigrateInfo];
  expect([src.status, dst.status]).to.deep.equal(['failed', 'failed']);
  expect(await runState(source.qmp)).to.equal('running');
  const report = await abCheckStopped(source, AB_START, AB_END);
  expect(report.badPages).to.deep.equal([]);
  return { source: src['error-desc']!, destination: dst['error-desc']! };
}

describe('migration over TLS (real processes, 64 MiB ab guest)', function () {
  this.timeout(60_000);
  let pki: TestPki;
  const scratch = scratchDirPerTest('livemig-tls-', stopAllInstances);
  let pkiDir: string;
  before(async () => {
    pkiDir = mkdtempSync(join(tmpdir(), 'livemig-tls-pki-'));
    pki = await makeTestPki(pkiDir);
  });
  after(() => rmSync(pkiDir, { recursive: true, force: true }));

  const x509Server = (verifyPeer = true) => `tls-creds-x509,id=tls0,dir=${pki.server},endpoint=server,verify-peer=${verifyPeer ? 'on' : 'off'}`;
  const x509Client = (dir = pki.client) => `tls-creds-x509,id=tls0,dir=${dir},endpoint=client`;

  /**
   * The matrix runs in each mode: precopy on the main channel alone; multifd,
   * whose every channel is TLS; postcopy with preempt, switched once the
   * migration runs (its main, return path and preempt channels TLS).
   */
  const MODES = [
    { name: 'precopy', caps: [] as string[] },
    { name: 'multifd', caps: ['multifd'] },
    { name: 'postcopy with preempt', caps: ['postcopy-ram', 'postcopy-preempt'] },
  ].map(({ name, caps }) => ({
    name,
    pair: (src: Side, dst: Side) => startPair(
      // Postcopy: a precopy that cannot converge (slower than the guest dirties, a 1 ms downtime-limit), so the switch is what completes it.
      { ...src, caps, params: { ...(caps.includes('postcopy-ram') ? { 'max-bandwidth': 20_000_000, 'downtime-limit': 1 } : {}), ...src.params } },
      { ...dst, caps },
    ),
    migrated: async (pair: Pair) => {
      await pair.source.qmp.execute('migrate', { uri: pair.uri });
      if (caps.includes('postcopy-ram')) {
        await waitForMigration(pair.source.qmp, ['active']);
        await pair.source.qmp.execute('migrate-start-postcopy');
      }
      await expectMigrated(pair);
      const info = await queryMigrate(pair.source.qmp);
      if (caps.includes('multifd')) expect(info.ram?.['multifd-bytes'] ?? 0, 'pages went over the multifd channels').to.be.above(0);
      if (caps.includes('postcopy-ram')) expect(info.ram?.['postcopy-bytes'] ?? 0, 'pages went after the switch').to.be.above(0);
    },
  }));

  for (const mode of MODES) describe(mode.name, () => {
    describe('psk', () => {
      it('keys that match: the guest moves', async () => {
        const pair = await mode.pair(
          { objects: [`tls-creds-psk,id=tls0,dir=${pki.psk},endpoint=client,username=qemu`] },
          { objects: [`tls-creds-psk,id=tls0,dir=${pki.psk},endpoint=server`] },
        );
        await mode.migrated(pair);
      });

      it('keys that differ: both sides fail, saying it is the pre-shared key', async () => {
        const pair = await mode.pair(
          { objects: [`tls-creds-psk,id=tls0,dir=${pki.wrongPsk},endpoint=client,username=qemu`] },
          { objects: [`tls-creds-psk,id=tls0,dir=${pki.psk},endpoint=server`] },
        );
        await pair.source.qmp.execute('migrate', { uri: pair.uri });
        const errors = await expectRefused(pair);
        expect(errors.source).to.match(/the destination did not accept the pre-shared key of 'qemu' \(a PSK mismatch/);
        expect(errors.destination).to.match(/the source's pre-shared key does not match this destination's \(a PSK mismatch/);
      });
    });

    describe('x509', () => {
      it("the URI's host is checked against the certificate by default", async () => {
        const pair = await mode.pair({ objects: [x509Client()] }, { objects: [x509Server()] });
        await mode.migrated(pair);
      });

      it('tls-hostname overrides the host checked', async () => {
        const pair = await mode.pair({ objects: [x509Client()], params: { 'tls-hostname': 'localhost' } }, { objects: [x509Server()] });
        await mode.migrated(pair);
      });

      it('a host the certificate does not name: the source says so, the destination that the source hung up', async () => {
        const pair = await mode.pair({ objects: [x509Client()], params: { 'tls-hostname': 'other.example' } }, { objects: [x509Server()] });
        await pair.source.qmp.execute('migrate', { uri: pair.uri });
        const errors = await expectRefused(pair);
        expect(errors.source).to.equal('Certificate does not match the hostname other.example');
        expect(errors.destination).to.match(/the source hung up during the handshake: it did not accept this destination's certificate/);
      });

      it('a friendly client passes tls-authz', async () => {
        const pair = await mode.pair(
          { objects: [x509Client()] },
          { objects: [x509Server(), `authz-simple,id=authz0,identity=${pki.clientName.replace(/,/g, ',,')}`], params: { 'tls-authz': 'authz0' } },
        );
        await mode.migrated(pair);
      });

      it('a hostile client (a good certificate, a name not on the list) is refused by tls-authz', async () => {
        const pair = await mode.pair(
          { objects: [x509Client(pki.hostileClient)] },
          { objects: [x509Server(), `authz-simple,id=authz0,identity=${pki.clientName.replace(/,/g, ',,')}`], params: { 'tls-authz': 'authz0' } },
        );
        await pair.source.qmp.execute('migrate', { uri: pair.uri });
        const errors = await expectRefused(pair);
        expect(errors.destination).to.equal(`load of migration failed: TLS x509 authz check for ${pki.hostileName} is denied`);
        expect(errors.source).to.match(/the destination refused this source's credentials/);
      });

      it('an anonymous client (no certificate) is taken when verify-peer is off', async () => {
        const pair = await mode.pair({ objects: [x509Client(pki.anonymousClient)] }, { objects: [x509Server(false)] });
        await mode.migrated(pair);
      });

      it('an anonymous client is refused when verify-peer is on', async () => {
        const pair = await mode.pair({ objects: [x509Client(pki.anonymousClient)] }, { objects: [x509Server(true)] });
        await pair.source.qmp.execute('migrate', { uri: pair.uri });
        const errors = await expectRefused(pair);
        expect(errors.destination).to.equal('load of migration failed: Verify failed: No certificate was found.');
        expect(errors.source).to.match(/the destination refused this source's credentials/);
      });

    });

  });

  it('a plaintext source meets a TLS destination: both fail, the destination saying the source is not speaking TLS', async () => {
    const pair = await startPair({ objects: [] }, { objects: [x509Server()] });
    await pair.source.qmp.execute('migrate', { uri: pair.uri });
    const errors = await expectRefused(pair);
    expect(errors.destination).to.match(/the source is not speaking TLS/);
  });

  it('a TLS source meets a plaintext destination: both fail, the destination saying the source speaks TLS', async () => {
    const pair = await startPair({ objects: [x509Client()] }, { objects: [] });
    await pair.source.qmp.execute('migrate', { uri: pair.uri });
    const errors = await expectRefused(pair);
    expect(errors.destination).to.match(/the source speaks TLS/);
    expect(errors.source).to.match(/the destination closed the connection during the handshake/);
  });

  it('tls-creds naming no object, or server credentials on the source: the migration fails with QEMU\'s text', async () => {
    const source = await startInstance([...SOURCE, '--object', x509Server()], { name: 'src' });
    await source.qmp.execute('migrate-set-parameters', { 'tls-creds': 'nope' });
    await source.qmp.execute('migrate', { uri: 'tcp:127.0.0.1:9' });
    expect((await waitForMigration(source.qmp, ['failed']))['error-desc']).to.equal("No TLS credentials with id 'nope'");
    await source.qmp.execute('migrate-set-parameters', { 'tls-creds': 'tls0' });
    await source.qmp.execute('migrate', { uri: 'tcp:127.0.0.1:9' });
    expect((await waitForMigration(source.qmp, ['failed']))['error-desc']).to.equal('Expected TLS credentials for a client endpoint');
    expect(await runState(source.qmp)).to.equal('running');
  });

  describe('exec: (the command\'s stdin and stdout are the channel, as in QEMU)', () => {
    /** A command that joins its stdin and stdout to the destination's port. */
    const through = (uri: string) => {
      const port = /:(\d+)$/.exec(uri)![1];
      // A reset or a write after the destination hung up is no failure of the relay: it exits 0 once both ends are done.
      const js = `const s=require('net').connect(${port},'127.0.0.1');process.stdin.pipe(s);s.pipe(process.stdout);` +
        `s.on('error',()=>s.destroy());process.stdout.on('error',()=>{})`;
      return `exec:${process.execPath} -e "${js}"`;
    };

    it('with tls-hostname the certificate is checked against it, and the guest moves', async () => {
      const pair = await startPair({ objects: [x509Client()], params: { 'tls-hostname': 'localhost' } }, { objects: [x509Server()] });
      await pair.source.qmp.execute('migrate', { uri: through(pair.uri) });
      await expectMigrated(pair);
    });

    it('without it there is no name to check, and the migration fails as QEMU\'s does', async () => {
      const pair = await startPair({ objects: [x509Client()] }, { objects: [x509Server()] });
      await pair.source.qmp.execute('migrate', { uri: through(pair.uri) });
      const errors = await expectRefused(pair);
      expect(errors.source).to.equal('No hostname for certificate validation');
    });
  });

  it('file: cannot carry TLS: the migration fails saying so, and the guest runs on', async () => {
    const source = await startInstance([...SOURCE, '--object', x509Client()], { name: 'src' });
    await source.qmp.execute('migrate-set-parameters', { 'tls-creds': 'tls0' });
    await source.qmp.execute('migrate', { uri: `file:${join(scratch(), 'guest.img')}` });
    expect((await waitForMigration(source.qmp, ['failed']))['error-desc']).to.match(/^TLS cannot run over file:, as a TLS handshake needs a two-way channel/);
    expect(await runState(source.qmp)).to.equal('running');
  });

  it('wire capture: with TLS no guest byte crosses in plain text (the same capture of a plaintext migration finds them)', async () => {
    const capture = async (tls: boolean): Promise<Buffer> => {
      const pair = await startPair({ objects: tls ? [x509Client()] : [] }, { objects: tls ? [x509Server()] : [] });
      for (const [i, byte] of SECRET.entries()) await pair.source.qmp.execute('__org.livemig_guest-write', { address: SECRET_AT + i, value: byte });
      const target = new URL(pair.uri.replace(/^tcp:/, 'tcp://'));
      const proxy = await FaultProxy.start({ host: target.hostname, port: Number(target.port) }, { capture: true });
      try {
        await pair.source.qmp.execute('migrate', { uri: proxy.uri });
        await expectMigrated(pair);
        return proxy.captured();
      } finally {
        await proxy.close();
        await stopAllInstances();
      }
    };
    const plain = await capture(false);
    expect(plain.includes(SECRET), 'the plaintext capture shows the guest bytes: the check can fail').to.equal(true);
    expect(plain.includes(STREAM_MAGIC), 'the plaintext capture shows the stream magic').to.equal(true);
    const secure = await capture(true);
    expect(secure.length, 'the TLS capture holds the guest').to.be.above(AB_END - AB_START);
    expect(secure.includes(SECRET), 'guest bytes crossed in plain text').to.equal(false);
    expect(secure.includes(STREAM_MAGIC), 'stream framing crossed in plain text').to.equal(false);
  });
});
