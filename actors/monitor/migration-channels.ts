import { genericError } from '../../protocols/qmp/errors.js';
import type { JsonValue } from '../../protocols/qmp/types.js';
import { isMultiChannel, parseMigrationUri } from '../../protocols/transport/uri.js';
import type { MigrationCapabilities } from '../migration/capabilities.js';

/**
 * QEMU 8.2's `channels` argument: one MigrationChannel whose MigrationAddress
 * is turned into the equivalent URI.
 */
export function channelsToUri(addr: JsonValue): string {
  const a = (addr ?? {}) as Record<string, JsonValue>;
  const str = (name: string): string => {
    const v = a[name];
    if (typeof v !== 'string') throw genericError(`Parameter 'addr.${name}' is missing`);
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
          throw genericError(`Parameter 'addr.type' does not accept value '${String(a.type)}'`);
      }
    case 'exec': {
      const args = a.args;
      if (!Array.isArray(args) || args.length === 0 || !args.every((x) => typeof x === 'string')) {
        throw genericError("Parameter 'addr.args' expects a non-empty list of strings");
      }
      return `exec:${(args as string[]).map(shellQuote).join(' ')}`;
    }
    case 'file': {
      const offset = a.offset;
      return `file:${str('filename')}${offset === undefined ? '' : `,offset=${String(offset)}`}`;
    }
    case 'rdma':
      throw genericError('the rdma transport is not supported by livemig');
    default:
      throw genericError(`Parameter 'addr.transport' does not accept value '${String(a.transport)}'`);
  }
}

/** Why `uri` cannot be used with the capabilities on (QEMU's migration_channels_and_uri_compatible). */
export function channelRefusal(uri: string, caps: MigrationCapabilities): string | null {
  if ((caps.multifd || caps['postcopy-preempt']) && !uriError(uri) && !isMultiChannel(uri)) {
    return 'Migration requires multi-channel URIs (e.g. tcp)';
  }
  return null;
}

/** The parse error of an outgoing URI, or null when it is one livemig can use. */
export function uriError(uri: string): string | null {
  try {
    parseMigrationUri(uri, { direction: 'outgoing' });
    return null;
  } catch (err) {
    return (err as Error).message;
  }
}

function shellQuote(arg: string): string {
  return /^[\w@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replace(/'/g, `'\\''`)}'`;
}
