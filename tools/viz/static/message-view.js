// The actors' messages as a sequence diagram: one lane per actor per process
// (each side has its own monitor, return path, multifd...), one row per
// message, newest at the bottom. Lanes appear as actors are first seen: the
// source's on the left, the destination's on the right, each in the order a
// migration's messages flow.

import { clock } from './format.js';

const NS = 'http://www.w3.org/2000/svg';
const LANE_ORDER = [
  'source:monitor', 'source:source', 'source:guest', 'source:migration', 'source:colo-compare', 'source:multifd', 'source:return-path', 'source:postcopy-preempt',
  'destination:postcopy-preempt', 'destination:return-path', 'destination:multifd', 'destination:incoming', 'destination:colo', 'destination:destination',
  'destination:guest', 'destination:monitor',
];
/** A lane's width: shared out of the card's, within these bounds (narrower, the labels would run together). */
const LANE_MIN_W = 72;
const LANE_MAX_W = 120;

/** The lane of `actor` in the process of `side`. */
const laneOf = (side, actor) => `${side}:${actor}`;

/** Actors only one side has: their name says where they are. */
const ONE_SIDED = new Set(['source', 'destination', 'migration', 'incoming', 'colo-compare', 'colo']);

/** A lane's heading: the actor, and its side unless the actor names it. */
function heading(lane) {
  const [side, actor] = lane.split(':');
  return ONE_SIDED.has(actor) ? actor : `${actor} (${side === 'source' ? 'src' : 'dst'})`;
}
const ROW_H = 20;
const TIME_W = 92;
const MAX_ROWS = 400;

export class MessageView {
  /**
   * @param {HTMLElement} host
   * @param {(message: any) => void} onPick  a message was clicked
   */
  constructor(host, onPick) {
    this.host = host;
    this.onPick = onPick;
    this.lanes = [];
    this.messages = [];
    this.header = document.createElement('div');
    this.header.className = 'lanes';
    this.body = document.createElement('div');
    host.append(this.header, this.body);
    this.count = 0;
    this.laneW = LANE_MAX_W;
    // A card resized (the window, a narrower layout) lays its lanes out again.
    let width = host.clientWidth;
    new ResizeObserver(() => {
      if (host.clientWidth === width || this.lanes.length === 0) return;
      width = host.clientWidth;
      this.relayout();
    }).observe(host);
    /** Messages taken but not drawn yet, and whether the lanes changed since the last drawing. */
    this.pending = [];
    this.lanesChanged = false;
    this.flushQueued = false;
  }

  /** Forgets every message and lane: the page shows an earlier moment. */
  clear() {
    this.count = 0;
    this.lanes = [];
    this.messages = [];
    this.pending = [];
    this.lanesChanged = false;
    this.header.replaceChildren();
    this.body.replaceChildren();
  }

  /**
   * Takes a message; rows are drawn once per animation frame, however many
   * come (a postcopy migration traces thousands of page requests a second,
   * and drawing each as it came made the page lag behind by seconds).
   */
  add(message) {
    this.count++;
    for (const actor of [message.from, message.to]) {
      const lane = laneOf(message.side, actor);
      if (!this.lanes.includes(lane)) {
        this.lanes.push(lane);
        const rank = (a) => (LANE_ORDER.includes(a) ? LANE_ORDER.indexOf(a) : LANE_ORDER.length);
        this.lanes.sort((a, b) => rank(a) - rank(b));
        this.lanesChanged = true;
      }
    }
    this.messages.push(message);
    if (this.messages.length > MAX_ROWS) this.messages.shift();
    this.pending.push(message);
    if (this.pending.length > MAX_ROWS) this.pending.shift();
    if (this.flushQueued) return;
    this.flushQueued = true;
    requestAnimationFrame(() => this.flush());
  }

  flush() {
    this.flushQueued = false;
    const stick = this.host.scrollTop + this.host.clientHeight >= this.host.scrollHeight - 4;
    if (this.lanesChanged) {
      this.lanesChanged = false;
      this.relayout();
    } else {
      this.body.append(...this.pending.map((m) => this.row(m)));
      while (this.body.childElementCount > MAX_ROWS) this.body.firstElementChild.remove();
    }
    this.pending = [];
    if (stick) this.host.scrollTop = this.host.scrollHeight;
  }

  /** Lays the lanes out again, as wide as the card allows: every lane in view at 1280 px. */
  relayout() {
    const room = this.host.clientWidth - TIME_W - 4;
    this.laneW = Math.max(LANE_MIN_W, Math.min(LANE_MAX_W, Math.floor(room / Math.max(1, this.lanes.length))));
    this.header.replaceChildren(
      Object.assign(document.createElement('span'), { className: 'time', textContent: 'time' }),
      ...this.lanes.map((lane) => {
        const span = Object.assign(document.createElement('span'), { className: 'lane', textContent: heading(lane), title: lane });
        span.style.width = `${this.laneW}px`;
        return span;
      }),
    );
    this.body.replaceChildren(...this.messages.map((m) => this.row(m)));
  }

  row(message) {
    const width = this.lanes.length * this.laneW;
    const div = document.createElement('div');
    div.className = `message ${message.side} kind-${message.kind}`;
    div.addEventListener('click', () => this.onPick(message));
    const time = Object.assign(document.createElement('span'), { className: 'time', textContent: clock(message.at) });
    const svg = document.createElementNS(NS, 'svg');
    svg.setAttribute('width', String(width));
    svg.setAttribute('height', String(ROW_H));
    const x = (lane) => this.lanes.indexOf(lane) * this.laneW + this.laneW / 2;
    for (const lane of this.lanes) svg.append(el('line', { x1: x(lane), x2: x(lane), y1: 0, y2: ROW_H, class: 'lifeline' }));
    const x1 = x(laneOf(message.side, message.from));
    const x2 = x(laneOf(message.side, message.to));
    const y = ROW_H - 5;
    if (x1 === x2) {
      svg.append(el('path', { d: `M${x1},${y - 6} h14 v6 h-12`, class: 'arrow' }));
    } else {
      const dir = x2 > x1 ? 1 : -1;
      svg.append(el('line', { x1, x2: x2 - dir * 4, y1: y, y2: y, class: 'arrow' }));
      svg.append(el('path', { d: `M${x2},${y} l${-dir * 6},-3.5 v7 z`, class: 'head' }));
    }
    const label = el('text', { x: (x1 + x2) / 2 + (x1 === x2 ? 20 : 0), y: y - 4, 'text-anchor': x1 === x2 ? 'start' : 'middle' });
    label.textContent = message.type;
    svg.append(label);
    svg.append(Object.assign(el('title'), { textContent: `${message.side}: ${message.from} → ${message.to}: ${message.type} (${message.kind})` }));
    div.append(time, svg);
    div.style.minWidth = `${TIME_W + width}px`;
    return div;
  }
}

function el(name, attrs = {}) {
  const e = document.createElementNS(NS, name);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  return e;
}
