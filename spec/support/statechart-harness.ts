/**
 * Drives a migration statechart in the statechart tests, for either machine:
 * through a live actor (`run`, which records the statuses it emits) or
 * through the pure `initialTransition`/`transition` (`reach`, `step`), and
 * reads the definition (`targetedStateIds`) and a pure step's actions
 * (`emittedStatuses`).
 */
import { expect } from 'chai';
import {
  createActor,
  initialTransition,
  transition,
  type AnyStateMachine,
  type EventFromLogic,
  type InputFrom,
  type SnapshotFrom,
  type StateMachine,
} from 'xstate';
import { getStateNodes } from 'xstate/graph';
import type { StatusEmitted } from '../../machines/events.js';
import type { MigrationStatus } from '../../machines/status.js';

/**
 * A machine that emits its statuses as `{ type: 'status', status }`, as both
 * migration machines do. Loose as xstate's AnyStateMachine but for the
 * emitted event, which `run` reads.
 */
type StatusMachine = StateMachine<any, any, any, any, any, any, any, any, any, any, any, StatusEmitted, any, any, any>;

/** The input argument, as `initialTransition` takes it: optional where the machine takes none. */
type InputArgs<T extends StatusMachine> = undefined extends InputFrom<T> ? [input?: InputFrom<T>] : [input: InputFrom<T>];

/**
 * The drivers for one machine, read through `statusOf`. `input` is passed
 * the way `initialTransition` takes it: neither migration machine takes one.
 *
 * @example
 * const { run, reach, step } = statechartHarness(sourceMachine, sourceStatus);
 * expect(run([migrate()]).statuses).to.deep.equal(['setup']);
 * expect(step(reach([migrate()]), completed).status).to.equal('setup');
 */
export function statechartHarness<TMachine extends StatusMachine>(
  machine: TMachine,
  statusOf: (snapshot: SnapshotFrom<TMachine>) => MigrationStatus,
  ...input: InputArgs<TMachine>
) {
  type Event = EventFromLogic<TMachine>;
  type Snapshot = SnapshotFrom<TMachine>;

  /** Runs events through a live actor (of `provided`, if given) and records every status it emits. */
  function run(events: readonly Event[], provided: TMachine = machine) {
    const actor = createActor(provided);
    const statuses: MigrationStatus[] = [];
    const errors: unknown[] = [];
    actor.on('status', (e) => statuses.push(e.status));
    actor.subscribe({ error: (e) => errors.push(e) });
    actor.start();
    for (const event of events) actor.send(event);
    expect(errors).to.deep.equal([]);
    return { actor, statuses, snapshot: actor.getSnapshot() };
  }

  /** The pure path: snapshot after the events, via initialTransition/transition. */
  function reach(events: readonly Event[]): Snapshot {
    let [snapshot] = initialTransition(machine, ...input);
    for (const event of events) [snapshot] = transition(machine, snapshot, event);
    return snapshot;
  }

  /** One pure step: the next status and the statuses it emits. */
  function step(snapshot: Snapshot, event: Event) {
    const [next, actions] = transition(machine, snapshot, event);
    return { next, status: statusOf(next), emitted: emittedStatuses(actions) };
  }

  /** The statuses along a path, without repeats where a step did not change it. */
  function statusChanges(snapshots: readonly Snapshot[]): MigrationStatus[] {
    const out: MigrationStatus[] = [];
    for (const s of snapshots) {
      const status = statusOf(s);
      if (out[out.length - 1] !== status) out.push(status);
    }
    return out;
  }

  return { run, reach, step, statusChanges };
}

/** Ids of every state some transition of the machine can enter (initial entries included). */
export function targetedStateIds(machine: AnyStateMachine): string[] {
  const ids = new Set<string>();
  for (const node of getStateNodes(machine.root)) {
    for (const definitions of node.transitions.values()) {
      for (const t of definitions) for (const target of t.target ?? []) ids.add(target.id);
    }
    for (const target of node.type === 'compound' ? node.initial.target : []) ids.add(target.id);
  }
  return [...ids].sort();
}

/**
 * The statuses announced by a pure step. xstate types the returned actions by
 * their source name (`emitStatus`), but hands back the resolved `xstate.emit`.
 */
export function emittedStatuses(actions: readonly { type: string; params: unknown }[]): MigrationStatus[] {
  return actions
    .filter((a) => a.type === 'xstate.emit')
    .map((a) => (a.params as { event: StatusEmitted }).event.status);
}

/** Each status once, sorted: the set of statuses some paths reach. */
export const sortedStatuses = (statuses: Iterable<MigrationStatus>): MigrationStatus[] => [...new Set(statuses)].sort();
