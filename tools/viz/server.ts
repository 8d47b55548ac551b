/**
 * The visualizer's web server, on 127.0.0.1 only. It serves one page and
 * its own static files (no CDN: the page loads nothing from elsewhere, and
 * its Content-Security-Policy forbids it), the charts laid out by Graphviz,
 * the explorer, and the live updates as Server-Sent Events.
 *
 *   GET  /               the page
 *   GET  /static/<file>  its scripts and styles (tools/viz/static)
 *   GET  /api/charts     the statecharts (both sides', the return path's): graph, SVG, events with presets
 *   GET  /api/live       text/event-stream of LiveUpdates, history first
 *   GET  /api/trace      everything seen so far, as a trace file (trace-file.ts) to save
 *   POST /api/explore    ExploreRequest → ExploreResult
 *
 * @example
 * const viz = await startVizServer({ source: 'unix:/run/src.qmp', destination: 'tcp:10.0.0.2:4444', port: 0 });
 * console.log(viz.url); // http://127.0.0.1:40123/
 * await viz.close();
 */
import { readFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { eventPresets } from './event-presets.js';
import { explore, ExploreError, initialContext, type ExploreRequest } from './explore.js';
import { InstanceWatch } from './instance-watch.js';
import { CHARTS, graphs, isChartName, isSide, SIDES, type ChartName } from './machines.js';
import { toDot } from './dot.js';
import { renderSvg } from './svg.js';
import { Timeline, type LiveUpdate } from './timeline.js';
import { traceFile, type TraceFile } from './trace-file.js';

export interface VizServerOptions {
  /** QMP address of the source instance to follow. */
  source?: string;
  destination?: string;
  /** 0 picks a free port. */
  port: number;
  /** query-migrate period; default 200 ms. */
  pollMs?: number;
  /** Serve a saved trace instead of following instances (`name`: where it came from, shown on the page). */
  replay?: { trace: TraceFile; name: string };
}

export interface VizServer {
  /** `http://127.0.0.1:<port>/` */
  readonly url: string;
  readonly timeline: Timeline;
  close(): Promise<void>;
}

const STATIC_DIR = new URL('./static/', import.meta.url);
const STATIC_TYPES: Readonly<Record<string, string>> = {
  'index.html': 'text/html; charset=utf-8',
  'viz.css': 'text/css; charset=utf-8',
  'page.js': 'text/javascript; charset=utf-8',
  'statechart-view.js': 'text/javascript; charset=utf-8',
  'live-charts.js': 'text/javascript; charset=utf-8',
  'message-view.js': 'text/javascript; charset=utf-8',
  'explorer.js': 'text/javascript; charset=utf-8',
  'travel.js': 'text/javascript; charset=utf-8',
  'traffic-view.js': 'text/javascript; charset=utf-8',
  'counter-rate.js': 'text/javascript; charset=utf-8',
  'format.js': 'text/javascript; charset=utf-8',
};
const CONTENT_SECURITY_POLICY = "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:";
const MAX_BODY = 64 << 10;
const HEARTBEAT_MS = 15_000;

export async function startVizServer(options: VizServerOptions): Promise<VizServer> {
  const charts = await chartsPayload(options);
  const timeline = new Timeline();
  if (options.replay) replay(timeline, options.replay);
  const watches: InstanceWatch[] = [];
  const streams = new Set<ServerResponse>();
  let port = 0;

  const server = createServer((req, res) => {
    // Only pages of our own origin: a foreign site resolving its name to 127.0.0.1 gets nothing.
    const host = req.headers.host ?? '';
    if (host !== `127.0.0.1:${port}` && host !== `localhost:${port}`) {
      send(res, 421, 'text/plain; charset=utf-8', 'wrong Host\n');
      return;
    }
    route(req, res).catch((err: Error) => {
      if (!res.headersSent) send(res, 500, 'text/plain; charset=utf-8', `${err.message}\n`);
      else res.destroy();
    });
  });

  const route = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const path = new URL(req.url ?? '/', 'http://viz').pathname;
    if (req.method === 'GET' && (path === '/' || path.startsWith('/static/'))) {
      const file = path === '/' ? 'index.html' : path.slice('/static/'.length);
      const type = STATIC_TYPES[file];
      if (type === undefined) send(res, 404, 'text/plain; charset=utf-8', 'not found\n');
      else send(res, 200, type, await readFile(new URL(file, STATIC_DIR)));
    } else if (req.method === 'GET' && path === '/favicon.ico') {
      res.writeHead(204).end();
    } else if (req.method === 'GET' && path === '/api/charts') {
      send(res, 200, 'application/json', JSON.stringify(charts));
    } else if (req.method === 'GET' && path === '/api/live') {
      liveStream(res);
    } else if (req.method === 'GET' && path === '/api/trace') {
      const saved = new Date();
      const name = `livemig-trace-${saved.toISOString().replace(/[:.]/g, '-')}.json`;
      res.setHeader('Content-Disposition', `attachment; filename="${name}"`);
      send(res, 200, 'application/json', JSON.stringify(traceFile(timeline.updates(), saved)));
    } else if (req.method === 'POST' && path === '/api/explore') {
      try {
        const request = parseExploreRequest(await readBody(req));
        send(res, 200, 'application/json', JSON.stringify(explore(request)));
      } catch (err) {
        if (!(err instanceof ExploreError)) throw err;
        send(res, 400, 'application/json', JSON.stringify({ error: err.message }));
      }
    } else {
      send(res, 404, 'text/plain; charset=utf-8', 'not found\n');
    }
  };

  const liveStream = (res: ServerResponse) => {
    res.writeHead(200, {
      'Content-Type': 'text/event-stream',
      'Cache-Control': 'no-store',
      Connection: 'keep-alive',
      'Content-Security-Policy': CONTENT_SECURITY_POLICY,
    });
    res.write('retry: 1000\n\n');
    streams.add(res);
    const unsubscribe = timeline.subscribe((update) => res.write(`event: ${update.topic}\ndata: ${JSON.stringify(update)}\n\n`));
    const heartbeat = setInterval(() => res.write(': heartbeat\n\n'), HEARTBEAT_MS);
    res.on('close', () => {
      clearInterval(heartbeat);
      unsubscribe();
      streams.delete(res);
    });
  };

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ port: options.port, host: '127.0.0.1' }, () => {
      server.off('error', reject);
      resolve();
    });
  });
  port = (server.address() as AddressInfo).port;
  for (const side of SIDES) {
    const address = options[side];
    if (address !== undefined) watches.push(new InstanceWatch(side, address, timeline, options.pollMs ?? 200));
  }

  return {
    url: `http://127.0.0.1:${port}/`,
    timeline,
    async close() {
      await Promise.all(watches.map((w) => w.close()));
      for (const res of streams) res.end();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** A saved trace as the history a page is shown, its connections marked as replayed. */
function replay(timeline: Timeline, { trace, name }: { trace: TraceFile; name: string }): void {
  for (const update of trace.updates) {
    const replayed: LiveUpdate = update.topic === 'connection' ? { ...update, state: 'replayed', detail: `replayed from ${name}` } : update;
    timeline.publish(replayed);
  }
}

/** The instance each side followed in a trace, as its connection updates name it. */
function tracedAddress(trace: TraceFile, side: string): string | null {
  const c = trace.updates.find((u) => u.topic === 'connection' && u.side === side);
  return c?.topic === 'connection' ? c.address : null;
}

/** Everything the page needs to draw and explore the machines, computed once. */
async function chartsPayload(options: VizServerOptions) {
  const entries = await Promise.all(
    CHARTS.map(async (side) => {
      const graph = graphs[side];
      const types = [...new Set(graph.transitions.map((t) => t.event))];
      return [
        side,
        {
          graph,
          svg: await renderSvg(toDot(graph)),
          events: types.map((type) => ({ type, presets: eventPresets[side][type] ?? [{ name: 'no payload', payload: {} }] })),
          initialContext: initialContext(side),
          // The instance followed for a side; the return path reports no status, so it is only explored.
          address: !isSide(side) ? null : options.replay ? tracedAddress(options.replay.trace, side) : options[side] ?? null,
        },
      ] as const;
    }),
  );
  return Object.fromEntries(entries) as Record<ChartName, (typeof entries)[number][1]>;
}

function parseExploreRequest(body: string): ExploreRequest {
  let value: unknown;
  try {
    value = JSON.parse(body);
  } catch {
    throw new ExploreError('the request is not JSON');
  }
  const request = value as Partial<ExploreRequest>;
  if (!isChartName(request.side)) throw new ExploreError(`side must be one of ${CHARTS.map((c) => `'${c}'`).join(', ')}`);
  if (typeof request.status !== 'string') throw new ExploreError('status must be a string');
  if (typeof request.event !== 'object' || request.event === null) throw new ExploreError('event must be an object');
  return request as ExploreRequest;
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY) throw new ExploreError(`the request is larger than ${MAX_BODY} bytes`);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

function send(res: ServerResponse, status: number, type: string, body: string | Buffer): void {
  res.writeHead(status, {
    'Content-Type': type,
    'Cache-Control': 'no-store',
    'Content-Security-Policy': CONTENT_SECURITY_POLICY,
    'X-Content-Type-Options': 'nosniff',
  });
  res.end(body);
}
