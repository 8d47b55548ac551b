// The visualizer page: draws the statecharts, follows the live instances
// through the server's event stream (/api/live), and hosts the explorer.

import { Explorer } from './explorer.js';
import { bytes, clock, count, rate } from './format.js';
import { BarChart, LineChart } from './live-charts.js';
import { MessageView } from './message-view.js';
import { StatechartView } from './statechart-view.js';

// The sides are followed live; every chart (the return path's too) can be explored.
const SIDES = ['source', 'destination'];
// Statuses in which nothing moves: samples taken then add nothing to the charts.
const IDLE = new Set(['none', 'completed', 'failed', 'cancelled']);

const charts = await (await fetch('/api/charts')).json();
const CHARTS = Object.keys(charts);
const views = Object.fromEntries(CHARTS.map((name) => [name, new StatechartView(document.getElementById(`${name}-svg`), charts[name])]));
const live = Object.fromEntries(CHARTS.map((name) => [name, { status: null, visited: new Set(), edge: null }]));
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
  series: [{ name: 'remaining (source)', color: '#d97706' }],
  format: bytes,
  unit: 1 << 20,
});
const dirty = new BarChart(document.getElementById('chart-dirty'), {
  color: '#dc2626',
  label: (pass) => `pass ${pass}`,
  format: (v) => `${count(v)} p/s`,
});
const previous = { source: null, destination: null };

function onSample(sample) {
  const side = sample.side;
  const moving = !IDLE.has(sample.status);
  const before = previous[side];
  const counter = (side === 'source' ? sample.ram?.transferred : sample.incomingBytes) ?? null;
  const measurable = moving && before?.moving && counter !== null && before.counter !== null;
  const bps = measurable ? ((counter - before.counter) * 1000) / Math.max(1, sample.at - before.at) : 0;
  // A destination listens long before the first byte: a line starts when bytes flow, and ends at zero.
  const flowing = moving && (bps > 0 || Boolean(before?.flowing));
  const series = side === 'source' ? 0 : 1;
  if (measurable && flowing) {
    throughput.add(series, sample.at, Math.max(0, bps));
    if (side === 'source') {
      const reported = sample.ram.mbps > 0 ? ` · ${sample.ram.mbps.toFixed(0)} Mbit/s in query-migrate` : '';
      document.getElementById('throughput-now').textContent = `${rate(bps)} sent${reported}`;
    }
  } else if (!moving && before?.flowing) {
    throughput.add(series, sample.at, 0);
    throughput.gap(series);
  }
  if (side === 'source' && sample.ram) {
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
}

// ---- transitions ----

const transitions = document.querySelector('#transitions tbody');

function onTransition(t) {
  const state = live[t.side];
  state.status = t.to;
  state.visited.add(t.to);
  state.edge = views[t.side].findTransition(t.from, t.to)?.id ?? null;
  const row = transitions.insertRow();
  row.className = t.side;
  row.insertCell().textContent = clock(t.at);
  row.insertCell().textContent = t.side;
  row.insertCell().textContent = t.from === null ? `(first seen) ${t.to}` : `${t.from} → ${t.to}`;
  row.insertCell().textContent = t.via === 'event' ? 'MIGRATION event' : 'query-migrate';
  row.scrollIntoView({ block: 'nearest' });
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

const messages = new MessageView(document.getElementById('messages'));

function onMessage(m) {
  messages.add(m);
  document.getElementById('message-count').textContent = String(messages.count);
}

const stream = new EventSource('/api/live');
// The server replays its history to every new stream: after a reconnect, start over rather than show it twice.
let opened = false;
stream.addEventListener('open', () => {
  if (opened) location.reload();
  opened = true;
});
stream.addEventListener('connection', (e) => onConnection(JSON.parse(e.data)));
stream.addEventListener('transition', (e) => onTransition(JSON.parse(e.data)));
stream.addEventListener('sample', (e) => onSample(JSON.parse(e.data)));
stream.addEventListener('message', (e) => onMessage(JSON.parse(e.data)));
stream.addEventListener('pass', (e) => {
  const p = JSON.parse(e.data);
  document.getElementById('passes-now').textContent = `MIGRATION_PASS ${p.pass} at ${clock(p.at)}`;
});

redraw();
document.body.dataset.ready = 'true';
