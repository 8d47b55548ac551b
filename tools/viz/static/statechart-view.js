// One statechart drawn by Graphviz on the server, and what is lit on it:
// the current state, the states visited before, the last transition taken
// (or, in the explorer, the transitions a guard refused).

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
      g.addEventListener('click', () => pick(s.id));
    }
  }
}
