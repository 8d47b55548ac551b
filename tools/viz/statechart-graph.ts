/**
 * A statechart as a plain graph of states and transitions, read off the
 * machine definition by walking `machine.root`. The DOT and Mermaid exports,
 * the page's highlighting and the explorer all start from this one walk, so
 * a state or transition added to a machine appears everywhere at once.
 */
import type { AnyStateMachine, AnyStateNode } from 'xstate';

export interface ChartState {
  /** The state node's id: the MigrationStatus for status states, `source.running` for the compound. */
  id: string;
  /** The state's key, what a reader calls it. */
  label: string;
  /** The enclosing state's id; null at the top level. */
  parent: string | null;
  compound: boolean;
  /** A final state: the machine is done there (the return path's closed and bad). */
  final: boolean;
  /** For a compound state: the id of the child it enters by default. */
  initial: string | null;
  /** The actors the state invokes while it is active (`running` invokes the migration's). */
  invokes: string[];
  /** Its entry and exit actions, by name. */
  entry: string[];
  exit: string[];
}

export interface ChartTransition {
  /** `<machine>-t<n>`, in walk order: stable for a given definition. */
  id: string;
  /** The state that declares the transition (a compound state for one taken from any of its children). */
  from: string;
  /** The target state's id; null for a transition that stays (actions only). */
  to: string | null;
  /** The event type, as the machine names it (`migrate`, `setup.done`, `xstate.error.actor.migration`). */
  event: string;
  /** The event as a reader calls it: XState's internal names spelled out (`migration actor failed`). */
  label: string;
  /** The guard's name, or null when unguarded. */
  guard: string | null;
}

export interface StatechartGraph {
  /** The machine's id: `source`, `destination` or `return-path`. */
  machine: string;
  /** The id of the top-level initial state. */
  initial: string;
  /** Every state node below the root, parents before their children. */
  states: ChartState[];
  transitions: ChartTransition[];
}

/** Walks a machine's state nodes in definition order. */
export function statechartGraph(machine: AnyStateMachine): StatechartGraph {
  const root = machine.root;
  const states: ChartState[] = [];
  const transitions: ChartTransition[] = [];
  const visit = (node: AnyStateNode, parent: string | null) => {
    const children = Object.values(node.states) as AnyStateNode[];
    if (node !== root) {
      states.push({
        id: node.id,
        label: node.key,
        parent,
        compound: children.length > 0,
        final: node.type === 'final',
        initial: children.length > 0 ? initialChild(node) : null,
        invokes: node.invoke.map((i) => i.id),
        entry: node.entry.map(actionName),
        exit: node.exit.map(actionName),
      });
      for (const definitions of node.transitions.values()) {
        for (const t of definitions) addTransition(t.eventType, t.guard, t.target, node.id);
      }
      for (const t of node.always ?? []) addTransition('always', t.guard, t.target, node.id);
    }
    for (const child of children) visit(child, node === root ? null : node.id);
  };
  const addTransition = (event: string, guard: unknown, target: readonly AnyStateNode[] | undefined, from: string) => {
    const targets = target === undefined || target.length === 0 ? [null] : target.map((t) => t.id);
    for (const to of targets) {
      transitions.push({ id: `${machine.id}-t${transitions.length}`, from, to, event, label: eventName(event), guard: guardName(guard) });
    }
  };
  visit(root, null);
  return { machine: machine.id, initial: initialChild(root), states, transitions };
}

/**
 * An event type as a reader calls it: the events XState makes up for an
 * invoked actor's end or error, a delay or the start are spelled out; the
 * machines' own events keep their names.
 */
export function eventName(type: string): string {
  const actor = /^xstate\.(error|done)\.actor\.(.+)$/.exec(type);
  if (actor) return `${actor[2]} actor ${actor[1] === 'error' ? 'failed' : 'done'}`;
  const delay = /^xstate\.after\.(\d+)\./.exec(type);
  if (delay) return `after ${delay[1]} ms`;
  if (type === 'xstate.init') return 'start';
  return type;
}

/** The leaf states no transition, initial arrow or compound entry leads to (drawn faint in every export). */
export function unreachableStates(graph: StatechartGraph): Set<string> {
  const entered = new Set([graph.initial, ...graph.states.map((s) => s.initial), ...graph.transitions.map((t) => t.to)]);
  return new Set(graph.states.filter((s) => !s.compound && !entered.has(s.id)).map((s) => s.id));
}

/** The ids of a state and of every state enclosing it, innermost first. */
export function lineage(graph: StatechartGraph, id: string): string[] {
  const byId = new Map(graph.states.map((s) => [s.id, s]));
  const out: string[] = [];
  for (let s = byId.get(id); s !== undefined; s = s.parent === null ? undefined : byId.get(s.parent)) out.push(s.id);
  return out;
}

/** An action as XState names it: its type, or the name of the function it is. */
function actionName(action: unknown): string {
  if (typeof action === 'string') return action;
  const named = action as { type?: unknown; name?: unknown };
  if (typeof named.type === 'string') return named.type;
  return typeof named.name === 'string' && named.name !== '' ? named.name : 'action';
}

function initialChild(node: AnyStateNode): string {
  const target = node.initial?.target[0];
  if (target === undefined) throw new Error(`state '${node.id}' has children but no initial state`);
  return target.id;
}

/**
 * How a guard is named on an edge: a named guard by its type (its params
 * repeat the source state), `stateIn` by the state it tests.
 */
export function guardName(guard: unknown): string | null {
  if (guard === undefined || guard === null) return null;
  if (typeof guard === 'string') return guard;
  if (typeof guard === 'function') {
    const stateValue = (guard as { stateValue?: unknown }).stateValue;
    if (stateValue !== undefined) return `in ${typeof stateValue === 'string' ? stateValue : JSON.stringify(stateValue)}`;
    return guard.name === '' ? 'guard' : guard.name;
  }
  if (typeof guard === 'object' && 'type' in guard) return String(guard.type);
  return 'guard';
}
