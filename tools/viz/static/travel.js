// Time travel over what the page has been shown. Every update but the
// connections' is recorded in the order it came; the views are what the
// updates applied so far make of them, so showing moment T is: reset the
// views, apply every recorded update up to T. While the page shows a past
// moment, new updates are recorded but held back; "Follow live" applies
// them all. The same works on a trace saved by "Save trace" (GET
// /api/trace) and opened in the page, or served by `livemig viz --replay`.

import { clock } from './format.js';

const TRACE_FORMAT = 'livemig-viz-trace';
/** The commands whose traced event starts a migration, and how long before its `setup` one may come. */
const STARTING_COMMANDS = new Set(['migrate', 'migrate-incoming']);
const COMMAND_LEAD_MS = 1000;

export class Travel {
  /**
   * @param {{ sideOfMigrations: () => string, reset: () => void, apply: (u: any) => void, redraw: () => void, detach: () => void }} hooks
   *   sideOfMigrations: whose `setup` starts a migration; detach: stop taking live updates (a trace file was opened)
   */
  constructor(hooks) {
    this.hooks = hooks;
    this.updates = [];
    /** null while following; else the moment shown, in ms since the epoch. */
    this.cursor = null;
    this.rebuilding = false;
    this.refreshQueued = false;
    this.pick = document.getElementById('migration-pick');
    this.scrub = document.getElementById('scrub');
    this.time = document.getElementById('scrub-time');
    this.followButton = document.getElementById('follow-live');
    this.scrub.addEventListener('input', () => this.travelTo(Number(this.scrub.dataset.start) + Number(this.scrub.value)));
    this.pick.addEventListener('change', () => this.open(Number(this.pick.value)));
    this.followButton.addEventListener('click', () => this.follow());
    document.getElementById('open-trace').addEventListener('change', (e) => this.openFile(e.target.files?.[0]));
  }

  receive(update) {
    if (update.topic === 'connection') {
      this.hooks.apply(update);
      return;
    }
    this.updates.push(update);
    if (this.cursor === null) this.hooks.apply(update);
    this.queueRefresh();
  }

  /**
   * The migrations recorded: each from a `setup` of the side that starts
   * them (or the traced command that led to it, just before) to the next
   * one's start.
   */
  migrations() {
    const side = this.hooks.sideOfMigrations();
    const starts = [];
    this.updates.forEach((u, i) => {
      if (u.topic !== 'transition' || u.side !== side || u.to !== 'setup' || u.from === 'setup') return;
      let start = u.at;
      for (let j = i - 1; j >= 0 && this.updates[j].at >= u.at - COMMAND_LEAD_MS; j--) {
        const c = this.updates[j];
        if (c.topic === 'message' && c.side === side && c.from === 'monitor' && STARTING_COMMANDS.has(c.type)) start = Math.min(start, c.at);
      }
      starts.push(start);
    });
    return starts.map((start, i) => ({ number: i + 1, start, end: starts[i + 1] ?? null }));
  }

  get lastAt() {
    return this.updates.length === 0 ? Date.now() : Math.max(...this.updates.slice(-50).map((u) => u.at));
  }

  /** Shows the page as it was at `at`. */
  travelTo(at) {
    this.cursor = at;
    this.rebuild(at);
  }

  /** Shows everything, and applies updates as they come. */
  follow() {
    this.cursor = null;
    this.rebuild(Infinity);
  }

  /** Opens migration `number` at its end (the latest: following it live). */
  open(number) {
    const m = this.migrations().find((x) => x.number === number);
    if (m === undefined || m.end === null) this.follow();
    else this.travelTo(m.end - 1);
  }

  rebuild(until) {
    this.rebuilding = true;
    try {
      this.hooks.reset();
      for (const u of this.updates) if (u.at <= until) this.hooks.apply(u);
    } finally {
      this.rebuilding = false;
    }
    this.hooks.redraw();
    this.refresh();
  }

  /** The side's last query-migrate sample at or before `at`, as the watch recorded it. */
  sampleAt(side, at) {
    for (let i = this.updates.length - 1; i >= 0; i--) {
      const u = this.updates[i];
      if (u.topic === 'sample' && u.side === side && u.at <= at) return u;
    }
    return null;
  }

  async openFile(file) {
    if (!file) return;
    let trace;
    try {
      trace = JSON.parse(await file.text());
      if (trace?.format !== TRACE_FORMAT || !Array.isArray(trace.updates)) throw new Error(`not a livemig viz trace (no "format": "${TRACE_FORMAT}")`);
    } catch (err) {
      this.time.textContent = `${file.name}: ${err.message}`;
      this.time.classList.add('error');
      return;
    }
    this.hooks.detach();
    document.body.dataset.replay = file.name;
    this.updates = [];
    for (const u of trace.updates) {
      if (u.topic === 'connection') this.hooks.apply({ ...u, state: 'replayed', detail: `replayed from ${file.name}` });
      else this.updates.push(u);
    }
    this.follow();
  }

  queueRefresh() {
    if (this.refreshQueued) return;
    this.refreshQueued = true;
    requestAnimationFrame(() => {
      this.refreshQueued = false;
      this.refresh();
    });
  }

  /** The migration list, the slider over the migration shown and where it stands. */
  refresh() {
    const list = this.migrations();
    const at = this.cursor ?? this.lastAt;
    const shown = [...list].reverse().find((m) => m.start <= at) ?? list[0];
    const options = list.map((m) => `#${m.number} from ${clock(m.start)}`);
    if ([...this.pick.options].map((o) => o.text).join('\n') !== options.join('\n')) {
      this.pick.replaceChildren(...list.map((m, i) => new Option(options[i], String(m.number))));
    }
    this.time.classList.remove('error');
    this.followButton.disabled = this.cursor === null;
    document.body.dataset.travel = this.cursor === null ? 'live' : 'past';
    if (shown === undefined) {
      this.scrub.disabled = true;
      this.time.textContent = this.cursor === null ? 'following live: no migration yet' : `at ${clock(this.cursor)}`;
      return;
    }
    this.pick.value = String(shown.number);
    const end = shown.end ?? this.lastAt;
    this.scrub.disabled = false;
    this.scrub.dataset.start = String(shown.start);
    this.scrub.max = String(Math.max(0, Math.round(end - shown.start)));
    this.scrub.value = String(Math.max(0, Math.round(Math.min(at, end) - shown.start)));
    const into = `${((Math.min(at, end) - shown.start) / 1000).toFixed(3)} s into migration #${shown.number}`;
    this.time.textContent = this.cursor === null ? `following live · ${into}` : `${clock(this.cursor)} · ${into} · newer updates held back`;
  }
}
