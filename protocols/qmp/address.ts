/**
 * Monitor addresses as livemig's `--qmp` takes them: `unix:PATH` or
 * `tcp:HOST:PORT` (`tcp:[::1]:PORT` for IPv6; an empty host listens on
 * every interface, as QEMU's `tcp::PORT` does), and for a listener QEMU's
 * chardev options `,tls-creds=ID` and `,tls-authz=ID`.
 */

export type QmpAddress = { transport: 'unix'; path: string } | { transport: 'tcp'; host: string; port: number };

export class QmpAddressError extends Error {
  override readonly name = 'QmpAddressError';
  readonly code = 'BAD_QMP_ADDRESS';
}

/** @example parseQmpAddress('tcp:127.0.0.1:0') // { transport: 'tcp', host: '127.0.0.1', port: 0 } */
export function parseQmpAddress(text: string): QmpAddress {
  if (text.startsWith('unix:')) {
    const path = text.slice('unix:'.length);
    if (path === '') throw new QmpAddressError(`'${text}': unix socket path is empty`);
    return { transport: 'unix', path };
  }
  if (text.startsWith('tcp:')) {
    const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d+)$/.exec(text.slice('tcp:'.length));
    const port = m ? Number(m[3]) : NaN;
    if (!m || port > 65535) throw new QmpAddressError(`'${text}': expected tcp:HOST:PORT with a port from 0 to 65535`);
    return { transport: 'tcp', host: m[1] ?? m[2] ?? '', port };
  }
  throw new QmpAddressError(`'${text}': expected unix:PATH or tcp:HOST:PORT`);
}

/** A monitor to listen on: where, and with which TLS credentials and authorisation objects. */
export interface MonitorListen {
  address: QmpAddress;
  tlsCreds?: string;
  tlsAuthz?: string;
}

/** @example parseMonitorListen('tcp:0.0.0.0:4444,tls-creds=tls0') // { address: {…}, tlsCreds: 'tls0' } */
export function parseMonitorListen(text: string): MonitorListen {
  const [where, ...options] = text.split(',');
  const listen: MonitorListen = { address: parseQmpAddress(where!) };
  for (const option of options) {
    const m = /^(tls-creds|tls-authz)=(.+)$/.exec(option);
    if (!m) throw new QmpAddressError(`'${text}': unknown monitor option '${option}' (expected tls-creds=ID or tls-authz=ID)`);
    if (m[1] === 'tls-creds') listen.tlsCreds = m[2]!;
    else listen.tlsAuthz = m[2]!;
  }
  if (listen.tlsAuthz !== undefined && listen.tlsCreds === undefined) throw new QmpAddressError(`'${text}': tls-authz needs tls-creds`);
  return listen;
}

export function formatQmpAddress(address: QmpAddress): string {
  if (address.transport === 'unix') return `unix:${address.path}`;
  const host = address.host.includes(':') ? `[${address.host}]` : address.host;
  return `tcp:${host}:${address.port}`;
}

/**
 * Whether only this host can reach the address: a unix socket, or tcp on a
 * loopback address (127.0.0.0/8, ::1, localhost). An empty host listens on
 * every interface.
 */
export function isLocalOnly(address: QmpAddress): boolean {
  if (address.transport === 'unix') return true;
  const host = address.host.toLowerCase();
  return host === 'localhost' || host === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}
