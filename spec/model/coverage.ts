/**
 * How much of the two real statecharts the executed paths took: statuses
 * reached and transitions taken, counted only for steps the real instances
 * followed, against what each machine's definition can reach. Transitions
 * no world event can drive (the actor threw; UNDRIVABLE) are listed apart.
 */
import type { MigrationStatus } from '../../machines/status.js';
import type { PlannedStep } from './path-plan.js';
import { destinationChart, sourceChart } from './statechart.js';
import { UNDRIVABLE } from './world-model.js';

/** What coverage needs of a chart; both charts have it, whatever their snapshot types. */
type ChartOutline = Pick<typeof sourceChart, 'name' | 'defined' | 'reachable' | 'transitions'>;

class ChartCoverage {
  readonly reached = new Set<MigrationStatus>(['none']);
  readonly taken = new Set<string>();

  constructor(readonly chart: ChartOutline) {}

  get drivable(): string[] {
    return this.chart.transitions.filter((t) => !t.onActorError && !(t.id in this.undrivable)).map((t) => t.id);
  }

  get onActorError(): string[] {
    return this.chart.transitions.filter((t) => t.onActorError).map((t) => t.id);
  }

  /** Transitions of the machine the world cannot drive, with why. */
  get undrivable(): Readonly<Record<string, string>> {
    return UNDRIVABLE[this.chart.name];
  }

  line(): string {
    const reached = this.chart.reachable.filter((s) => this.reached.has(s)).length;
    const taken = this.drivable.filter((id) => this.taken.has(id)).length;
    const onActorError = this.onActorError.length;
    const undrivable = Object.keys(this.undrivable).length;
    return (
      `${this.chart.name} states ${reached}/${this.chart.reachable.length} reachable (${this.chart.defined.length} defined), ` +
      `transitions ${taken}/${this.drivable.length}` +
      (onActorError ? ` (+${onActorError} taken only when the actor throws)` : '') +
      (undrivable ? ` (+${undrivable} no world event can drive)` : '')
    );
  }

  missing(): string[] {
    return [
      ...this.chart.reachable.filter((s) => !this.reached.has(s)).map((s) => `${this.chart.name} state ${s}`),
      ...this.drivable.filter((id) => !this.taken.has(id)).map((id) => `${this.chart.name} transition ${id}`),
    ];
  }
}

export class ModelCoverage {
  private readonly source = new ChartCoverage(sourceChart);
  private readonly destination = new ChartCoverage(destinationChart);
  pathsRun = 0;

  /** A step the real instances followed. */
  record(step: PlannedStep): void {
    for (const [side, coverage] of [[step.source, this.source], [step.destination, this.destination]] as const) {
      for (const s of side.statuses) coverage.reached.add(s);
      for (const t of side.transitions) coverage.taken.add(t.id);
    }
  }

  /** e.g. `model coverage: source states 11/11 reachable (14 defined), transitions 26/26 …; destination …` */
  summary(): string {
    return `model coverage: ${this.source.line()}; ${this.destination.line()}`;
  }

  /** Reachable statuses and drivable transitions no executed step took. */
  missing(): string[] {
    return [...this.source.missing(), ...this.destination.missing()];
  }

  /** The actor-error transitions, named, for the report. */
  actorErrorTransitions(): string[] {
    return [
      ...this.source.onActorError.map((id) => `source ${id}`),
      ...this.destination.onActorError.map((id) => `destination ${id}`),
    ];
  }

  /** The transitions the world cannot drive, with why, for the report. */
  undrivableTransitions(): string[] {
    return [this.source, this.destination].flatMap((c) => Object.entries(c.undrivable).map(([id, why]) => `${c.chart.name} ${id} (${why})`));
  }

  /** Transitions listed as undrivable that a step the instances followed took all the same: the list is stale. */
  undrivableTaken(): string[] {
    return [this.source, this.destination].flatMap((c) => Object.keys(c.undrivable).filter((id) => c.taken.has(id)).map((id) => `${c.chart.name} ${id}`));
  }
}
