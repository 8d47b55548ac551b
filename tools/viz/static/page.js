// The visualizer page: draws the statecharts, follows the live instances
// through the server's event stream (/api/live), and hosts the explorer.
//
// Every update the page is shown is recorded, and the views are a function
// of the updates applied so far: time travel resets them and applies the
// recorded updates up to the chosen moment (travel.js keeps the recording,
// the migrations in it and the slider).

import { Explorer } from './explorer.js';
import { bytes, clock, count, rate } from './format.js';
import { BarChart, LineChart } from './live-charts.js';
import { MessageView } from './message-view.js';
import { StatechartView } from './statechart-view.js';
import { Travel } from './travel.js';
import { CounterRate } from './counter-rate.js';
import { TrafficView } from './traffic-view.js';

// The sides are followed live; every chart (the return path's too) can be explored.
const SIDES = ['source', 'destination'];
// Statuses in which nothing moves: samples taken then add nothing to the charts.
const IDLE = new Set(['none', 'completed', 'failed', 'cancelled']);

const charts = await (await fetch('/api/charts')).json();
const CHARTS = Object.keys(charts);
const views = Object.fromEntries(CHARTS.map((name) => [name, new StatechartView(document.getElementById(`${name}-svg`), charts[name])]));
for (const name of CHARTS) {
  for (const [zoom, act] of [['in', (v) => v.zoomBy(1.25)], ['out', (v) => v.zoomBy(0.8)], ['fit', (v) => v.fit()]]) {
    document.querySelector(`[data-side="${name}"] [data-zoom="${zoom}"]`).addEventListener('click', () => act(views[name]));
  }
}
const freshLive = () => Object.fromEntries(CHARTS.map((name) => [name, { status: null, visited: new Set(), edge: null }]));
let live = freshLive();
const following = SIDES.some((side) => charts[side].address !== null);
let mode = following ? 'live' : 'explore';

const explorer = new Explorer(charts, views, () => redraw());

function redraw() {
  document.body.dataset.mode = mode;
  for (const name of CHARTS) {
    const shown = mode === 'live' ? live[name] : explorer.view(name);
    views[name].show(shown);
    const badge = document.getElementById(`${name}-status`);
    const label = shown.status === null ? null : (charts[name].graph.states.find((s) => s.id === shown.status)?.label ?? shown.status);
    badge.textContent = label ?? '—';
    badge.dataset.status = shown.status ?? '';
  }
  for (const b of document.querySelectorAll('[data-mode-button]')) b.classList.toggle('active', b.dataset.modeButton === mode);
}

for (const button of document.querySelectorAll('[data-mode-button]')) {
  button.addEventListener('click', () => {
    mode = button.dataset.modeButton;
    redraw();
  });
}
document.getElementById('no-instances').hidden = following;

// ---- live charts ----

const throughput = new LineChart(document.getElementById('chart-throughput'), {
  series: [
    { name: 'sent (source)', color: '#2563eb' },
    { name: 'received (destination)', color: '#16a34a' },
  ],
  format: rate,
  unit: 1 << 20,
});
const remaining = new LineChart(document.getElementById('chart-remaining'), {
  series: [
    { name: 'remaining (source)', color: '#d97706' },
    // What the switchover may take: below it the migration converges (QEMU's threshold_size).
    { name: 'threshold: bandwidth × downtime-limit', color: '#7c3aed', dashed: true },
  ],
  format: bytes,
  unit: 1 << 20,
});
const dirty = new BarChart(document.getElementById('chart-dirty'), {
  color: '#dc2626',
  label: (pass) => `pass ${pass}`,
  format: (v) => count(v),
});
const previous = { source: null, destination: null };
/** The shortest span a throughput point is measured over. */
const RATE_SPAN_MS = 250;
/** Per side, the rate of its byte counter. */
const byteRates = { source: new CounterRate(RATE_SPAN_MS), destination: new CounterRate(RATE_SPAN_MS) };
const traffic = new TrafficView(RATE_SPAN_MS, [throughput]);

