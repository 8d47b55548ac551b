/**
 * A TLS session as QEMU's crypto/tlssession.c makes one from tls-creds
 * objects, with Node's tls: on migration connections (the source is the
 * client and checks the destination's certificate against a host name; the
 * destination is the server and checks the client's certificate when
 * verify-peer is on, and its distinguished name against tls-authz) and on
 * the monitor. TLS 1.3 is preferred, 1.2 the floor; anonymous credentials
 * need 1.2, the last version with anonymous key exchange.
 *
 * On migration channels one byte follows the handshake from the
 * destination: its verdict on the client. In TLS 1.3 a client finishes its handshake before the server has
 * looked at the client's certificate, so without it a refused source would
 * only see its connection drop, with no cause. The verdict says only
 * "refused", never why: that stays in the destination's error, as QEMU
 * keeps authorisation details from the peer being refused.
 */
import { X509Certificate } from 'node:crypto';
import { isIP } from 'node:net';
import type { EventEmitter } from 'node:events';
import type { Duplex } from 'node:stream';
import tls, { type TLSSocket } from 'node:tls';

/** The credential data a TLS session needs (the tls-creds-* objects carry more). */
export type TlsCredentials =
  | { kind: 'tls-creds-x509'; verifyPeer: boolean; ca: string; cert?: string; key?: string; crl?: string }
  | { kind: 'tls-creds-psk'; username: string; keys: ReadonlyMap<string, Uint8Array> }
  | { kind: 'tls-creds-anon' };

/** The source's side: its credentials and the name the destination's certificate must carry. */
export interface TlsClient {
  creds: TlsCredentials;
  /** tls-hostname, else the URI's host; none on unix:, fd: and exec: without tls-hostname. */
  hostname: string | undefined;
}

/** The destination's side: its credentials and tls-authz, if set. */
export interface TlsServer {
  creds: TlsCredentials;
  /** Whether the client with this distinguished name may connect. */
  authorize?: (distinguishedName: string) => boolean;
}

/** A handshake, including the verdict, that takes longer is a stuck or hostile peer. */
export const TLS_HANDSHAKE_TIMEOUT_MS = 10_000;

/** PSK suites: TLS 1.3's (Node offers them for PSK when a PSK suite is named too) and 1.2's. */
const PSK_CIPHERS = 'TLS_AES_256_GCM_SHA384:TLS_AES_128_GCM_SHA256:TLS_CHACHA20_POLY1305_SHA256:ECDHE-PSK-AES128-CBC-SHA256:PSK-AES256-GCM-SHA384:PSK-AES128-GCM-SHA256';
/** Anonymous Diffie-Hellman: OpenSSL only offers it below its default security level. */
const ANON_CIPHERS = 'ADH-AES256-GCM-SHA384:ADH-AES128-GCM-SHA256:@SECLEVEL=0';

const VERDICT_ACCEPTED = 0;
const VERDICT_REFUSED = 1;

export class TlsError extends Error {}

/** The client's certificate subject as gnutls prints it (RFC 4514: most specific first), which tls-authz rules name. */
export function distinguishedName(cert: X509Certificate): string {
  // Node prints one attribute per line, outermost first, already escaped for RFC 4514.
  return cert.subject.split('\n').reverse().map((rdn) => rdn.replace(/ \+ /g, '+')).join(',');
}

/** QEMU's words for a certificate that does not verify, from OpenSSL's verify codes. */
function certificateProblem(code: string | undefined, message: string): string {
  switch (code) {
    case 'UNABLE_TO_GET_ISSUER_CERT':
    case 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY':
    case 'UNABLE_TO_VERIFY_LEAF_SIGNATURE':
    case 'SELF_SIGNED_CERT_IN_CHAIN':
    case 'DEPTH_ZERO_SELF_SIGNED_CERT':
      return "The certificate hasn't got a known issuer";
    case 'CERT_HAS_EXPIRED':
      return 'The certificate has expired';
    case 'CERT_NOT_YET_VALID':
      return 'The certificate is not yet activated';
    case 'CERT_REVOKED':
      return 'The certificate has been revoked';
    default:
      return `The certificate is not trusted (${message})`;
  }
}

