/**
 * How much of the two real statecharts the executed paths took: statuses
 * reached and transitions taken, counted only for steps the real instances
 * followed, against what each machine's definition can reach.
 */
import type { MigrationStatus } from '../../machines/status.js';
import type { PlannedStep } from './path-plan.js';
import { destinationChart, sourceChart } from './statechart.js';

/** What coverage needs of a chart; both charts have it, whatever their snapshot types. */
type ChartOutline = Pick<typeof sourceChart, 'name' | 'defined' | 'reachable' | 'transitions'>;

class ChartCoverage {
  readonly reached = new Set<MigrationStatus>(['none']);
  readonly taken = new Set<string>();

  constructor(readonly chart: ChartOutline) {}

  get drivable(): string[] {
    return this.chart.transitions.filter((t) => !t.onActorError).map((t) => t.id);
  }

  get onActorError(): string[] {
    return this.chart.transitions.filter((t) => t.onActorError).map((t) => t.id);
  }

  line(): string {
    const reached = this.chart.reachable.filter((s) => this.reached.has(s)).length;
    const taken = this.drivable.filter((id) => this.taken.has(id)).length;
    const undrivable = this.onActorError.length;
    return (
      `${this.chart.name} states ${reached}/${this.chart.reachable.length} reachable (${this.chart.defined.length} defined), ` +
      `transitions ${taken}/${this.drivable.length}` +
      (undrivable ? ` (+${undrivable} taken only when the actor throws)` : '')
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

  /** e.g. `model coverage: source states 9/9 reachable (14 defined), transitions 18/18 …; destination …` */
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
}