/**
 * One migration at a time: a side entering `setup` starts a new one (its
 * charts, visited states and pass bars start empty, the time axis at its
 * start), and a status back at `none` is an instance restarted.
 */
function startMigration(side, at, restart) {
  const state = live[side];
  state.visited = new Set();
  state.edge = null;
  errors[side] = null;
  previous[side] = null;
  byteRates[side].reset();
  // Nothing was sent before the migration began: a first sample has a rate already (a fast migration may have only one).
  if (!restart) byteRates[side].add(at, 0);
  traffic.clear(side);
  if (side === 'source') {
    throughput.clear();
    remaining.clear();
    dirty.clear();
    for (const id of ['throughput-now', 'remaining-now', 'passes-now']) document.getElementById(id).textContent = '';
  }
  const row = transitions.insertRow();
  row.className = `${side} restart`;
  row.insertCell().textContent = clock(at);
  row.insertCell().textContent = side;
  row.insertCell().textContent = restart ? 'instance restarted' : 'a new migration';
  row.insertCell().textContent = '';
  if (side === 'source' && !restart) document.getElementById('migration-now').textContent = `migration from ${clock(at)}`;
}

function onSample(sample) {
  const side = sample.side;
  const moving = !IDLE.has(sample.status);
  const before = previous[side];
  const counter = (side === 'source' ? sample.ram?.transferred : sample.incomingBytes) ?? null;
  if (!moving || counter === null) byteRates[side].reset();
  const measured = moving && counter !== null ? byteRates[side].add(sample.at, counter) : null;
  const measurable = measured !== null;
  const bps = measured ?? 0;
  // A destination listens long before the first byte: a line starts when bytes flow, and ends at zero.
  const flowing = moving && (bps > 0 || Boolean(before?.flowing));
  const series = side === 'source' ? 0 : 1;
  if (measurable && flowing) {
    throughput.add(series, sample.at, Math.max(0, bps));
    if (side === 'source') {
      // query-migrate's mbps is Mbit/s: shown in the chart's own unit.
      const reported = sample.ram.mbps > 0 ? ` · ${rate((sample.ram.mbps * 1e6) / 8)} by query-migrate` : '';
      document.getElementById('throughput-now').textContent = `${rate(bps)} sent${reported}`;
    }
  } else if (!moving && before?.flowing) {
    throughput.add(series, sample.at, 0);
    throughput.gap(series);
  }
  if (side === 'source') noteParameters(sample, moving);
  if (side === 'source' && sample.ram) {
    if (moving && sample.ram.mbps > 0 && sample.params) {
      remaining.add(1, sample.at, ((sample.ram.mbps * 1e6) / 8) * (sample.params.downtimeLimitMs / 1000));
    } else if (!moving && before?.moving) {
      remaining.gap(1);
    }
    if (moving && sample.ram.remaining !== null) {
      remaining.add(0, sample.at, sample.ram.remaining);
      document.getElementById('remaining-now').textContent = `${bytes(sample.ram.remaining)} of ${bytes(sample.ram.total)}`;
    } else if (!moving && before?.moving) {
      // query-migrate drops `remaining` once completed: nothing is left.
      remaining.add(0, sample.at, 0);
      remaining.gap(0);
      document.getElementById('remaining-now').textContent = sample.status;
    }
    if (moving && sample.ram.dirtyPagesRate !== null && sample.ram.dirtySyncCount > 0) {
      dirty.set(sample.ram.dirtySyncCount, sample.ram.dirtyPagesRate);
    }
  }
  previous[side] = { at: sample.at, counter, moving, flowing };
  traffic.onSample(sample, moving);
  if (sample.error !== errors[side]) {
    errors[side] = sample.error;
    showError(side);
  }
}

// ---- parameter changes ----

/** The source's parameters at the last sample: a change during a migration is marked on its charts. */
let lastParams = null;