function openSslReason(err: Error): string {
  // OpenSSL's text is "...:SSL routines:function:reason:file:line:": keep the reason.
  const m = /SSL routines:[^:]*:([^:]+):/.exec(err.message);
  return m ? m[1]! : err.message;
}

/** Ends a failed session: what it reports after (a destroyed pipe's abort) is of no one's concern. */
function discard(stream: Duplex): void {
  stream.on('error', () => {});
  stream.destroy();
}

/** What an event means: a result, a failure, or undefined (nothing yet). */
type Meaning<T> = (...args: never[]) => { value: T } | Error | undefined;

/**
 * The first of `outcomes` to mean something, or `timedOut` after
 * `timeoutMs`: every listener is then taken off, and on a failure `stream`
 * is discarded.
 */
function firstOutcome<T>(stream: Duplex, timeoutMs: number, timedOut: () => Error, outcomes: [EventEmitter, string, Meaning<T>][]): Promise<T> {
  return new Promise((resolve, reject) => {
    const settle = (meant: { value: T } | Error) => {
      clearTimeout(timer);
      for (const off of detach) off();
      if (!(meant instanceof Error)) return resolve(meant.value);
      discard(stream);
      reject(meant);
    };
    const detach = outcomes.map(([emitter, event, meaning]) => {
      // Each listener hands its event's own arguments to its own meaning.
      const listener = (...args: unknown[]) => {
        const meant = meaning(...(args as never[]));
        if (meant !== undefined) settle(meant);
      };
      emitter.on(event, listener);
      return () => emitter.off(event, listener);
    });
    const timer = setTimeout(() => settle(timedOut()), timeoutMs);
  });
}

const noAnswer = (timeoutMs: number) => () => new TlsError(`TLS handshake failed: no answer within ${timeoutMs / 1000} s`);

/** Waits for the client's handshake, failing on error, close or the handshake timeout. */
function handshake(socket: TLSSocket, timeoutMs: number, explain: (err: Error) => Error): Promise<void> {
  const hungUp = Object.assign(new Error('the peer closed the connection'), { code: 'ECONNRESET' });
  return firstOutcome<void>(socket, timeoutMs, noAnswer(timeoutMs), [
    [socket, 'secureConnect', () => ({ value: undefined })],
    [socket, 'error', (err: Error) => explain(err)],
    [socket, 'close', () => explain(hungUp)],
  ]);
}

/** Reads the destination's one-byte verdict without taking any byte after it. */
function readVerdict(socket: TLSSocket, timeoutMs: number): Promise<number> {
  return firstOutcome<number>(socket, timeoutMs, () => new TlsError(`TLS handshake failed: the destination gave no verdict within ${timeoutMs / 1000} s`), [
    [socket, 'readable', () => {
      const byte = socket.read(1) as Buffer | null;
      return byte ? { value: byte[0]! } : undefined;
    }],
    [socket, 'error', (err: Error) => new TlsError(`TLS handshake failed: the destination refused this source: ${openSslReason(err)}`)],
    [socket, 'end', () => new TlsError('TLS handshake failed: the destination closed the connection before accepting this source')],
  ]);
}

/**
 * The source's handshake over a connected `socket` (or exec:'s pipes);
 * resolves once the destination accepted it.
 */
