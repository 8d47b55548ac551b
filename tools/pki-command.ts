import type { Command } from 'commander';
import { livemigCommand } from './cli-options.js';

/**
 * `livemig pki --dir DIR`: credentials for trying TLS by hand (the demo and the
 * tests make theirs the same way): a CA and, in QEMU's file names, a
 * destination's and a source's certificates and a PSK file. A real
 * deployment uses its own PKI.
 */
export function pkiCommand(): Command {
  return livemigCommand('pki', 'livemig pki')
    .summary('make TLS credentials to try a migration over TLS')
    .description('Writes DIR/server (the destination: --object tls-creds-x509,…,endpoint=server), DIR/client (the source), DIR/psk (keys.psk) and others the tests use; keys are new each time.')
    .requiredOption('--dir <DIR>', 'where to write them (created; owner-only)')
    .option('--host <NAME>', 'a name or address the destination certificate is for (repeatable; default: localhost and 127.0.0.1)', (v: string, all: string[] = []) => [...all, v])
    .action(async ({ dir, host }: { dir: string; host?: string[] }) => {
      const { makeTestPki } = await import('./pki.js');
      const pki = await makeTestPki(dir, host);
      console.log(`destination (endpoint=server): ${pki.server}\nsource (endpoint=client):      ${pki.client}\npsk:                           ${pki.psk}\nsource's name for tls-authz:   ${pki.clientName}`);
    });
}
