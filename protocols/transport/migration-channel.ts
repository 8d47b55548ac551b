/**
 * QEMU 8.2's `channels` argument of migrate and migrate-incoming: one
 * MigrationChannel, whose MigrationAddress is turned into the equivalent
 * URI. Errors carry QEMU's texts (the monitor answers them as GenericError).
 */
import { MigrationUriError } from './uri.js';

/** The URI a MigrationAddress (`addr`, as QMP gave it) stands for. */
export function channelsToUri(addr: unknown): string {
  const a = (typeof addr === 'object' && addr !== null ? addr : {}) as Record<string, unknown>;
  const str = (name: string): string => {
    const v = a[name];
    if (typeof v !== 'string') throw new MigrationUriError('BAD_ADDRESS', `Parameter 'addr.${name}' is missing`);
    return v;
  };
  switch (a.transport) {
    case 'socket':
      switch (a.type) {
        case 'inet': {
          const host = str('host');
          return `tcp:${host.includes(':') ? `[${host}]` : host}:${str('port')}`;
        }
        case 'unix':
          return `unix:${str('path')}`;
        case 'fd':
          return `fd:${str('str')}`;
        default:
          throw new MigrationUriError('UNKNOWN_PROTOCOL', `Parameter 'addr.type' does not accept value '${String(a.type)}'`);
      }
    case 'exec': {
      const args = a.args;
      if (!Array.isArray(args) || args.length === 0 || !args.every((x) => typeof x === 'string')) {
        throw new MigrationUriError('BAD_COMMAND', "Parameter 'addr.args' expects a non-empty list of strings");
      }
      return `exec:${(args as string[]).map(shellQuote).join(' ')}`;
    }
    case 'file': {
      const offset = a.offset;
      return `file:${str('filename')}${offset === undefined ? '' : `,offset=${String(offset)}`}`;
    }
    case 'rdma':
      throw new MigrationUriError('UNSUPPORTED_TRANSPORT', 'the rdma transport is not supported by livemig');
    default:
      throw new MigrationUriError('UNKNOWN_PROTOCOL', `Parameter 'addr.transport' does not accept value '${String(a.transport)}'`);
  }
}

function shellQuote(arg: string): string {
  return /^[\w@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replace(/'/g, `'\\''`)}'`;
}
