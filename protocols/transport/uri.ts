/**
 * Migration URIs, as `migrate` and `migrate-incoming` take them (QEMU 8.2's
 * parser): `tcp:HOST:PORT` (`tcp:[::1]:4444` for IPv6), `unix:PATH`,
 * `file:PATH[,offset=N]`, `exec:CMD`, `fd:N`. Schemes are case-sensitive, as
 * in QEMU. `rdma:` and `vsock:` are QEMU's but refused here.
 */
import { isIPv6 } from 'node:net';
import { CodedError } from '../coded-error.js';
import { parseSafeSize } from '../size.js';

export type MigrationUri =
  /** `host` is '' for an incoming URI without one (`tcp::4444`): listen on every address. IPv6 without brackets. */
  | { scheme: 'tcp'; host: string; port: number }
  | { scheme: 'unix'; path: string }
  /** Bytes before `offset` are left alone on write and skipped on read. */
  | { scheme: 'file'; path: string; offset: number }
  /** Run with `/bin/sh -c`. */
  | { scheme: 'exec'; command: string }
  /** A descriptor inherited from the parent process. */
  | { scheme: 'fd'; fd: number };

export type MigrationUriErrorCode =
  | 'UNKNOWN_PROTOCOL'
  /** A QEMU transport livemig does not build (rdma, vsock). */
  | 'UNSUPPORTED_TRANSPORT'
  | 'BAD_ADDRESS'
  | 'BAD_PATH'
  | 'BAD_OFFSET'
  | 'BAD_COMMAND'
  | 'BAD_FD';

export class MigrationUriError extends CodedError<MigrationUriErrorCode> {
  override readonly name = 'MigrationUriError';
}

/** QEMU's error when multifd or postcopy-preempt meet a URI that carries one channel. */
export const MULTI_CHANNEL_REQUIRED = 'Migration requires multi-channel URIs (e.g. tcp)';

/** Longest UNIX socket path: sun_path holds 108 bytes with the terminating NUL. */
const MAX_UNIX_PATH_BYTES = 107;
const HOSTNAME = /^[A-Za-z0-9._-]{1,253}$/;
const OFFSET_OPTION = 'offset=';

/**
 * Parses a migration URI; throws MigrationUriError with QEMU's text where QEMU
 * has one.
 *
 * @example parseMigrationUri('tcp:[::1]:4444', { direction: 'outgoing' }) // { scheme: 'tcp', host: '::1', port: 4444 }
 */
export function parseMigrationUri(uri: string, options: { direction: 'outgoing' | 'incoming' }): MigrationUri {
  const colon = uri.indexOf(':');
  const scheme = colon < 0 ? '' : uri.slice(0, colon);
  const rest = uri.slice(colon + 1);
  switch (scheme) {
    case 'tcp':
      return parseTcp(uri, rest, options.direction);
    case 'unix':
      return { scheme: 'unix', path: checkUnixPath(uri, rest) };
    case 'file':
      return parseFile(uri, rest);
    case 'exec':
      if (rest.trim() === '') throw new MigrationUriError('BAD_COMMAND', `Migration URI '${uri}' has no command to run`);
      return { scheme: 'exec', command: rest };
    case 'fd':
      return { scheme: 'fd', fd: parseFd(rest) };
    case 'rdma':
    case 'vsock':
      throw new MigrationUriError('UNSUPPORTED_TRANSPORT', `the ${scheme} transport is not supported by livemig`);
    default:
      throw new MigrationUriError(
        'UNKNOWN_PROTOCOL',
        options.direction === 'outgoing' ? "Parameter 'uri' expects a valid migration protocol" : `unknown migration protocol: ${uri}`,
      );
  }
}

/**
 * Whether the URI can open more than one connection (multifd, postcopy-preempt).
 * A string is judged by its scheme alone, as QEMU does.
 */
export function isMultiChannel(uri: string | MigrationUri): boolean {
  if (typeof uri !== 'string') return uri.scheme === 'tcp' || uri.scheme === 'unix';
  return uri.startsWith('tcp:') || uri.startsWith('unix:');
}

/** The parse error of an outgoing URI, or null when it is one livemig can use. */
export function outgoingUriError(uri: string): string | null {
  try {
    parseMigrationUri(uri, { direction: 'outgoing' });
    return null;
  } catch (err) {
    return (err as Error).message;
  }
}

/**
 * Why a migration that needs several connections (multifd,
 * postcopy-preempt) cannot use `uri`, or null (QEMU's
 * migration_channels_and_uri_compatible). A URI that does not parse is left
 * to the parser's own error.
 */
