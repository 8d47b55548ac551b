// Small SVG charts drawn by hand: a time-series line chart and a bar chart.
// They redraw at most once per animation frame, however fast samples come.

const NS = 'http://www.w3.org/2000/svg';
const MARGIN = { left: 64, right: 10, top: 20, bottom: 22 };
/** The narrowest a bar's label may have to itself. */
const LABEL_MIN_PX = 44;

function node(name, attrs = {}, text) {
  const el = document.createElementNS(NS, name);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  if (text !== undefined) el.textContent = text;
  return el;
}

/** 1, 2 or 5 times a power of ten, at least `raw`. */
function niceStep(raw) {
  const p = 10 ** Math.floor(Math.log10(raw));
  return [1, 2, 5, 10].map((m) => m * p).find((s) => s >= raw) ?? 10 * p;
}

class Chart {
  /** @param {number} unit  ticks fall on round multiples of it (1 MiB for bytes) */
  constructor(svg, unit = 1) {
    this.svg = svg;
    this.unit = unit;
    this.pending = false;
    new ResizeObserver(() => this.render()).observe(svg);
  }

  render() {
    if (this.pending) return;
    this.pending = true;
    requestAnimationFrame(() => {
      this.pending = false;
      const width = this.svg.clientWidth;
      const height = this.svg.clientHeight;
      if (width === 0 || height === 0) return;
      this.svg.setAttribute('viewBox', `0 0 ${width} ${height}`);
      this.svg.replaceChildren();
      this.draw(width, height);
    });
  }

  yAxis(width, height, max, format) {
    const plotH = height - MARGIN.top - MARGIN.bottom;
    const unit = max >= 4 * this.unit ? this.unit : 1;
    const step = niceStep(max / 4 / unit) * unit;
    for (let v = 0; v <= max + step / 1e6; v += step) {
      const y = MARGIN.top + plotH - (v / max) * plotH;
      this.svg.append(node('line', { x1: MARGIN.left, x2: width - MARGIN.right, y1: y, y2: y, class: 'grid' }));
      this.svg.append(node('text', { x: MARGIN.left - 6, y: y + 4, 'text-anchor': 'end', class: 'tick' }, format(v)));
    }
  }

  empty(width, height, text) {
    this.svg.append(node('text', { x: width / 2, y: height / 2, 'text-anchor': 'middle', class: 'empty' }, text));
  }
}

/** Lines over time; x is a timestamp in ms, drawn as seconds since the first point. */
export class LineChart extends Chart {
  /** @param {{ series: { name: string, color: string, dashed?: boolean }[], format: (v: number) => string, unit?: number }} options */
  constructor(svg, { series, format, unit }) {
    super(svg, unit);
    this.series = series.map((s) => ({ ...s, segments: [[]] }));
    this.format = format;
    this.points = 0;
    /** Vertical lines at moments worth pointing out (a parameter changed). */
    this.marks = [];
    /** Shaded spans of time (a postcopy pause and its recovery), by key; `to` null while open. */
    this.bands = new Map();
  }

  /** Shades `from`..`to` (to null: up to the last point) with a label; the same key updates the band. */
  band(key, from, to, label) {
    this.bands.set(key, { from, to, label });
    this.svg.dataset.bands = String(this.bands.size);
    this.render();
  }

  /** A labelled vertical line at `x`. */
  mark(x, label) {
    this.marks.push({ x, label });
    this.svg.dataset.marks = String(this.marks.length);
    this.render();
  }

  add(index, x, y) {
    const s = this.series[index];
    s.segments[s.segments.length - 1].push([x, y]);
    this.points++;
    this.svg.dataset.points = String(this.points);
    this.render();
  }

  /** Forgets every point: a new migration starts its own chart. */
  clear() {
    for (const s of this.series) s.segments = [[]];
    this.points = 0;
    this.marks = [];
    this.bands.clear();
    this.svg.dataset.points = '0';
    this.svg.dataset.marks = '0';
    this.svg.dataset.bands = '0';
    this.render();
  }

  /** The next point of series `index` starts a new line (nothing was measured in between). */
  gap(index) {
    const s = this.series[index];
    if (s.segments[s.segments.length - 1].length > 0) s.segments.push([]);
  }

