/**
 * The explorer: one event sent to a machine resting in a chosen status,
 * computed with xstate's pure `transition` (nothing is started, no actor
 * runs). When nothing happens it says why, in the words the monitor would
 * use: the refusal functions the guards themselves call (and the monitor
 * answers its commands with).
 */
import {
  createActor, initialTransition, transition,
  type AnyActorLogic, type AnyActorRef, type AnyStateMachine, type AnyStateNode, type EventObject, type StateValue,
} from 'xstate';
import {
  refuseMigrate, refuseMigrateCancel, refuseMigrateContinue, refuseMigrateIncoming, refuseMigrateStartPostcopy,
} from '../../machines/refusals.js';
import { isMigrationStatus, type MigrationStatus } from '../../machines/status.js';
import type { MigrateCommand, MigrateIncomingCommand } from '../../machines/events.js';
import { graphs, machines, type ChartName } from './machines.js';
import { guardName, lineage, type ChartTransition } from './statechart-graph.js';

export interface ExploreRequest {
  /** Which statechart: a side's migration statechart, or the return path's (each side runs one). */
  side: ChartName;
  /** The status the machine rests in. */
  status: string;
  /** The machine's context there; the initial context when left out. */
  context?: unknown;
  event: EventObject & Record<string, unknown>;
}

export interface ExploreResult {
  from: string;
  /** Where the machine is afterwards (== from when the event changed nothing). */
  to: string;
  /** The transition taken, or null when none was. */
  transition: ChartTransition | null;
  context: unknown;
  /** Why nothing happened; null when a transition was taken. */
  reason: string | null;
}

export class ExploreError extends Error {
  override readonly name = 'ExploreError';
  readonly code = 'BAD_EXPLORE_REQUEST';
}

/** The context a machine starts with. */
export function initialContext(side: ChartName): unknown {
  return initialTransition(machines[side])[0].context;
}

/**
 * @example
 * explore({ side: 'source', status: 'none', event: { type: 'migrate', ...preset } })
 * // { from: 'none', to: 'setup', transition: { id: 'source-t0', ... }, reason: null, ... }
 */
export function explore(request: ExploreRequest): ExploreResult {
  const { side, status, event } = request;
  const machine = machines[side];
  const graph = graphs[side];
  const state = graph.states.find((s) => s.id === status && !s.compound);
  if (state === undefined) throw new ExploreError(`'${status}' is not a state of the ${side} machine`);
  if (typeof event?.type !== 'string' || event.type === '') throw new ExploreError('the event needs a type');
  const context = request.context ?? initialContext(side);
  const snapshot = machine.resolveState({ value: stateValue(machine, status), context });
  addInvokedChildren(machine, snapshot.children as Record<string, AnyActorRef>, lineage(graph, status));
  let next;
  let enabled: unknown[];
  try {
    // A transition that stays (actions only, e.g. a command forwarded to the actor) leaves the
    // snapshot as it was: whether one was enabled is the machine's own selection, not a changed snapshot.
    enabled = machine.getTransitionData(snapshot, event as never);
    [next] = transition(machine, snapshot, event as never);
  } catch (err) {
    // A guard reading a field the payload lacks.
    throw new ExploreError(`the ${side} machine could not take ${JSON.stringify(event)}: ${(err as Error).message}`);
  }
  const to = leafOf(machine, next.value);
  const candidates = lineage(graph, status).flatMap((id) =>
    graph.transitions.filter((t) => t.from === id && t.event === event.type),
  );
  const monitor = isMigrationStatus(state.label) ? monitorRefusal(side, state.label, context, event) : null;
  if (enabled.length === 0) {
    return { from: status, to: status, transition: null, context, reason: whyNot(state.label, event, candidates, monitor) };
  }
  if (monitor !== null) {
    // A command the machine takes unguarded (migrate-start-postcopy, a mere request) that the monitor refuses first.
    const reason = `the monitor refuses '${event.type}' in ${state.label} before the machine sees it: ${monitor}`;
    return { from: status, to: status, transition: null, context, reason };
  }
  // The candidate the machine selected: innermost first, landing where the machine now is, under the same
  // guard (two edges may share their states and event, as the gate's allowed and held requests do).
  const guard = guardName((enabled[0] as { guard?: unknown }).guard);
  const taken = candidates.find((t) => leafAfter(graph.states, t) === to && t.guard === guard) ?? null;
  return { from: status, to, transition: taken, context: next.context, reason: null };
}

/** `{ running: 'setup' }` for status `setup`: the path of the state node. */
function stateValue(machine: AnyStateMachine, id: string): StateValue {
  const path = machine.getStateNodeById(id).path;
  let value: StateValue = path[path.length - 1]!;
  for (let i = path.length - 2; i >= 0; i--) value = { [path[i]!]: value };
  return value;
}

/**
 * resolveState restores a value and a context but not the actors the states
 * invoke; a transition that forwards to one (migrate_cancel, migrate-continue)
 * needs its ref to exist. Pure `transition` never sends to it: the actors are
 * created and never started.
 */