export function multiChannelRefusal(uri: string, needsSeveralChannels: boolean): string | null {
  if (needsSeveralChannels && outgoingUriError(uri) === null && !isMultiChannel(uri)) return MULTI_CHANNEL_REQUIRED;
  return null;
}

/**
 * Why `uri` cannot carry a postcopy recovery, or null: recovery reconnects
 * a socket's two directions (the stream and the return path), and the
 * preempt channel beside it, so only tcp: and unix: can.
 */
export function recoveryUriRefusal(uri: string): string | null {
  if (outgoingUriError(uri) === null && isMultiChannel(uri)) return null;
  return `Postcopy recovery needs a tcp: or unix: URI (a return path and a new connection), not '${uri}'`;
}

function parseTcp(uri: string, address: string, direction: 'outgoing' | 'incoming'): MigrationUri {
  let host: string;
  let portText: string;
  // QEMU's inet_parse texts for an address it cannot split into host and port.
  if (address.startsWith('[')) {
    const close = address.indexOf(']');
    host = close < 0 ? '' : address.slice(1, close);
    if (close < 0 || !isIPv6(host) || address[close + 1] !== ':' || close + 2 === address.length) {
      throw new MigrationUriError('BAD_ADDRESS', `error parsing IPv6 address '${address}'`);
    }
    portText = address.slice(close + 2);
  } else {
    const colon = address.indexOf(':');
    if (colon < 0 || colon === address.length - 1) throw new MigrationUriError('BAD_ADDRESS', `error parsing address '${address}'`);
    if (address.indexOf(':', colon + 1) >= 0) {
      throw new MigrationUriError('BAD_ADDRESS', `Migration URI '${uri}' has a malformed address (put an IPv6 address in brackets: tcp:[::1]:4444)`);
    }
    host = address.slice(0, colon);
    portText = address.slice(colon + 1);
    // An outgoing tcp::PORT parses, as in QEMU, and fails to connect (outgoing.ts): there is no host to resolve.
    if (host !== '' && !HOSTNAME.test(host)) {
      throw new MigrationUriError('BAD_ADDRESS', `Migration URI '${uri}' has a malformed host '${host}'`);
    }
  }
  if (!/^\d{1,5}$/.test(portText) || Number(portText) > 65535) {
    throw new MigrationUriError('BAD_ADDRESS', `Migration URI '${uri}' has a bad port '${portText}' (expected 0 to 65535)`);
  }
  return { scheme: 'tcp', host, port: Number(portText) };
}

function checkUnixPath(uri: string, path: string): string {
  if (path === '') throw new MigrationUriError('BAD_PATH', 'invalid Unix socket address');
  if (path.includes('\0')) throw new MigrationUriError('BAD_PATH', `Migration URI '${uri}' has a NUL byte in its path`);
  if (Buffer.byteLength(path) > MAX_UNIX_PATH_BYTES) {
    throw new MigrationUriError(
      'BAD_PATH',
      `UNIX socket path '${path}' is too long: a path must be less than ${MAX_UNIX_PATH_BYTES + 1} bytes`,
    );
  }
  return path;
}

function parseFile(uri: string, spec: string): MigrationUri {
  // The offset option is the last comma-separated field, so paths may hold commas.
  const comma = spec.lastIndexOf(',');
  const hasOffset = comma >= 0 && spec.startsWith(OFFSET_OPTION, comma + 1);
  const path = hasOffset ? spec.slice(0, comma) : spec;
  if (path === '') throw new MigrationUriError('BAD_PATH', `Migration URI '${uri}' has no file path`);
  if (path.includes('\0')) throw new MigrationUriError('BAD_PATH', `Migration URI '${uri}' has a NUL byte in its path`);
  if (!hasOffset) return { scheme: 'file', path, offset: 0 };
  const offsetText = spec.slice(comma + 1 + OFFSET_OPTION.length);
  try {
    return { scheme: 'file', path, offset: parseSafeSize(offsetText) };
  } catch (error) {
    throw new MigrationUriError('BAD_OFFSET', `file URI has bad offset '${offsetText}': ${(error as Error).message}`);
  }
}

/** QEMU's words for an `fd:` URI naming no descriptor: a getfd name nobody gave, or a number not open here. */
export function fdNotFound(name: string): string {
  return `File descriptor named '${name}' has not been found`;
}

/** A number is the descriptor itself; a name left here is one no getfd gave (the monitor swaps a given one for its number). */
function parseFd(text: string): number {
  if (!/^\d{1,10}$/.test(text) || Number(text) > 0x7fffffff) throw new MigrationUriError('BAD_FD', fdNotFound(text));
  return Number(text);
}