export async function secureClient(socket: Duplex, spec: TlsClient, timeoutMs = TLS_HANDSHAKE_TIMEOUT_MS): Promise<TLSSocket> {
  const { creds, hostname } = spec;
  const common: tls.ConnectionOptions = { socket, minVersion: 'TLSv1.2' };
  let options: tls.ConnectionOptions;
  switch (creds.kind) {
    case 'tls-creds-x509': {
      const verify = creds.verifyPeer;
      options = {
        ...common,
        ca: creds.ca,
        ...(creds.cert ? { cert: creds.cert, key: creds.key } : {}),
        rejectUnauthorized: verify,
        // SNI takes names only, never addresses.
        ...(hostname && !isIP(hostname) ? { servername: hostname } : {}),
        checkServerIdentity: (_host, cert) => {
          if (!verify) return undefined;
          if (!hostname) return new TlsError('No hostname for certificate validation');
          return tls.checkServerIdentity(hostname, cert) ? new TlsError(`Certificate does not match the hostname ${hostname}`) : undefined;
        },
      };
      break;
    }
    case 'tls-creds-psk': {
      const psk = creds.keys.get(creds.username)!;
      options = { ...common, ciphers: PSK_CIPHERS, pskCallback: () => ({ psk, identity: creds.username }), checkServerIdentity: () => undefined };
      break;
    }
    case 'tls-creds-anon':
      options = { ...common, ciphers: ANON_CIPHERS, maxVersion: 'TLSv1.2', rejectUnauthorized: false, checkServerIdentity: () => undefined };
      break;
  }
  const secure = tls.connect(options);
  await handshake(secure, timeoutMs, (err) => clientFailure(err, creds));
  // Only now: a peer hanging up mid-handshake must end it. The source half-closes after its last byte and reads SHUT after.
  secure.allowHalfOpen = true;
  const verdict = await readVerdict(secure, timeoutMs);
  if (verdict !== VERDICT_ACCEPTED) {
    discard(secure);
    throw new TlsError("TLS handshake failed: the destination refused this source's credentials (its client certificate check or tls-authz; the destination's error says which)");
  }
  return secure;
}

function clientFailure(err: Error, creds: TlsCredentials): Error {
  if (err instanceof TlsError) return err;
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'ECONNRESET' || code === 'EPIPE') {
    return new TlsError('TLS handshake failed: the destination closed the connection during the handshake (does it have tls-creds set, of the same kind?)');
  }
  // QEMU reports a certificate it does not trust in its own words, unprefixed.
  if (code && !code.startsWith('ERR_')) return new TlsError(certificateProblem(code, err.message));
  if (creds.kind === 'tls-creds-psk' && /alert/.test(err.message)) {
    return new TlsError(`TLS handshake failed: the destination did not accept the pre-shared key of '${creds.username}' (a PSK mismatch: ${openSslReason(err)})`);
  }
  return new TlsError(`TLS handshake failed: ${openSslReason(err)}`);
}

export interface ServerOptions {
  timeoutMs?: number;
  /** Send the verdict byte (migration channels); a monitor's clients expect QMP's greeting first. */
  verdict?: boolean;
}

/**
 * A tls.Server that never listens, handed an accepted socket (its
 * documented way to wrap one), so OpenSSL's verdict on the client's
 * certificate lands in `authorized` and `authorizationError`.
 */
function tlsServer(spec: TlsServer): tls.Server {
  const { creds } = spec;
  const common = { minVersion: 'TLSv1.2' as const };
  switch (creds.kind) {
    case 'tls-creds-x509':
      return tls.createServer({
        ...common,
        ca: creds.ca,
        cert: creds.cert,
        key: creds.key,
        ...(creds.crl ? { crl: creds.crl } : {}),
        // Asked for, not enforced by OpenSSL: checked after, so the cause is ours to say.
        requestCert: creds.verifyPeer,
        rejectUnauthorized: false,
      });
    case 'tls-creds-psk':
      return tls.createServer({
        ...common,
        ciphers: PSK_CIPHERS,
        pskCallback: (socket, identity) => {
          const key = creds.keys.get(identity);
          if (!key) unknownIdentities.set(socket, identity);
          return key ?? null;
        },
      });
    case 'tls-creds-anon':
      return tls.createServer({ ...common, ciphers: ANON_CIPHERS, maxVersion: 'TLSv1.2', dhparam: 'auto' });
  }
}

/** PSK identities a handshake asked for that keys.psk lacks, by socket, for the error. */
const unknownIdentities = new WeakMap<TLSSocket, string>();

