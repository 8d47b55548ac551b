// Postcopy's and COLO's own traffic, as they happen: page requests a
// second (served by the source, sent by the destination), how long the
// destination guest's faults waited for their pages, each postcopy pause
// and its recovery as a shaded span of time, and COLO checkpoints one bar
// each. A card shows once it has something to show.

import { CounterRate } from './counter-rate.js';
import { count } from './format.js';
import { BarChart, LineChart } from './live-charts.js';

const SIDE_SERIES = { source: 0, destination: 1 };
/** Where a postcopy pause ends: back to postcopy-active, or the migration is over. */
const PAUSED = new Set(['postcopy-paused', 'postcopy-recover']);

const ms = (v) => `${v >= 10 ? v.toFixed(0) : v.toFixed(1)} ms`;

export class TrafficView {
  /**
   * @param {number} spanMs  the shortest span a rate is measured over
   * @param {LineChart[]} alsoShaded  other charts that shade the pauses (throughput)
   */
  constructor(spanMs, alsoShaded) {
    this.cards = {
      postcopy: document.getElementById('postcopy-card'),
      latency: document.getElementById('latency-card'),
      colo: document.getElementById('colo-card'),
    };
    this.requests = new LineChart(document.getElementById('chart-requests'), {
      series: [
        { name: 'served (source)', color: '#2563eb' },
        { name: 'sent (destination)', color: '#16a34a' },
      ],
      format: (v) => `${count(v)}/s`,
    });
    this.latency = new LineChart(document.getElementById('chart-latency'), {
      series: [
        { name: 'p50', color: '#0891b2' },
        { name: 'p99', color: '#b91c1c', dashed: true },
      ],
      format: ms,
    });
    this.checkpoints = new BarChart(document.getElementById('chart-checkpoints'), {
      color: '#7c3aed',
      label: (id) => `#${id}`,
      format: ms,
    });
    this.shaded = [this.requests, ...alsoShaded];
    this.rates = { source: new CounterRate(spanMs), destination: new CounterRate(spanMs) };
    /** Per side, the pause under way: when it began, and its number. */
    this.pause = { source: null, destination: null };
    this.pauses = 0;
  }

  /** A new migration on `side`: its traffic starts afresh (the source's clears the shared charts). */
  clear(side) {
    this.rates[side].reset();
    this.pause[side] = null;
    if (side !== 'source') return;
    this.pauses = 0;
    this.requests.clear();
    this.latency.clear();
    this.checkpoints.clear();
    for (const card of Object.values(this.cards)) card.hidden = true;
    for (const id of ['requests-now', 'latency-now', 'colo-now']) document.getElementById(id).textContent = '';
  }

  onSample(sample, moving) {
    const p = sample.postcopy;
    if (!p || !moving) {
      this.rates[sample.side].reset();
      return;
    }
    // query-migrate always has a request count: the card shows once postcopy has begun.
    if (this.cards.postcopy.hidden && p.requests === 0 && !sample.status.startsWith('postcopy')) return;
    this.cards.postcopy.hidden = false;
    const perSecond = this.rates[sample.side].add(sample.at, p.requests);
    if (perSecond !== null) this.requests.add(SIDE_SERIES[sample.side], sample.at, Math.max(0, perSecond));
    document.getElementById('requests-now').textContent = `${count(p.requests)} ${sample.side === 'source' ? 'served' : 'sent'} so far`;
    const l = p.faultLatencyUs;
    if (l && l.count > 0) {
      this.cards.latency.hidden = false;
      this.latency.add(0, sample.at, l.p50 / 1000);
      this.latency.add(1, sample.at, l.p99 / 1000);
      document.getElementById('latency-now').textContent = `${count(l.count)} faults · max ${ms(l.max / 1000)}`;
    }
  }

  /** A postcopy pause is shaded from its start to where postcopy runs again (or the migration ends). */
  onTransition(t) {
    const open = this.pause[t.side];
    if (PAUSED.has(t.to)) {
      if (open === null) this.pause[t.side] = { from: t.at, n: ++this.pauses };
      const { from, n } = this.pause[t.side];
      for (const chart of this.shaded) chart.band(`${t.side}-${n}`, from, null, `${t.side} ${t.to}`);
      return;
    }
    if (open === null) return;
    const label = t.to === 'postcopy-active' ? `${t.side} paused ${((t.at - open.from) / 1000).toFixed(1)} s, recovered` : `${t.side} paused, then ${t.to}`;
    for (const chart of this.shaded) chart.band(`${t.side}-${open.n}`, open.from, t.at, label);
    this.pause[t.side] = null;
  }

  onCheckpoint(c) {
    // Both sides report each checkpoint: the primary's figures are the ones it was decided on.
    if (c.side !== 'source') return;
    this.cards.colo.hidden = false;
    this.checkpoints.set(c.id, c.ms, `${c.reason}, ${count(c.pages)} pages, guest stopped ${ms(c.downtimeMs)}`);
    document.getElementById('colo-now').textContent = `#${c.id}: ${ms(c.ms)} (${c.reason}), ${count(c.pages)} pages`;
  }
}