function noteParameters(sample, moving) {
  const now = sample.params;
  if (!now) return;
  const was = lastParams;
  lastParams = now;
  if (!moving || was === null) return;
  const changes = [];
  if (now.maxBandwidth !== was.maxBandwidth) changes.push(`max-bandwidth ${rate(was.maxBandwidth)} → ${rate(now.maxBandwidth)}`);
  if (now.downtimeLimitMs !== was.downtimeLimitMs) changes.push(`downtime-limit ${was.downtimeLimitMs} → ${now.downtimeLimitMs} ms`);
  if (changes.length === 0) return;
  for (const chart of [throughput, remaining]) chart.mark(sample.at, changes.join(', '));
}

// ---- failures ----

/** Each side's error-desc while its migration is failed (or paused), shown where its chart is. */
const errors = { source: null, destination: null };

function showError(side) {
  const el = document.getElementById(`${side}-error`);
  const text = errors[side];
  el.hidden = text === null;
  el.textContent = text === null ? '' : text;
}

// ---- transitions ----

const transitions = document.querySelector('#transitions tbody');

/** Per side, the statechart's own account of its last status change (a traced instance): which event made it. */
const edges = { source: null, destination: null };
/** Per side, the table row of its last status change, to name the event once the trace says it. */
const lastRow = { source: null, destination: null };
/** Per side, every traced status change (with the statechart's context then), for the inspector. */
const contexts = { source: [], destination: [] };

function eventLabel(side, event) {
  return charts[side].graph.transitions.find((t) => t.event === event)?.label ?? event;
}

/** Lights the edge the traced event took into the side's current status, never one guessed from the two statuses. */
function lightEdge(side) {
  const state = live[side];
  const e = edges[side];
  if (e === null || e.to !== state.status) return false;
  state.edge = views[side].findTransition(e.from, e.to, e.event)?.id ?? null;
  const row = lastRow[side];
  if (row && row.dataset.to === e.to) row.cells[3].textContent = eventLabel(side, e.event);
  return true;
}

function onEdge(e) {
  edges[e.side] = e;
  contexts[e.side].push(e);
  if (lightEdge(e.side) && mode === 'live') redraw();
}

function onTransition(t) {
  traffic.onTransition(t);
  const state = live[t.side];
  const restart = t.to === 'none' && t.from !== null && t.from !== 'none';
  if (restart || (t.to === 'setup' && t.from !== 'setup')) startMigration(t.side, t.at, restart);
  state.status = t.to;
  if (!restart) state.visited.add(t.to);
  const row = transitions.insertRow();
  row.className = t.side;
  row.dataset.to = t.to;
  row.insertCell().textContent = clock(t.at);
  row.insertCell().textContent = t.side;
  row.insertCell().textContent = t.from === null ? `(first seen) ${t.to}` : `${t.from} → ${t.to}`;
  row.insertCell().textContent = t.via === 'event' ? 'MIGRATION event' : 'query-migrate';
  lastRow[t.side] = row;
  // Without the trace the edge is a guess from the two statuses, and the page says so.
  if (!lightEdge(t.side)) {
    const traced = connections[t.side]?.trace === true;
    state.edge = traced || restart ? null : (views[t.side].findTransition(t.from, t.to)?.id ?? null);
    if (state.edge !== null) row.cells[3].textContent += ' (edge guessed: no trace)';
  }
  row.addEventListener('click', () => inspectTransition(t));
  if (!travel.rebuilding) row.scrollIntoView({ block: 'nearest' });
  if (mode === 'live') redraw();
}

// ---- connections ----

const connections = {};

function onConnection(c) {
  connections[c.side] = c;
  const host = document.getElementById('connections');
  host.replaceChildren(
    ...SIDES.filter((side) => connections[side]).map((side) => {
      const k = connections[side];
      const span = document.createElement('span');
      span.className = `connection ${k.state}`;
      span.dataset.side = side;
      span.title = k.detail ?? '';
      span.textContent = `${side} ${k.address}: ${k.state}${k.state === 'connected' ? (k.trace ? ' · trace on' : ' · no trace extension') : ''}`;
      return span;
    }),
  );
}

// ---- actor messages ----

const messages = new MessageView(document.getElementById('messages'), (m) => inspectMessage(m));

function onMessage(m) {
  messages.add(m);
  document.getElementById('message-count').textContent = String(messages.count);
}