/**
 * The destination's handshake on an accepted `socket`, then its checks of
 * the client (certificate, tls-authz) and its verdict. Rejects with the cause, in QEMU's words where QEMU has them.
 */
export async function secureServer(socket: Duplex, spec: TlsServer, options: ServerOptions = {}): Promise<TLSSocket> {
  const { timeoutMs = TLS_HANDSHAKE_TIMEOUT_MS, verdict = true } = options;
  // One per connection (a migration has a few): each server's events are then this socket's.
  const server = tlsServer(spec);
  const { creds } = spec;
  const handshaken = firstOutcome<TLSSocket>(socket, timeoutMs, noAnswer(timeoutMs), [
    [server, 'secureConnection', (s: TLSSocket) => ({ value: s })],
    [server, 'tlsClientError', (err: Error, s: TLSSocket) => serverFailure(err, creds, unknownIdentities.get(s))],
    [socket, 'close', () => sourceHungUp(creds)],
  ]);
  server.emit('connection', socket);
  const secure = await handshaken;
  // The source's end of stream comes before our SHUT: our sending side outlives it.
  secure.allowHalfOpen = true;
  const refusal = checkClient(secure, spec);
  if (verdict) secure.write(Uint8Array.of(refusal ? VERDICT_REFUSED : VERDICT_ACCEPTED));
  if (refusal) {
    // Ended, so the verdict goes out before the close; the caller drops the connection a little later.
    secure.end();
    throw new TlsError(refusal);
  }
  return secure;
}

/** Why the destination refuses the client, or undefined (QEMU's check of the peer's certificate). */
function checkClient(secure: TLSSocket, spec: TlsServer): string | undefined {
  const { creds } = spec;
  if (creds.kind !== 'tls-creds-x509' || !creds.verifyPeer) return undefined;
  const cert = secure.getPeerX509Certificate();
  if (!cert) return 'Verify failed: No certificate was found.';
  if (!secure.authorized) {
    // A tls.Server's socket holds OpenSSL's verify code here.
    const code = String(secure.authorizationError);
    return certificateProblem(code, code);
  }
  const name = distinguishedName(cert);
  if (spec.authorize && !spec.authorize(name)) return `TLS x509 authz check for ${name} is denied`;
  return undefined;
}

/** A source hangs up mid-handshake when it does not accept this destination's certificate: it sends no alert then. */
function sourceHungUp(creds: TlsCredentials): TlsError {
  return new TlsError(creds.kind === 'tls-creds-x509'
    ? "TLS handshake failed: the source hung up during the handshake: it did not accept this destination's certificate (its CA, or the host name it expected; the source's error says which)"
    : 'TLS handshake failed: the source hung up during the handshake');
}

function serverFailure(err: Error, creds: TlsCredentials, unknownIdentity: string | undefined): Error {
  if (err instanceof TlsError) return err;
  const reason = openSslReason(err);
  const code = (err as NodeJS.ErrnoException).code;
  if (creds.kind === 'tls-creds-psk') {
    if (unknownIdentity !== undefined) return new TlsError(`TLS handshake failed: the source's PSK username '${unknownIdentity}' is not in this destination's keys.psk`);
    if (/binder does not verify|decrypt/.test(reason)) return new TlsError(`TLS handshake failed: the source's pre-shared key does not match this destination's (a PSK mismatch: ${reason})`);
  }
  if (/wrong version number|http request|unknown protocol|packet length too long|unsupported protocol|record layer failure/.test(reason)) {
    return new TlsError(`TLS handshake failed: the source is not speaking TLS (${reason}); set tls-creds on the source too`);
  }
  if (/alert (unknown ca|bad certificate|certificate unknown|decrypt error|handshake failure)/.test(reason)) {
    return new TlsError(`TLS handshake failed: the source did not accept this destination's credentials (${reason})`);
  }
  if (code === 'ECONNRESET' || code === 'EPIPE' || /disconnected before secure/.test(reason)) return sourceHungUp(creds);
  return new TlsError(`TLS handshake failed: ${reason}`);
}
