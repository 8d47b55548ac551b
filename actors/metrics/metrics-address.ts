/**
 * Where `--metrics HOST:PORT` listens: the Prometheus exposition over plain
 * HTTP (`tcp:` without the prefix, as Prometheus targets are written;
 * `[::1]:PORT` for IPv6; port 0 lets the system choose). An empty host, or
 * any address beyond loopback, makes the figures readable by whoever
 * reaches the host: refused unless asked for knowingly (--metrics-remote).
 */
import { isLocalOnly } from '../../protocols/qmp/address.js';

export interface MetricsAddress {
  host: string;
  port: number;
}

export class MetricsAddressError extends Error {
  override readonly name = 'MetricsAddressError';
  readonly code = 'BAD_METRICS_ADDRESS';
}

/** @example parseMetricsAddress('127.0.0.1:9464') // { host: '127.0.0.1', port: 9464 } */
export function parseMetricsAddress(text: string): MetricsAddress {
  const m = /^(?:\[([^\]]+)\]|([^:[\]]*)):(\d{1,5})$/.exec(text);
  const port = m ? Number(m[3]) : NaN;
  if (!m || port > 65535) throw new MetricsAddressError(`--metrics '${text}': expected HOST:PORT (e.g. 127.0.0.1:9464, [::1]:9464) with a port from 0 to 65535`);
  return { host: m[1] ?? m[2] ?? '', port };
}

export function formatMetricsAddress(address: MetricsAddress): string {
  return `${address.host.includes(':') ? `[${address.host}]` : address.host}:${address.port}`;
}

/** Only this host can scrape it: a loopback address (127.0.0.0/8, ::1, localhost); an empty host is every interface. */
export function isLoopbackMetrics(address: MetricsAddress): boolean {
  return address.host !== '' && isLocalOnly({ transport: 'tcp', ...address });
}
