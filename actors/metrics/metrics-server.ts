/**
 * `--metrics HOST:PORT`: an HTTP listener that answers `GET /metrics` with
 * the instance's migration metrics in Prometheus' text exposition format.
 * Read-only: it serves no guest memory and takes no command, and it holds
 * little per client (short timeouts, few connections), so a scraper cannot
 * slow the migration it watches.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { formatMetricsAddress, type MetricsAddress } from './metrics-address.js';
import { MigrationMetrics, type MetricsHost, type MigrationSide } from './migration-metrics.js';
import type { MigrationStatus } from '../../machines/status.js';

/** Prometheus scrapes over one connection; a few more leave room for a person with curl. */
const MAX_CONNECTIONS = 16;
/** A scrape is one short request: a client that takes longer to send it is dropped. */
const REQUEST_TIMEOUT_MS = 10_000;

export class MetricsServer {
  private constructor(
    private readonly server: Server,
    private readonly metrics: MigrationMetrics,
    /** Where it listens, with the port the system chose for port 0. */
    readonly address: string,
  ) {}

  /**
   * Registers the metrics and listens; an address in use or not on this
   * host is the caller's error (the instance does not start).
   *
   * @example const server = await MetricsServer.listen({ host: '127.0.0.1', port: 9464 }, instance, log);
   */
  static async listen(at: MetricsAddress, host: MetricsHost, log: (message: string, fields?: Record<string, unknown>) => void): Promise<MetricsServer> {
    const metrics = await MigrationMetrics.create(host);
    const server = createServer({ requestTimeout: REQUEST_TIMEOUT_MS, headersTimeout: REQUEST_TIMEOUT_MS }, (req, res) => {
      void answer(metrics, req, res).catch((err: unknown) => {
        log('metrics scrape failed', { err: (err as Error).message });
        if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain; charset=utf-8' });
        res.end('the metrics could not be collected\n');
      });
    });
    server.maxConnections = MAX_CONNECTIONS;
    try {
      await new Promise<void>((resolve, reject) => {
        const failed = (err: Error) => {
          server.off('listening', listening);
          reject(err);
        };
        const listening = () => {
          server.off('error', failed);
          resolve();
        };
        server.once('error', failed).once('listening', listening);
        server.listen({ host: at.host === '' ? undefined : at.host, port: at.port });
      });
    } catch (err) {
      throw new Error(`--metrics ${formatMetricsAddress(at)}: ${(err as Error).message}`);
    }
    server.on('error', (err) => log('metrics endpoint error', { err: err.message }));
    const bound = server.address() as AddressInfo;
    return new MetricsServer(server, metrics, formatMetricsAddress({ host: at.host === '' ? '' : bound.address, port: bound.port }));
  }

  /** The instance tells every status change (failures are counted as they happen). */
  statusChanged(side: MigrationSide, status: MigrationStatus): void {
    this.metrics.statusChanged(side, status);
  }

  /** Stops listening and drops every connection, a scrape in progress too. */
  async close(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.server.closeAllConnections();
    await closed;
  }
}

async function answer(metrics: MigrationMetrics, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const path = (req.url ?? '').split('?')[0];
  if (path !== '/metrics') {
    res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' }).end('livemig serves its metrics at /metrics\n');
    return;
  }
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    res.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain; charset=utf-8' }).end('GET /metrics\n');
    return;
  }
  const text = await metrics.registry.metrics();
  res.writeHead(200, { 'content-type': metrics.registry.contentType, 'cache-control': 'no-store' });
  res.end(req.method === 'HEAD' ? undefined : text);
}
