// The explorer: put a machine in a state, send it an event, and see where it
// goes, or why it stays (the server runs the machine's own transition and
// explains a refusal with the monitor's words).

export class Explorer {
  /**
   * @param {Record<string, any>} charts  /api/charts
   * @param {Record<string, import('./statechart-view.js').StatechartView>} views
   * @param {() => void} changed  called when what the charts should show changed
   */
  constructor(charts, views, changed) {
    this.charts = charts;
    this.views = views;
    this.changed = changed;
    this.ui = Object.fromEntries(
      ['side', 'state', 'event', 'preset', 'payload', 'send', 'reset', 'result', 'context', 'history'].map((k) => [k, document.getElementById(`explore-${k}`)]),
    );
    this.machines = {};
    for (const side of Object.keys(charts)) this.machines[side] = this.initial(side);
    this.side = 'source';
    this.ui.side.addEventListener('change', () => this.select(this.ui.side.value));
    this.ui.state.addEventListener('change', () => this.moveTo(this.ui.state.value));
    this.ui.event.addEventListener('change', () => this.fillPresets());
    this.ui.preset.addEventListener('change', () => this.fillPayload());
    this.ui.send.addEventListener('click', () => void this.send());
    this.ui.reset.addEventListener('click', () => {
      this.machines[this.side] = this.initial(this.side);
      this.ui.history.replaceChildren();
      this.ui.result.textContent = '';
      this.ui.result.className = 'result';
      this.refresh();
    });
    for (const [side, view] of Object.entries(views)) {
      view.onPick((id) => {
        this.select(side);
        this.moveTo(id);
      });
    }
    this.render();
  }

  initial(side) {
    const graph = this.charts[side].graph;
    let status = graph.initial;
    for (let s = graph.states.find((x) => x.id === status); s && s.initial; s = graph.states.find((x) => x.id === status)) status = s.initial;
    return { status, context: this.charts[side].initialContext, visited: new Set([status]), edge: null, refused: [] };
  }

  /** What a chart shows in explore mode. */
  view(side) {
    return this.machines[side];
  }

  select(side) {
    this.side = side;
    this.ui.side.value = side;
    this.refresh();
  }

  moveTo(status) {
    const m = this.machines[this.side];
    Object.assign(m, { status, edge: null, refused: [] });
    m.visited.add(status);
    this.refresh();
  }

  refresh() {
    this.render();
    this.changed();
  }

  render() {
    const chart = this.charts[this.side];
    const m = this.machines[this.side];
    this.ui.state.replaceChildren(
      ...chart.graph.states.filter((s) => !s.compound).map((s) => new Option(s.label, s.id, false, s.id === m.status)),
    );
    // Events with a transition from here first, the rest after: sending those shows why nothing happens.
    const view = this.views[this.side];
    const keep = this.ui.event.value;
    const here = [];
    const elsewhere = [];
    for (const e of chart.events) {
      const targets = view.candidates(m.status, e.type).map((t) => this.label(this.side, view.landing(t)));
      (targets.length > 0 ? here : elsewhere).push(new Option(targets.length > 0 ? `${e.type} → ${[...new Set(targets)].join(' | ')}` : e.type, e.type));
    }
    this.ui.event.replaceChildren(optgroup('handled in this state', here), optgroup('not handled here', elsewhere));
    if ([...here, ...elsewhere].some((o) => o.value === keep)) this.ui.event.value = keep;
    this.fillPresets();
    this.ui.context.textContent = JSON.stringify(m.context, null, 2);
  }

  fillPresets() {
    const event = this.charts[this.side].events.find((e) => e.type === this.ui.event.value);
    this.ui.preset.replaceChildren(...(event?.presets ?? []).map((p, i) => new Option(p.name, String(i))));
    this.fillPayload();
  }

  fillPayload() {
    const event = this.charts[this.side].events.find((e) => e.type === this.ui.event.value);
    const preset = event?.presets[Number(this.ui.preset.value)] ?? { payload: {} };
    this.ui.payload.value = JSON.stringify(preset.payload, null, 2);
  }

  async send() {
    const side = this.side;
    const m = this.machines[side];
    let payload;
    try {
      payload = JSON.parse(this.ui.payload.value || '{}');
    } catch (err) {
      this.report('refused', `The payload is not JSON: ${err.message}`);
      return;
    }
    const event = { ...payload, type: this.ui.event.value };
    const response = await fetch('/api/explore', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ side, status: m.status, context: m.context, event }),
    });
    const result = await response.json();
    if (!response.ok) {
      this.report('refused', result.error);
      return;
    }
    const item = document.createElement('li');
    if (result.reason === null) {
      Object.assign(m, { status: result.to, context: result.context, edge: result.transition?.id ?? null, refused: [] });
      m.visited.add(result.to);
      const via = result.transition ? ` (transition ${result.transition.id})` : '';
      const step = `${this.label(side, result.from)} —${event.type}→ ${this.label(side, result.to)}`;
      this.report('taken', `${step}${via}`);
      item.textContent = `${side}: ${step}`;
    } else {
      Object.assign(m, { edge: null, refused: this.views[side].candidates(m.status, event.type).map((t) => t.id) });
      this.report('refused', result.reason);
      item.textContent = `${side}: ${result.reason}`;
      item.className = 'refused';
    }
    this.ui.history.append(item);
    this.refresh();
  }

  /** A state's name as the chart shows it (the return path's ids carry the machine's id). */
  label(side, id) {
    return this.charts[side].graph.states.find((s) => s.id === id)?.label ?? id;
  }

  report(kind, text) {
    this.ui.result.className = `result ${kind}`;
    this.ui.result.textContent = text;
  }
}

function optgroup(label, options) {
  const group = document.createElement('optgroup');
  group.label = label;
  group.append(...options);
  return group;
}
