import { expect } from 'chai';
import { request } from 'node:http';
import { defineCommand } from '../protocols/qmp/command.js';
import { NO_ARGUMENTS } from '../protocols/qmp/schema.js';
import { QmpServer } from '../protocols/qmp/server.js';
import { InstanceWatch } from '../tools/viz/instance-watch.js';
import { startVizServer, type VizServer } from '../tools/viz/server.js';
import { Timeline, type LiveUpdate } from '../tools/viz/timeline.js';

interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** One HTTP request with a chosen Host header (fetch does not let a test set it). */
function http(url: string, options: { method?: string; host?: string; body?: string } = {}): Promise<Reply> {
  const target = new URL(url);
  return new Promise((resolve, reject) => {
    const req = request(
      { host: target.hostname, port: target.port, path: target.pathname, method: options.method ?? 'GET', headers: { host: options.host ?? target.host } },
      (res) => {
        let body = '';
        res.on('data', (c: Buffer) => (body += c.toString()));
        res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body }));
      },
    );
    req.on('error', reject);
    req.end(options.body);
  });
}

async function until(what: string, check: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`never saw ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('viz server', () => {
  let viz: VizServer;
  beforeEach(async () => (viz = await startVizServer({ port: 0 })));
  afterEach(() => viz.close());

  it('listens on 127.0.0.1 and serves the page with a policy that forbids other origins', async () => {
    expect(viz.url).to.match(/^http:\/\/127\.0\.0\.1:\d+\/$/);
    const page = await http(viz.url);
    expect(page.status).to.equal(200);
    expect(page.headers['content-type']).to.equal('text/html; charset=utf-8');
    expect(page.headers['content-security-policy']).to.equal("default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:");
    expect(page.body).to.contain('<script type="module" src="/static/page.js"></script>');
    expect(page.body).not.to.match(/(src|href)="(https?:)?\/\//);
  });

  it('answers 421 to a request for another host name (DNS rebinding) and 404 outside its files', async () => {
    expect((await http(viz.url, { host: 'attacker.example:80' })).status).to.equal(421);
    expect((await http(`${viz.url}static/../server.ts`)).status).to.equal(404);
    expect((await http(`${viz.url}static/server.ts`)).status).to.equal(404);
  });

  it('gives every chart with its graph, SVG and events, and explores over POST', async () => {
    const charts = JSON.parse((await http(`${viz.url}api/charts`)).body);
    expect(Object.keys(charts)).to.deep.equal(['source', 'destination', 'return-path']);
    expect(charts.source.svg).to.contain('<svg');
    expect(charts.source.address).to.equal(null);
    expect(charts.destination.events.map((e: { type: string }) => e.type)).to.include('migrate-incoming');
    expect(charts.source.events.find((e: { type: string }) => e.type === 'migrate-start-postcopy').presets).to.have.length(2);
    expect(charts['return-path']).to.deep.include({ address: null, initialContext: { error: null } });
    const step = await http(`${viz.url}api/explore`, {
      method: 'POST',
      body: JSON.stringify({ side: 'destination', status: 'setup', event: { type: 'stream.arrived' } }),
    });
    expect(step.status).to.equal(200);
    expect(JSON.parse(step.body)).to.include({ from: 'setup', to: 'active', reason: null });
    const path = await http(`${viz.url}api/explore`, {
      method: 'POST',
      body: JSON.stringify({ side: 'return-path', status: 'return-path.open', event: { type: 'bad', error: 'the destination closed the return path without SHUT' } }),
    });
    expect(JSON.parse(path.body)).to.include({ from: 'return-path.open', to: 'return-path.bad', reason: null });
    const bad = await http(`${viz.url}api/explore`, { method: 'POST', body: '{"side":"left"}' });
    expect([bad.status, JSON.parse(bad.body)]).to.deep.equal([400, { error: "side must be one of 'source', 'destination', 'return-path'" }]);
  });

  it('replays the timeline to a new /api/live stream, then streams what comes next', async () => {
    viz.timeline.publish({ topic: 'transition', side: 'source', from: 'none', to: 'setup', at: 1, via: 'event' });
    const controller = new AbortController();
    const response = await fetch(`${viz.url}api/live`, { signal: controller.signal });
    expect(response.headers.get('content-type')).to.equal('text/event-stream');
    const reader = response.body!.getReader();
    let text = '';
    const read = async (want: string) => {
      while (!text.includes(want)) text += new TextDecoder().decode((await reader.read()).value);
    };
    await read('"to":"setup"');
    viz.timeline.publish({ topic: 'transition', side: 'source', from: 'setup', to: 'active', at: 2, via: 'event' });
    await read('"to":"active"');
    controller.abort();
    expect(text).to.equal(
      'retry: 1000\n\n' +
        'event: transition\ndata: {"topic":"transition","side":"source","from":"none","to":"setup","at":1,"via":"event"}\n\n' +
        'event: transition\ndata: {"topic":"transition","side":"source","from":"setup","to":"active","at":2,"via":"event"}\n\n',
    );
  });
});

describe('viz instance watch', () => {
  let qmp: QmpServer;
  let watch: InstanceWatch | undefined;
  afterEach(async () => {
    await watch?.close();
    await qmp.close();
  });

  it('does not move a status back when a query-migrate reply is overtaken by a newer MIGRATION event', async () => {
    let status = 'setup';
    // The reply says setup, but the status changes (and the event goes out) before the reply is written.
    qmp = new QmpServer({
      commands: new Map([
        ['query-migrate', defineCommand({
          args: NO_ARGUMENTS,
          run: () => {
            const reply = { status, ram: { transferred: 4096, remaining: 8192, total: 16384, mbps: 1, 'dirty-pages-rate': 5, 'dirty-sync-count': 1 } };
            if (status === 'setup') {
              status = 'active';
              qmp.emitEvent('MIGRATION', { status: 'active' });
            }
            return reply;
          },
        })],
      ]),
    });
    const address = await qmp.listen('tcp:127.0.0.1:0');
    const timeline = new Timeline();
    const seen: LiveUpdate[] = [];
    timeline.subscribe((u) => seen.push(u));
    watch = new InstanceWatch('source', address, timeline, 10);
    await until('three samples', () => seen.filter((u) => u.topic === 'sample').length >= 3);
    const transitions = seen.filter((u) => u.topic === 'transition').map((u) => u.topic === 'transition' && [u.from, u.to, u.via]);
    expect(transitions).to.deep.equal([[null, 'active', 'event']]);
    expect(seen[0]).to.deep.equal({ topic: 'connection', side: 'source', address, state: 'connecting', detail: null, trace: false });
    expect(seen.find((u) => u.topic === 'connection' && u.state === 'connected')).to.include({ trace: false });
    expect(seen.find((u) => u.topic === 'sample')).to.deep.include({
      status: 'setup',
      ram: { transferred: 4096, remaining: 8192, total: 16384, mbps: 1, dirtyPagesRate: 5, dirtySyncCount: 1 },
      incomingBytes: null,
    });
  });

  it('reports a lost instance once, and follows it again when it is back', async () => {
    qmp = new QmpServer({ commands: new Map([['query-migrate', defineCommand({ args: NO_ARGUMENTS, run: () => ({}) })]]) });
    const address = await qmp.listen('tcp:127.0.0.1:0');
    const timeline = new Timeline();
    const states: string[] = [];
    timeline.subscribe((u) => u.topic === 'connection' && states.push(u.state));
    watch = new InstanceWatch('destination', address, timeline, 10);
    await until('connected', () => states.includes('connected'));
    await qmp.close();
    await until('lost', () => states.includes('lost'));
    qmp = new QmpServer({ commands: new Map([['query-migrate', defineCommand({ args: NO_ARGUMENTS, run: () => ({}) })]]) });
    await qmp.listen(address);
    await until('connected again', () => states.filter((s) => s === 'connected').length === 2, 5000);
    expect(states).to.deep.equal(['connecting', 'connected', 'lost', 'connected']);
  });
});