// ---- inspection ----

const inspector = document.getElementById('inspect');

/** Shows one recorded thing: what it is, then named JSON sections (payload, context, the figures at that moment). */
function inspect(title, sections) {
  const body = document.getElementById('inspect-body');
  document.getElementById('inspect-title').textContent = title;
  body.replaceChildren(
    ...sections.map(([name, value]) => {
      const section = document.createElement('section');
      section.append(
        Object.assign(document.createElement('h4'), { textContent: name }),
        Object.assign(document.createElement('pre'), { textContent: value === undefined || value === null ? '—' : JSON.stringify(value, null, 2) }),
      );
      return section;
    }),
  );
  inspector.hidden = false;
}

function inspectTransition(t) {
  const traced = contexts[t.side].find((e) => e.to === t.to && Math.abs(e.at - t.at) < 1000);
  inspect(`${t.side}: ${t.from ?? '(first seen)'} → ${t.to} at ${clock(t.at)}${traced ? `, by event ${eventLabel(t.side, traced.event)}` : ''}`, [
    ['statechart context as it entered the status', traced?.context ?? (traced ? null : 'not traced: the instance has no trace extension')],
    ['query-migrate at that moment', sampleShown(travel.sampleAt(t.side, t.at))],
  ]);
}

/** A recorded sample as the inspector shows it: when it was taken, then its figures. */
function sampleShown(sample) {
  if (sample === null) return 'no sample yet';
  const { topic: _topic, side: _side, at, ...figures } = sample;
  return { taken: clock(at), ...figures };
}

function inspectMessage(m) {
  inspect(`${m.side}: ${m.from} → ${m.to}: ${m.type} (${m.kind}) at ${clock(m.at)}`, [
    ['payload', m.payload ?? (m.kind === 'event' ? {} : 'a message between actors that are not statecharts carries no payload')],
    ['query-migrate at that moment', sampleShown(travel.sampleAt(m.side, m.at))],
  ]);
}

document.getElementById('inspect-close').addEventListener('click', () => (inspector.hidden = true));

// ---- updates, recorded and applied ----

function apply(update) {
  switch (update.topic) {
    case 'connection':
      return onConnection(update);
    case 'transition':
      return onTransition(update);
    case 'edge':
      return onEdge(update);
    case 'sample':
      return onSample(update);
    case 'message':
      return onMessage(update);
    case 'pass':
      document.getElementById('passes-now').textContent = `MIGRATION_PASS ${update.pass} at ${clock(update.at)}`;
      return undefined;
    case 'checkpoint':
      return traffic.onCheckpoint(update);
  }
}

/** Back to before the first update: every view empty, as a page just opened. */
function resetViews() {
  live = freshLive();
  for (const side of SIDES) {
    edges[side] = null;
    lastRow[side] = null;
    contexts[side] = [];
    errors[side] = null;
    previous[side] = null;
    byteRates[side].reset();
    traffic.clear(side);
    showError(side);
  }
  lastParams = null;
  throughput.clear();
  remaining.clear();
  dirty.clear();
  messages.clear();
  transitions.replaceChildren();
  document.getElementById('message-count').textContent = '';
  for (const id of ['throughput-now', 'remaining-now', 'passes-now', 'migration-now']) document.getElementById(id).textContent = '';
}

const travel = new Travel({
  sideOfMigrations: () => (connections.source || charts.source.address !== null ? 'source' : 'destination'),
  reset: resetViews,
  apply,
  redraw: () => redraw(),
  detach: () => {
    stream.close();
    document.getElementById('no-instances').hidden = true;
    mode = 'live';
  },
});

const stream = new EventSource('/api/live');
// The server replays its history to every new stream: after a reconnect, start over rather than show it twice.
let opened = false;
stream.addEventListener('open', () => {
  if (opened) location.reload();
  opened = true;
});
for (const topic of ['connection', 'transition', 'edge', 'sample', 'message', 'pass', 'checkpoint']) {
  stream.addEventListener(topic, (e) => travel.receive(JSON.parse(e.data)));
}

redraw();
document.body.dataset.ready = 'true';
