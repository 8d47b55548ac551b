// One statechart drawn by Graphviz on the server, and what is lit on it:
// the current state, the states visited before, the last transition taken
// (or, in the explorer, the transitions a guard refused). It pans (drag)
// and zooms (the card's buttons, or Ctrl + wheel / a pinch) by moving the
// SVG's viewBox; a plain wheel still scrolls the page.

/** Each zoom step, and the closest and farthest the chart may be zoomed. */
const ZOOM_STEP = 1.25;
const ZOOM_MAX = 8;
const ZOOM_MIN = 0.5;
/** A pointer that moves less than this between down and up clicked rather than dragged. */
const DRAG_PX = 4;

export class StatechartView {
  /**
   * @param {HTMLElement} host
   * @param {{ graph: { machine: string, states: any[], transitions: any[] }, svg: string }} chart
   */
  constructor(host, chart) {
    this.graph = chart.graph;
    this.machine = chart.graph.machine;
    host.innerHTML = chart.svg;
    this.svg = host.querySelector('svg');
    // Scale with the card; the viewBox keeps the proportions.
    this.svg.removeAttribute('width');
    this.svg.removeAttribute('height');
    this.byId = new Map(this.graph.states.map((s) => [s.id, s]));
    this.homeViewBox = this.svg.getAttribute('viewBox') ?? '0 0 100 100';
    const [x, y, w, h] = this.homeViewBox.split(/[\s,]+/).map(Number);
    this.home = { x, y, w, h };
    this.view = { ...this.home };
    this.dragged = false;
    this.panAndZoom();
    this.hoverPaths(host.parentElement?.querySelector('.hover-info') ?? null);
  }

  /**
   * Hovering a state lights the transitions that leave it (its own and its
   * ancestors') and those that lead into it, and says in `info` what it
   * does on entry and exit and which actor it runs under.
   */
  hoverPaths(info) {
    for (const s of this.graph.states) {
      const g = this.stateElement(s.id);
      if (!g) continue;
      g.addEventListener('mouseenter', () => {
        const sources = this.lineage(s.id);
        const out = this.graph.transitions.filter((t) => sources.includes(t.from));
        const into = this.graph.transitions.filter((t) => t.to === s.id || (!s.compound && this.landing(t) === s.id && t.to !== null));
        for (const t of out) this.svg.getElementById(t.id)?.classList.add('hover-out');
        for (const t of into) this.svg.getElementById(t.id)?.classList.add('hover-in');
        g.classList.add('hover');
        if (info) info.textContent = this.describe(s, out.length, into.length);
      });
      g.addEventListener('mouseleave', () => {
        for (const el of this.svg.querySelectorAll('.hover-out, .hover-in, .hover')) el.classList.remove('hover-out', 'hover-in', 'hover');
        if (info) info.textContent = '';
      });
    }
  }

  /** A state in words: its actions, the actors it runs under, its transitions out and in. */
  describe(s, out, into) {
    const parts = [s.label];
    if (s.entry.length > 0) parts.push(`entry: ${s.entry.join(', ')}`);
    if (s.exit.length > 0) parts.push(`exit: ${s.exit.join(', ')}`);
    const invoked = this.lineage(s.id).flatMap((id) => this.byId.get(id).invokes.map((a) => `${a} (invoked by ${this.byId.get(id).label})`));
    if (invoked.length > 0) parts.push(`runs under ${invoked.join(', ')}`);
    parts.push(`${out} transition${out === 1 ? '' : 's'} out (incl. its parents'), ${into} in`);
    return parts.join(' · ');
  }

  /** How far the chart is zoomed in (1: the whole chart fits). */
  get zoom() {
    return this.home.w / this.view.w;
  }

  /** Zooms by `factor` around (fx, fy), fractions of the drawing's width and height (the middle by default). */
  zoomBy(factor, fx = 0.5, fy = 0.5) {
    const zoom = Math.min(ZOOM_MAX, Math.max(ZOOM_MIN, this.zoom * factor));
    const w = this.home.w / zoom;
    const h = this.home.h / zoom;
    this.view = { x: this.view.x + (this.view.w - w) * fx, y: this.view.y + (this.view.h - h) * fy, w, h };
    this.applyView();
  }

  /** The whole chart again. */
  fit() {
    this.view = { ...this.home };
    this.svg.setAttribute('viewBox', this.homeViewBox);
    this.svg.dataset.zoom = '1.00';
  }

