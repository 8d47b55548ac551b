/**
 * What each kind of round means on each side. The destination is a fresh
 * process, so it gets everything on its command line (capabilities that
 * shape the channels must be set before incoming starts, as QEMU requires);
 * the source lives through the whole soak, so it is switched before each
 * round with migrate-set-capabilities and migrate-set-parameters, as an
 * orchestrator would, every capability and parameter a kind touches set
 * either way so nothing carries over from the round before.
 */
import type { CompressionMethod } from '../../protocols/multifd/constants.js';
import { multifdArgs } from '../support/multifd-pair.js';
import { POSTCOPY } from '../support/postcopy-pair.js';
import type { Kind } from './plan.js';

interface KindSetup {
  transport: 'tcp' | 'unix';
  multifd?: { channels: number; compression: CompressionMethod };
  xbzrle?: true;
  postcopy?: true;
  tls?: true;
}

const SETUPS: Record<Kind, KindSetup> = {
  tcp: { transport: 'tcp' },
  unix: { transport: 'unix' },
  'multifd-2': { transport: 'tcp', multifd: { channels: 2, compression: 'none' } },
  'multifd-4': { transport: 'tcp', multifd: { channels: 4, compression: 'none' } },
  'multifd-4-zstd': { transport: 'tcp', multifd: { channels: 4, compression: 'zstd' } },
  xbzrle: { transport: 'tcp', xbzrle: true },
  tls: { transport: 'tcp', tls: true },
  'postcopy-ram': { transport: 'tcp', postcopy: true },
};

/** The id of the x509 credentials object both sides are given (as tools/bench/tls-credentials.ts names it). */
export const TLS_ID = 'tls0';

export function transportOf(kind: Kind): 'tcp' | 'unix' {
  return SETUPS[kind].transport;
}

export function usesTls(kinds: readonly Kind[]): boolean {
  return kinds.some((kind) => SETUPS[kind].tls === true);
}

/** The source's credentials object (client end): loaded once at start, used only by the rounds that set tls-creds. */
export function sourceTlsObject(clientDir: string): string[] {
  return ['--object', `tls-creds-x509,id=${TLS_ID},dir=${clientDir},endpoint=client`];
}

/**
 * A destination's arguments for `kind` beyond its guest: capabilities and
 * parameters, its credentials (server end, checking the client's
 * certificate) and where it listens. `-S`: it does not run the guest it
 * receives until told, so its memory can be compared with the stopped
 * source's byte for byte.
 */
export function destinationArgs(kind: Kind, where: { serverDir?: string; unixPath: string }): string[] {
  const setup = SETUPS[kind];
  const args = ['-S'];
  if (setup.multifd) args.push(...multifdArgs(setup.multifd));
  if (setup.postcopy) args.push(...POSTCOPY);
  if (setup.tls) {
    if (!where.serverDir) throw new Error('a TLS round needs the soak\'s PKI');
    args.push('--object', `tls-creds-x509,id=${TLS_ID},dir=${where.serverDir},endpoint=server,verify-peer=on`, '--param', `tls-creds=${TLS_ID}`);
  }
  args.push('--incoming', setup.transport === 'unix' ? `unix:${where.unixPath}` : 'tcp:127.0.0.1:0');
  return args;
}

/** What the source is switched to before a round of `kind`: capabilities, then parameters. */
export function sourceSettings(kind: Kind): {
  capabilities: { capability: string; state: boolean }[];
  parameters: Record<string, string | number>;
} {
  const setup = SETUPS[kind];
  return {
    capabilities: [
      { capability: 'multifd', state: setup.multifd !== undefined },
      { capability: 'xbzrle', state: setup.xbzrle === true },
      { capability: 'postcopy-ram', state: setup.postcopy === true },
    ],
    parameters: {
      'tls-creds': setup.tls ? TLS_ID : '',
      'multifd-channels': setup.multifd?.channels ?? 2,
      'multifd-compression': setup.multifd?.compression ?? 'none',
    },
  };
}