function addInvokedChildren(machine: AnyStateMachine, children: Record<string, AnyActorRef>, states: string[]): void {
  for (const id of states) {
    for (const invoke of machine.getStateNodeById(id).invoke) {
      const logic: AnyActorLogic | undefined = typeof invoke.src === 'string' ? machine.implementations.actors[invoke.src] as AnyActorLogic : invoke.src;
      if (logic !== undefined && children[invoke.id] === undefined) children[invoke.id] = createActor(logic, { id: invoke.id });
    }
  }
}

/** The id of the leaf state node a value stands for (its key where the node has no explicit id). */
function leafOf(machine: AnyStateMachine, value: StateValue): string {
  let node: AnyStateNode = machine.root;
  let v: StateValue = value;
  while (typeof v !== 'string') {
    const [key, inner] = Object.entries(v)[0]!;
    node = node.states[key]!;
    v = inner!;
  }
  return node.states[v]!.id;
}

/** Where a transition leaves the machine: its target, or the target's initial leaf. */
function leafAfter(states: { id: string; initial: string | null }[], t: ChartTransition): string {
  let id = t.to ?? t.from;
  for (let s = states.find((x) => x.id === id); s?.initial; s = states.find((x) => x.id === id)) id = s.initial;
  return id;
}

/**
 * `status` is the state's name as the chart shows it (a MigrationStatus for
 * the sides' machines); `monitor`, what the monitor answers the command.
 */
function whyNot(status: string, event: ExploreRequest['event'], candidates: ChartTransition[], monitor: string | null): string {
  if (candidates.length === 0) {
    const ignored = `${status} has no transition on '${event.type}': the machine ignores it`;
    return monitor === null ? ignored : `${ignored}; the monitor refuses the command: ${monitor}`;
  }
  const guards = [...new Set(candidates.map((t) => t.guard).filter((g) => g !== null))];
  // Branches of one command guarded by the same refusal fail for the same reason: say it once.
  const because = [...new Set(guards.map((g) => guardReason(g, status, event, monitor)))].join('; ');
  return `'${event.type}' refused in ${status} by ${guards.map((g) => `[${g}]`).join(', ')}: ${because}`;
}

/** What the QMP command would be answered with in this status (null: the monitor accepts it). */
function monitorRefusal(side: ChartName, status: MigrationStatus, context: unknown, event: ExploreRequest['event']): string | null {
  if (side === 'source') {
    switch (event.type) {
      case 'migrate':
        return refuseMigrate(status, migrateFacts(event));
      case 'migrate-continue':
        return isMigrationStatus(String(event.state))
          ? refuseMigrateContinue(status, event.state as MigrationStatus)
          : `'${String(event.state)}' is not a MigrationStatus`;
      case 'migrate_cancel':
        return refuseMigrateCancel(status);
      case 'migrate-start-postcopy':
        return refuseMigrateStartPostcopy(status, postcopyRamSet(context, event));
      default:
        return null;
    }
  }
  if (side === 'destination' && event.type === 'migrate-incoming') {
    return refuseMigrateIncoming(status, { runState: String(event.runState) } satisfies Pick<MigrateIncomingCommand, 'runState'>);
  }
  return null;
}

function guardReason(guard: string, status: string, event: ExploreRequest['event'], monitor: string | null): string {
  switch (guard) {
    case 'migrateAllowed':
    case 'continueAllowed':
    case 'incomingAllowed':
      return monitor ?? `the event lacks the facts the guard checks (${JSON.stringify(event)})`;
    case 'continueToPostcopy':
      // Its sibling continueAllowed is tried next: only a wrong state refuses both.
      return monitor ?? 'the guest was stopped to complete by precopy, not to switch to postcopy';
    case 'pauseBeforeSwitchover':
      return 'the migration was started without the pause-before-switchover capability';
    case 'postcopyRam':
      return 'the migration was started without the postcopy-ram capability';
    case 'postcopySwitch':
      return 'the guest was stopped to complete by precopy (switchover.pause without postcopy), not to switch to postcopy';
    default:
      return guard.startsWith('in ') ? `the machine is in ${status}, not ${guard.slice(3)}` : `guard ${guard} returned false`;
  }
}

/**
 * The postcopy-ram capability the monitor checks migrate-start-postcopy
 * against: the event's own `capabilities` when it says (the setting before
 * any migration), else the migration's, which cannot change while it runs.
 */
function postcopyRamSet(context: unknown, event: ExploreRequest['event']): boolean {
  const capabilities = typeof event.capabilities === 'object' && event.capabilities !== null
    ? event.capabilities
    : (context as { capabilities?: unknown } | null)?.capabilities;
  return (capabilities as Record<string, unknown> | undefined)?.['postcopy-ram'] === true;
}

function migrateFacts(event: ExploreRequest['event']): Pick<MigrateCommand, 'resume' | 'runState' | 'blockers' | 'capabilities'> {
  return {
    resume: event.resume === true,
    runState: String(event.runState),
    blockers: Array.isArray(event.blockers) ? event.blockers.map(String) : [],
    capabilities: typeof event.capabilities === 'object' && event.capabilities !== null ? (event.capabilities as Record<string, boolean>) : {},
  };
}
