/**
 * QEMU's TLS credential objects: tls-creds-x509, tls-creds-psk and
 * tls-creds-anon, loaded (and checked) when they are created, as QEMU
 * loads them, from QEMU's file names in `dir`.
 */
import { X509Certificate, createPrivateKey, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { strerror } from '../../protocols/qmp/strerror.js';
import type { TlsCredentials } from '../../protocols/tls/session.js';

export type TlsEndpoint = 'client' | 'server';

type Session<K extends TlsCredentials['kind']> = Extract<TlsCredentials, { kind: K }>;

/** PEM texts as Node's tls takes them, from `dir`. */
export type TlsCredsX509 = Session<'tls-creds-x509'> & { endpoint: TlsEndpoint; dir: string };

/** `username` is the client's identity (QEMU's default: qemu); a server takes any identity in keys.psk. */
export type TlsCredsPsk = Session<'tls-creds-psk'> & { endpoint: TlsEndpoint; dir: string };

export type TlsCredsAnon = Session<'tls-creds-anon'> & { endpoint: TlsEndpoint };

/** A credentials object: what a TLS session needs, and which end it is for. */
export type TlsCreds = TlsCredsX509 | TlsCredsPsk | TlsCredsAnon;

/** A credentials file: required ones must be there (QEMU's text), optional ones may be missing. */
function readCredential(dir: string, file: string, required: true): string;
function readCredential(dir: string, file: string, required: boolean): string | undefined;
function readCredential(dir: string, file: string, required: boolean): string | undefined {
  const path = join(dir, file);
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    if (!required && (err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new Error(`Unable to access credentials ${path}: ${strerror(err as NodeJS.ErrnoException)}`);
  }
}

function certificate(dir: string, file: string, pem: string): X509Certificate {
  try {
    return new X509Certificate(pem);
  } catch (err) {
    throw new Error(`Unable to load certificate ${join(dir, file)}: ${(err as Error).message}`);
  }
}

function privateKey(dir: string, file: string, pem: string): KeyObject {
  try {
    return createPrivateKey(pem);
  } catch (err) {
    throw new Error(`Unable to load private key ${join(dir, file)}: ${(err as Error).message}`);
  }
}

/**
 * tls-creds-x509: a server needs ca-cert.pem, server-cert.pem and
 * server-key.pem (ca-crl.pem optional); a client ca-cert.pem, and
 * client-cert.pem with client-key.pem if it is to present one. With
 * sanity-check (the default, as in QEMU) the certificates are checked:
 * the CA is a CA, each certificate is signed by it and valid now, and each
 * key matches its certificate.
 */
export function loadX509(dir: string, endpoint: TlsEndpoint, verifyPeer: boolean, sanityCheck: boolean): TlsCredsX509 {
  const role = endpoint === 'server' ? 'server' : 'client';
  const ca = readCredential(dir, 'ca-cert.pem', true);
  const crl = endpoint === 'server' ? readCredential(dir, 'ca-crl.pem', false) : undefined;
  const cert = readCredential(dir, `${role}-cert.pem`, endpoint === 'server');
  const key = readCredential(dir, `${role}-key.pem`, endpoint === 'server');
  if ((cert === undefined) !== (key === undefined)) {
    throw new Error(`Unable to load credentials in ${dir}: ${role}-cert.pem and ${role}-key.pem go together, and only one is there`);
  }
  const caCert = certificate(dir, 'ca-cert.pem', ca);
  const own = cert !== undefined ? certificate(dir, `${role}-cert.pem`, cert) : undefined;
  const ownKey = key !== undefined ? privateKey(dir, `${role}-key.pem`, key) : undefined;
  if (sanityCheck) {
    const now = Date.now();
    const valid = (c: X509Certificate, file: string) => {
      if (Date.parse(c.validTo) < now) throw new Error(`The certificate ${join(dir, file)} has expired`);
      if (Date.parse(c.validFrom) > now) throw new Error(`The certificate ${join(dir, file)} is not yet active`);
    };
    valid(caCert, 'ca-cert.pem');
    if (!caCert.ca) throw new Error(`The certificate ${join(dir, 'ca-cert.pem')} is not a CA certificate`);
    if (own) {
      valid(own, `${role}-cert.pem`);
      if (!own.checkIssued(caCert) || !own.verify(caCert.publicKey)) {
        throw new Error(`The certificate ${join(dir, `${role}-cert.pem`)} is not signed by the CA in ${join(dir, 'ca-cert.pem')}`);
      }
      if (!own.checkPrivateKey(ownKey!)) throw new Error(`The private key ${join(dir, `${role}-key.pem`)} does not match ${join(dir, `${role}-cert.pem`)}`);
    }
  }
  return { kind: 'tls-creds-x509', endpoint, verifyPeer, dir, ca, ...(cert ? { cert, key: key! } : {}), ...(crl ? { crl } : {}) };
}

/** tls-creds-psk: keys.psk holds `username:hexkey` lines; a client must find its username there. */
export function loadPsk(dir: string, endpoint: TlsEndpoint, username: string): TlsCredsPsk {
  const file = join(dir, 'keys.psk');
  const text = readCredential(dir, 'keys.psk', true);
  const keys = new Map<string, Buffer>();
  for (const [i, line] of text.split('\n').entries()) {
    if (line.trim() === '') continue;
    const colon = line.indexOf(':');
    const hex = line.slice(colon + 1).trim();
    if (colon <= 0 || !/^(?:[0-9a-fA-F]{2})+$/.test(hex)) throw new Error(`Unable to load ${file}: line ${i + 1} is not username:hexkey`);
    keys.set(line.slice(0, colon), Buffer.from(hex, 'hex'));
  }
  if (endpoint === 'client' && !keys.has(username)) throw new Error(`Username ${username} not found in pre-shared key file ${file}`);
  return { kind: 'tls-creds-psk', endpoint, dir, username, keys };
}