  applyView() {
    const { x, y, w, h } = this.view;
    this.svg.setAttribute('viewBox', `${x} ${y} ${w} ${h}`);
    this.svg.dataset.zoom = this.zoom.toFixed(2);
  }

  panAndZoom() {
    const svg = this.svg;
    svg.addEventListener('wheel', (e) => {
      if (!e.ctrlKey && !e.metaKey) return;
      e.preventDefault();
      const box = svg.getBoundingClientRect();
      this.zoomBy(e.deltaY < 0 ? ZOOM_STEP : 1 / ZOOM_STEP, (e.clientX - box.left) / box.width, (e.clientY - box.top) / box.height);
    }, { passive: false });
    let from = null;
    svg.addEventListener('pointerdown', (e) => {
      if (e.button !== 0) return;
      from = { px: e.clientX, py: e.clientY, view: { ...this.view }, moved: false };
      this.dragged = false;
    });
    svg.addEventListener('pointermove', (e) => {
      if (from === null) return;
      const dx = e.clientX - from.px;
      const dy = e.clientY - from.py;
      if (!from.moved && Math.hypot(dx, dy) < DRAG_PX) return;
      if (!from.moved) svg.setPointerCapture(e.pointerId);
      from.moved = true;
      const box = svg.getBoundingClientRect();
      this.view = { ...from.view, x: from.view.x - (dx * from.view.w) / box.width, y: from.view.y - (dy * from.view.h) / box.height };
      this.applyView();
    });
    const end = () => {
      this.dragged = from?.moved === true;
      from = null;
    };
    svg.addEventListener('pointerup', end);
    svg.addEventListener('pointercancel', end);
    svg.classList.add('pannable');
  }

  /** The state's <g>, or null. */
  stateElement(id) {
    return this.svg.getElementById(`${this.machine}-state-${id}`);
  }

  /** The ids of a state and its ancestors, innermost first. */
  lineage(id) {
    const out = [];
    for (let s = this.byId.get(id); s; s = s.parent ? this.byId.get(s.parent) : undefined) out.push(s.id);
    return out;
  }

  /** Where a transition leaves the machine: its target, or the target's initial leaf. */
  landing(t) {
    let id = t.to ?? t.from;
    for (let s = this.byId.get(id); s && s.initial; s = this.byId.get(id)) id = s.initial;
    return id;
  }

  /**
   * The transition that explains a status change from → to: with `event`
   * (a traced instance says which) the one that event takes; without, the
   * first that joins the two statuses, a guess.
   */
  findTransition(from, to, event) {
    const sources = from === null ? null : this.lineage(from);
    const fits = (t) => (sources === null || sources.includes(t.from)) && this.landing(t) === to;
    if (event !== undefined) return this.graph.transitions.find((t) => t.event === event && fits(t)) ?? null;
    if (from === null) return null;
    return this.graph.transitions.find(fits) ?? null;
  }

  /** The transitions declared for `event` on the state or its ancestors. */
  candidates(status, event) {
    const sources = this.lineage(status);
    return this.graph.transitions.filter((t) => sources.includes(t.from) && t.event === event);
  }

  /**
   * @param {{ status: string|null, visited: Set<string>, edge: string|null, refused?: string[] }} view
   */
  show({ status, visited, edge, refused = [] }) {
    for (const g of this.svg.querySelectorAll('g.state')) {
      g.classList.remove('current', 'visited');
    }
    for (const g of this.svg.querySelectorAll('g.transition')) g.classList.remove('taken', 'refused');
    for (const id of visited) this.stateElement(id)?.classList.add('visited');
    if (status !== null) {
      // The enclosing compound state is "in" too (e.g. running while active).
      const [leaf, ...ancestors] = this.lineage(status);
      this.stateElement(leaf)?.classList.add('current');
      for (const id of ancestors) this.stateElement(id)?.classList.add('visited');
    }
    if (edge !== null) this.svg.getElementById(edge)?.classList.add('taken');
    for (const id of refused) this.svg.getElementById(id)?.classList.add('refused');
  }

  /** Calls `pick(stateId)` when a leaf state is clicked. */
  onPick(pick) {
    for (const s of this.graph.states) {
      if (s.compound) continue;
      const g = this.stateElement(s.id);
      if (!g) continue;
      g.classList.add('pickable');
      // The end of a drag is not a pick.
      g.addEventListener('click', () => this.dragged || pick(s.id));
    }
  }
}
