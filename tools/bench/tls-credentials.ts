/**
 * The TLS scenarios' x509 credentials, both engines alike: one PKI per bench
 * run (makeTestPki, in QEMU's file names), made when the first TLS run
 * starts and removed at teardown; the same `tls-creds-x509` object (id
 * tls0) on `livemig run --object` and QEMU's `-object`, and tls-creds=tls0
 * set with migrate-set-parameters on both sides, as with QEMU.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { makeTestPki, type TestPki } from '../pki.js';
import { onTeardown } from './teardown.js';

/** How a TLS scenario authenticates: x509, each end checking the other's certificate (verify-peer). */
export type TlsMode = 'x509';

const CREDS_ID = 'tls0';

let pki: Promise<TestPki> | undefined;

/** The run's PKI, made on first use. */
function credentials(): Promise<TestPki> {
  if (!pki) {
    const dir = mkdtempSync(join(os.tmpdir(), 'livemig-bench-pki-'));
    const made = makeTestPki(dir);
    onTeardown(async () => {
      // Still being written (an interrupt at the start): let it finish, then remove it all.
      await made.catch(() => {});
      pki = undefined;
      rmSync(dir, { recursive: true, force: true });
    });
    pki = made;
  }
  return pki;
}

/**
 * The credentials object for one side's command line (`flag` is `--object`
 * for livemig, `-object` for QEMU); nothing without TLS. The destination is
 * the TLS server, the source the client, each with verify-peer on (the
 * server's certificate names 127.0.0.1, the migration URI's host).
 */
export async function tlsObjectArgs(tls: TlsMode | undefined, side: 'source' | 'destination', flag: '--object' | '-object'): Promise<string[]> {
  if (!tls) return [];
  const p = await credentials();
  const [dir, endpoint] = side === 'destination' ? [p.server, 'server'] : [p.client, 'client'];
  return [flag, `tls-creds-x509,id=${CREDS_ID},dir=${dir},endpoint=${endpoint},verify-peer=on`];
}

/** The migration parameter that makes every channel TLS, for both sides (none without TLS). */
export function tlsParameters(tls: TlsMode | undefined): { 'tls-creds'?: string } {
  return tls ? { 'tls-creds': CREDS_ID } : {};
}
