/**
 * What the model-based tests know of a real migration statechart, read off
 * its definition rather than written down again: the statuses it defines and
 * can reach, every transition it has, and which of them an event takes from
 * a snapshot. A transition added to a machine shows up here by itself.
 */
import { initialTransition, transition, type AnyTransitionDefinition, type EventObject } from 'xstate';
import { getStateNodes } from 'xstate/graph';
import { destinationMachine, destinationStatus, type DestinationSnapshot } from '../../machines/destination.js';
import type { DestinationEvent, SourceEvent } from '../../machines/events.js';
import { sourceMachine, sourceStatus, type SourceSnapshot } from '../../machines/source.js';
import { isMigrationStatus, type MigrationStatus } from '../../machines/status.js';
import { emittedStatuses } from '../support/statechart-harness.js';

/** The event xstate sends a machine when one of its invoked actors throws. */
const ACTOR_ERROR = 'xstate.error.actor.';

export interface ChartTransition {
  /** How reports and failures name it, e.g. `active --failed--> failed`. */
  readonly id: string;
  /**
   * Taken only when the invoked actor throws. No command and no fault of the
   * world makes livemig's actors throw (they report `failed`): these
   * transitions catch livemig's own bugs, so no model event can drive them.
   */
  readonly onActorError: boolean;
}

/** The outcome of a run of real events through the pure machine. */
export interface ChartStep<TSnapshot> {
  snapshot: TSnapshot;
  /** The statuses announced, in order: what MIGRATION events the instance must send. */
  statuses: MigrationStatus[];
  transitions: ChartTransition[];
}

export class ModelError extends Error {
  readonly code = 'MODEL_REFUSED';
}

/** One of the two migration statecharts, seen through its definition. */
export class Statechart<TSnapshot extends { value: unknown }, TEvent extends EventObject> {
  /** Every status the machine has a state for. */
  readonly defined: MigrationStatus[];
  /** The initial status and every status some transition targets. */
  readonly reachable: MigrationStatus[];
  readonly transitions: ChartTransition[];
  private readonly byDefinition = new Map<AnyTransitionDefinition, ChartTransition>();

  constructor(
    readonly name: 'source' | 'destination',
    private readonly machine: typeof sourceMachine | typeof destinationMachine,
    readonly statusOf: (snapshot: TSnapshot) => MigrationStatus,
  ) {
    const nodes = getStateNodes(machine.root);
    this.defined = nodes.map((n) => n.key).filter(isMigrationStatus);
    const reachable = new Set<MigrationStatus>([this.statusOf(this.initial())]);
    for (const node of nodes) {
      for (const definitions of node.transitions.values()) {
        for (const definition of definitions) {
          for (const target of definition.target ?? []) if (isMigrationStatus(target.key)) reachable.add(target.key);
          this.byDefinition.set(definition, describe(definition));
        }
      }
    }
    this.reachable = this.defined.filter((s) => reachable.has(s));
    this.transitions = [...this.byDefinition.values()];
  }

  initial(): TSnapshot {
    return initialTransition(this.machine)[0] as unknown as TSnapshot;
  }

  /**
   * Sends `events` one after the other through the pure machine. Every event
   * must be taken: one the machine refuses means the model and the machine
   * disagree, which is an error in the model (or a machine that changed).
   */
  run(snapshot: TSnapshot, events: readonly TEvent[]): ChartStep<TSnapshot> {
    const step: ChartStep<TSnapshot> = { snapshot, statuses: [], transitions: [] };
    for (const event of events) {
      const taken = this.taken(step.snapshot, event);
      if (taken.length === 0) {
        throw new ModelError(`the ${this.name} machine takes no transition on '${event.type}' in ${this.statusOf(step.snapshot)}`);
      }
      const [next, actions] = transition(this.machine as never, step.snapshot as never, event as never) as [
        TSnapshot,
        readonly { type: string; params: unknown }[],
      ];
      step.snapshot = next;
      step.transitions.push(...taken);
      step.statuses.push(...emittedStatuses(actions));
    }
    return step;
  }

  /** Whether the machine takes `event` in `snapshot` (its guards decide). */
  accepts(snapshot: TSnapshot, event: TEvent): boolean {
    return this.taken(snapshot, event).length > 0;
  }

  private taken(snapshot: TSnapshot, event: TEvent): ChartTransition[] {
    const definitions = this.machine.getTransitionData(snapshot as never, event as never) as AnyTransitionDefinition[];
    return definitions.map((d) => {
      const known = this.byDefinition.get(d);
      if (!known) throw new ModelError(`the ${this.name} machine took a transition its definition does not list: ${describe(d).id}`);
      return known;
    });
  }
}

function describe(definition: AnyTransitionDefinition): ChartTransition {
  const targets = (definition.target ?? []).map((t) => t.key).join(',') || '(self)';
  const guard = guardName(definition.guard);
  return {
    id: `${definition.source.key} --${definition.eventType}${guard ? ` [${guard}]` : ''}--> ${targets}`,
    onActorError: definition.eventType.startsWith(ACTOR_ERROR),
  };
}

function guardName(guard: unknown): string | undefined {
  if (guard === undefined) return undefined;
  if (typeof guard === 'string') return guard;
  if (typeof guard === 'function') {
    const stateValue = (guard as { stateValue?: unknown }).stateValue;
    return stateValue === undefined ? guard.name : `in ${String(stateValue)}`;
  }
  // A parameterised guard's params repeat the state it sits in: its type names it.
  return String((guard as { type?: string }).type);
}

export const sourceChart = new Statechart<SourceSnapshot, SourceEvent>('source', sourceMachine, sourceStatus);
export const destinationChart = new Statechart<DestinationSnapshot, DestinationEvent>('destination', destinationMachine, destinationStatus);
