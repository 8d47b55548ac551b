/**
 * TLS sessions as migration connections use them (protocols/transport/tls.ts),
 * over real loopback sockets with credentials loaded the way tls-creds
 * objects load them: each case checks both ends' errors, word for word
 * where QEMU has the words.
 */
import { expect } from 'chai';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { authzList } from '../actors/objects/authz.js';
import { loadPsk, loadX509 } from '../actors/objects/tls-creds.js';
import { secureClient, secureServer, type TlsClient, type TlsServer } from '../protocols/tls/session.js';
import { makeTestPki, type TestPki } from '../tools/pki.js';

interface Outcome {
  client: string;
  server: string;
}

/** One connection: the client's and the server's outcome ("ok", or the error), and on success one byte each way. */
async function attempt(client: TlsClient, server: TlsServer, options: { plainClient?: boolean; plainServer?: boolean } = {}): Promise<Outcome> {
  let serverDone!: Promise<string>;
  const listener = net.createServer({ pauseOnConnect: true }, (socket) => {
    serverDone = options.plainServer
      ? new Promise((resolve) => {
        socket.resume();
        socket.once('data', () => {
          socket.destroy();
          resolve('plain bytes');
        });
      })
      : secureServer(socket, server, { timeoutMs: 3000 }).then(
        (s) => new Promise<string>((resolve) => {
          s.once('data', (d: Buffer) => {
            s.end(d);
            resolve('ok');
          });
        }),
        (err: Error) => err.message,
      );
  });
  await new Promise<void>((resolve) => listener.listen(0, '127.0.0.1', resolve));
  const port = (listener.address() as net.AddressInfo).port;
  const socket = net.connect({ port, host: '127.0.0.1' });
  await new Promise((resolve) => socket.once('connect', resolve));
  let clientOutcome: string;
  if (options.plainClient) {
    socket.write(Buffer.alloc(32, 0x51));
    clientOutcome = await new Promise((resolve) => socket.once('close', () => resolve('closed')));
  } else {
    clientOutcome = await secureClient(socket, client, 3000).then(
      (s) => new Promise<string>((resolve) => {
        s.write('x');
        s.once('data', () => {
          s.destroy();
          resolve('ok');
        });
      }),
      (err: Error) => err.message,
    );
  }
  const serverOutcome = await serverDone;
  socket.destroy();
  listener.close();
  return { client: clientOutcome, server: serverOutcome };
}

