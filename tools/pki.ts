/**
 * Credentials made on the spot for tests, the demo and the benchmark
 * (never committed): a CA, server and client certificates signed by it, in
 * QEMU's file names, and PSK files. Built with @peculiar/x509 over Node's
 * WebCrypto. Subjects are written outermost first (ASN.1 order), so their
 * RFC 4514 form — what tls-authz matches — reads CN first, as gnutls prints it.
 */
import * as x509 from '@peculiar/x509';
import { randomBytes, webcrypto } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

x509.cryptoProvider.set(webcrypto as never);

const ALG = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;
const DAY = 24 * 3600 * 1000;

interface Issued {
  cert: x509.X509Certificate;
  keys: webcrypto.CryptoKeyPair;
}

async function keyPem(key: webcrypto.CryptoKey): Promise<string> {
  const der = await webcrypto.subtle.exportKey('pkcs8', key);
  return x509.PemConverter.encode(der, 'PRIVATE KEY');
}

let serial = 1;

/** A 256-bit pre-shared key, as QEMU's keys.psk holds it (hex). */
function randomHex(): string {
  return randomBytes(32).toString('hex');
}

async function issue(subject: string, options: { issuer?: Issued; ca?: boolean; server?: string[]; expired?: boolean }): Promise<Issued> {
  const keys = await webcrypto.subtle.generateKey(ALG, true, ['sign', 'verify']);
  const now = Date.now();
  const extensions: x509.Extension[] = [new x509.BasicConstraintsExtension(options.ca === true, undefined, true)];
  if (options.ca) extensions.push(new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true));
  else {
    extensions.push(new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment, true));
    extensions.push(new x509.ExtendedKeyUsageExtension([options.server ? x509.ExtendedKeyUsage.serverAuth : x509.ExtendedKeyUsage.clientAuth]));
  }
  if (options.server) extensions.push(new x509.SubjectAlternativeNameExtension(options.server.map((h) => (/^[\d.]+$/.test(h) ? { type: 'ip', value: h } : { type: 'dns', value: h }))));
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: (serial++).toString(16).padStart(2, '0'),
    subject,
    issuer: options.issuer?.cert.subject ?? subject,
    notBefore: new Date(now - (options.expired ? 3 : 1) * DAY),
    notAfter: new Date(now + (options.expired ? -1 : 1) * DAY),
    signingAlgorithm: ALG,
    publicKey: keys.publicKey as never,
    signingKey: (options.issuer?.keys ?? keys).privateKey as never,
    extensions,
  });
  return { cert, keys };
}

export interface TestPki {
  /** A directory per purpose, each with QEMU's file names. */
  server: string;
  client: string;
  /** A client with the CA's certificate and none of its own. */
  anonymousClient: string;
  /** A client whose certificate another CA signed. */
  strangerClient: string;
  /** A client the same CA signed, under another name (for tls-authz to refuse). */
  hostileClient: string;
  /** A server whose certificate another CA signed (that CA is its ca-cert.pem). */
  strangerServer: string;
  /** A server directory whose server-cert.pem has expired. */
  expiredServer: string;
  /** keys.psk with users "qemu" and "other". */
  psk: string;
  /** keys.psk where "qemu" has another key. */
  wrongPsk: string;
  /** The client certificates' distinguished names, as tls-authz sees them. */
  clientName: string;
  hostileName: string;
}

/** Writes a PKI under `dir`: the server's certificate is for `hosts` (e.g. localhost, 127.0.0.1). */
export async function makeTestPki(dir: string, hosts = ['localhost', '127.0.0.1']): Promise<TestPki> {
  const ca = await issue('CN=livemig test CA', { ca: true });
  const otherCa = await issue('CN=someone else', { ca: true });
  const server = await issue('O=livemig,CN=livemig destination', { issuer: ca, server: hosts });
  const expired = await issue('O=livemig,CN=livemig destination', { issuer: ca, server: hosts, expired: true });
  const client = await issue('O=livemig,CN=livemig source', { issuer: ca });
  const hostile = await issue('O=livemig,CN=intruder', { issuer: ca });
  const stranger = await issue('O=elsewhere,CN=stranger', { issuer: otherCa });
  const strangerServer = await issue('O=elsewhere,CN=stranger', { issuer: otherCa, server: hosts });
  const write = async (name: string, files: Record<string, Issued | string>) => {
    const at = join(dir, name);
    mkdirSync(at, { recursive: true, mode: 0o700 });
    for (const [file, what] of Object.entries(files)) {
      const text = typeof what === 'string' ? what : file.endsWith('-key.pem') ? await keyPem(what.keys.privateKey) : what.cert.toString('pem');
      writeFileSync(join(at, file), `${text}\n`, { mode: 0o600 });
    }
    return at;
  };
  return {
    server: await write('server', { 'ca-cert.pem': ca, 'server-cert.pem': server, 'server-key.pem': server }),
    client: await write('client', { 'ca-cert.pem': ca, 'client-cert.pem': client, 'client-key.pem': client }),
    anonymousClient: await write('anonymous', { 'ca-cert.pem': ca }),
    strangerClient: await write('stranger', { 'ca-cert.pem': ca, 'client-cert.pem': stranger, 'client-key.pem': stranger }),
    strangerServer: await write('stranger-server', { 'ca-cert.pem': otherCa, 'server-cert.pem': strangerServer, 'server-key.pem': strangerServer }),
    hostileClient: await write('hostile', { 'ca-cert.pem': ca, 'client-cert.pem': hostile, 'client-key.pem': hostile }),
    expiredServer: await write('expired', { 'ca-cert.pem': ca, 'server-cert.pem': expired, 'server-key.pem': expired }),
    psk: await write('psk', { 'keys.psk': `qemu:${randomHex()}\nother:${randomHex()}` }),
    wrongPsk: await write('wrong-psk', { 'keys.psk': `qemu:${randomHex()}` }),
    clientName: 'CN=livemig source,O=livemig',
    hostileName: 'CN=intruder,O=livemig',
  };
}