  draw(width, height) {
    const all = this.series.flatMap((s) => s.segments.flat());
    if (all.length === 0) {
      this.empty(width, height, 'waiting for a migration');
      return;
    }
    const bands = [...this.bands.values()];
    const x0 = Math.min(...all.map((p) => p[0]), ...bands.map((b) => b.from));
    const x1 = Math.max(x0 + 5000, ...all.map((p) => p[0]), ...this.marks.map((m) => m.x), ...bands.map((b) => b.to ?? b.from));
    const max = Math.max(...all.map((p) => p[1])) * 1.1 || 1;
    const plotW = width - MARGIN.left - MARGIN.right;
    const plotH = height - MARGIN.top - MARGIN.bottom;
    const px = (x) => MARGIN.left + ((x - x0) / (x1 - x0)) * plotW;
    const py = (y) => MARGIN.top + plotH - (y / max) * plotH;
    this.yAxis(width, height, max, this.format);
    const lastX = Math.max(...all.map((p) => p[0]));
    bands.forEach((b, i) => {
      const left = px(b.from);
      const right = px(b.to ?? Math.max(lastX, b.from));
      this.svg.append(node('rect', { x: left, y: MARGIN.top, width: Math.max(2, right - left), height: plotH, class: 'band' }));
      // Stacked, so the labels of bands side by side (both sides paused at once) stay apart.
      this.svg.append(node('text', { x: left + 3, y: height - MARGIN.bottom - 4 - 12 * i, class: 'band-label' }, b.label));
    });
    const stepS = niceStep((x1 - x0) / 1000 / 6);
    for (let s = 0; s <= (x1 - x0) / 1000; s += stepS) {
      this.svg.append(node('text', { x: px(x0 + s * 1000), y: height - 6, 'text-anchor': 'middle', class: 'tick' }, `${s}s`));
    }
    let legendX = width - MARGIN.right;
    for (const s of [...this.series].reverse()) {
      const label = node('text', { x: legendX, y: 12, 'text-anchor': 'end', class: 'legend' }, s.name);
      this.svg.append(label);
      legendX -= label.getComputedTextLength() + 6;
      this.svg.append(node('rect', { x: legendX - 10, y: 4, width: 10, height: 10, rx: 2, fill: s.color }));
      legendX -= 22;
      for (const segment of s.segments) {
        if (segment.length === 0) continue;
        const points = segment.map(([x, y]) => `${px(x).toFixed(1)},${py(y).toFixed(1)}`).join(' ');
        const dash = s.dashed ? { 'stroke-dasharray': '6 4' } : {};
        this.svg.append(node('polyline', { points, fill: 'none', stroke: s.color, 'stroke-width': 2, 'stroke-linejoin': 'round', ...dash }));
        if (segment.length === 1) this.svg.append(node('circle', { cx: px(segment[0][0]), cy: py(segment[0][1]), r: 2.5, fill: s.color }));
      }
    }
    for (const m of this.marks) {
      const x = px(m.x);
      this.svg.append(node('line', { x1: x, x2: x, y1: MARGIN.top, y2: height - MARGIN.bottom, class: 'mark' }));
      this.svg.append(node('text', { x: x + 3, y: MARGIN.top + 10, class: 'mark-label' }, m.label));
    }
  }
}

/** One bar per key (e.g. per dirty-sync pass), labelled with its value. */
export class BarChart extends Chart {
  /** @param {{ color: string, label: (key: number) => string, format: (v: number) => string }} options */
  constructor(svg, { color, label, format }) {
    super(svg);
    this.values = new Map();
    this.notes = new Map();
    this.color = color;
    this.label = label;
    this.format = format;
  }

  /** The bar of `key`; `note` adds to its tooltip. */
  set(key, value, note) {
    this.values.set(key, value);
    if (note !== undefined) this.notes.set(key, note);
    this.svg.dataset.bars = String(this.values.size);
    this.render();
  }

  clear() {
    this.values.clear();
    this.notes.clear();
    this.svg.dataset.bars = '0';
    this.render();
  }

  draw(width, height) {
    const entries = [...this.values].sort((a, b) => a[0] - b[0]);
    if (entries.length === 0) {
      this.empty(width, height, 'no dirty sync yet');
      return;
    }
    const max = Math.max(...entries.map(([, v]) => v)) * 1.15 || 1;
    const plotW = width - MARGIN.left - MARGIN.right;
    const plotH = height - MARGIN.top - MARGIN.bottom;
    this.yAxis(width, height, max, this.format);
    const slot = plotW / entries.length;
    const barW = Math.min(48, slot * 0.7);
    // At hundreds of passes the labels would overlap: values only on bars wide enough, every n-th pass named.
    const labelEvery = Math.ceil(LABEL_MIN_PX / slot);
    entries.forEach(([key, value], i) => {
      const x = MARGIN.left + i * slot + (slot - barW) / 2;
      const h = (value / max) * plotH;
      const y = MARGIN.top + plotH - h;
      const bar = node('rect', { x, y, width: barW, height: Math.max(h, 1), rx: 2, fill: this.color, class: 'bar' });
      const note = this.notes.get(key);
      bar.append(node('title', {}, `${this.label(key)}: ${this.format(value)}${note ? ` (${note})` : ''}`));
      this.svg.append(bar);
      if (slot >= LABEL_MIN_PX) this.svg.append(node('text', { x: x + barW / 2, y: y - 4, 'text-anchor': 'middle', class: 'value' }, this.format(value)));
      if (i % labelEvery === 0) this.svg.append(node('text', { x: x + barW / 2, y: height - 6, 'text-anchor': 'middle', class: 'tick' }, this.label(key)));
    });
  }
}