describe('TLS sessions of migration connections', function () {
  this.timeout(20_000);
  let dir: string;
  let pki: TestPki;
  let server: TlsServer;
  const client = (d: string, hostname = 'localhost'): TlsClient => ({ creds: loadX509(d, 'client', true, true), hostname });

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'tls-session-'));
    pki = await makeTestPki(dir);
    server = { creds: loadX509(pki.server, 'server', true, true) };
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  describe('x509', () => {
    it('connects with the host name or address the certificate names', async () => {
      expect(await attempt(client(pki.client), server)).to.deep.equal({ client: 'ok', server: 'ok' });
      expect(await attempt(client(pki.client, '127.0.0.1'), server)).to.deep.equal({ client: 'ok', server: 'ok' });
    });

    it('refuses a host name the certificate does not name; the destination hears the source hang up', async () => {
      const r = await attempt(client(pki.client, 'other.example'), server);
      expect(r.client).to.equal('Certificate does not match the hostname other.example');
      expect(r.server).to.match(/^TLS handshake failed: the source hung up during the handshake: it did not accept this destination's certificate/);
    });

    it('refuses with no host name to check', async () => {
      expect((await attempt({ ...client(pki.client), hostname: undefined }, server)).client).to.equal('No hostname for certificate validation');
    });

    it('refuses a destination certificate from another CA', async () => {
      const r = await attempt(client(pki.client), { creds: loadX509(pki.strangerServer, 'server', true, true) });
      expect(r.client).to.equal("The certificate hasn't got a known issuer");
      expect(r.server).to.match(/^TLS handshake failed: the source hung up during the handshake: it did not accept this destination's certificate/);
    });

    it('refuses a client without a certificate when verify-peer is on, and takes it when off', async () => {
      const anonymous = { creds: loadX509(pki.anonymousClient, 'client', true, true), hostname: 'localhost' };
      const r = await attempt(anonymous, server);
      expect(r.server).to.equal('Verify failed: No certificate was found.');
      expect(r.client).to.match(/^TLS handshake failed: the destination refused this source's credentials/);
      expect(await attempt(anonymous, { creds: loadX509(pki.server, 'server', false, true) })).to.deep.equal({ client: 'ok', server: 'ok' });
    });

    it('refuses a client certificate from another CA', async () => {
      const r = await attempt({ creds: loadX509(pki.strangerClient, 'client', true, false), hostname: 'localhost' }, server);
      expect(r.server).to.equal("The certificate hasn't got a known issuer");
    });

    it('checks the client name against tls-authz: a friendly client passes, a hostile one is refused', async () => {
      const authz = authzList([{ match: pki.clientName, policy: 'allow', format: 'exact' }], 'deny');
      const guarded = { ...server, authorize: (dn: string) => authz.isAllowed(dn) };
      expect(await attempt(client(pki.client), guarded)).to.deep.equal({ client: 'ok', server: 'ok' });
      const r = await attempt(client(pki.hostileClient), guarded);
      expect(r.server).to.equal(`TLS x509 authz check for ${pki.hostileName} is denied`);
      expect(r.client).to.match(/^TLS handshake failed: the destination refused this source's credentials/);
    });
  });

  describe('psk', () => {
    it('connects when the keys match', async () => {
      const r = await attempt({ creds: loadPsk(pki.psk, 'client', 'qemu'), hostname: undefined }, { creds: loadPsk(pki.psk, 'server', 'qemu') });
      expect(r).to.deep.equal({ client: 'ok', server: 'ok' });
    });

    it('fails on both ends when they do not', async () => {
      const r = await attempt({ creds: loadPsk(pki.wrongPsk, 'client', 'qemu'), hostname: undefined }, { creds: loadPsk(pki.psk, 'server', 'qemu') });
      expect(r.server).to.match(/^TLS handshake failed: the source's pre-shared key does not match this destination's \(a PSK mismatch/);
      expect(r.client).to.match(/^TLS handshake failed: the destination did not accept the pre-shared key of 'qemu' \(a PSK mismatch/);
    });
  });

  it('anon: connects with anonymous credentials on both ends', async () => {
    expect(await attempt({ creds: { kind: 'tls-creds-anon' }, hostname: undefined }, { creds: { kind: 'tls-creds-anon' } })).to.deep.equal({ client: 'ok', server: 'ok' });
  });

  it('a client that connects and says nothing is dropped after the handshake timeout', async () => {
    const listener = net.createServer({ pauseOnConnect: true });
    const outcome = new Promise<string>((resolve) => {
      listener.once('connection', (socket) => void secureServer(socket, server, { timeoutMs: 300 }).then(() => 'ok', (err: Error) => err.message).then(resolve));
    });
    await new Promise<void>((resolve) => listener.listen(0, '127.0.0.1', resolve));
    const silent = net.connect({ port: (listener.address() as net.AddressInfo).port, host: '127.0.0.1' });
    expect(await outcome).to.equal('TLS handshake failed: no answer within 0.3 s');
    silent.destroy();
    listener.close();
  });

  it('a plaintext source meets a TLS destination: the destination says the source is not speaking TLS', async () => {
    const r = await attempt(client(pki.client), server, { plainClient: true });
    expect(r.server).to.match(/^TLS handshake failed: the source is not speaking TLS/);
  });

  it('a TLS source meets a plaintext destination: the source says the destination hung up mid-handshake', async () => {
    const r = await attempt(client(pki.client), server, { plainServer: true });
    expect(r.client).to.match(/^TLS handshake failed: the destination closed the connection during the handshake/);
  });
});
