/**
 * Which paths through the world model run against real instances.
 *
 * xstate/graph generates them: shortest paths to every model state, paths
 * to every model transition (the shortest path to its state, then the
 * event), and simple paths up to a depth. Each path costs two fresh
 * instances, so `npm test` runs a greedy cover of that pool: the fewest
 * paths that take every real transition under every world event that can
 * cause it, and every world event at least once. LIVEMIG_MODEL_PATHS
 * widens it for a longer exploration (see `planFromEnvironment`).
 */
import { fromTransition } from 'xstate';
import { createTestModel, getSimplePaths } from 'xstate/graph';
import {
  consequence, initialWorld, worldEvents, worldKey, worldMachine, type SideStep, type World, type WorldEvent,
} from './world-model.js';

export interface PlannedStep {
  event: WorldEvent;
  before: World;
  after: World;
  /** What each side announces and which of its real transitions it takes. */
  source: SideStep;
  destination: SideStep;
  /** Model keys of the real transitions taken, with their cause, e.g. `source: active --failed--> failed ⟸ cut`. */
  causes: string[];
}

export interface PlannedPath {
  steps: PlannedStep[];
  /** How the test names it: the events, then where both sides end. */
  title: string;
}

/** Human-readable form of a world event. */
export function eventLabel(event: WorldEvent): string {
  return event.type === 'migrate' && event.pauseBeforeSwitchover ? 'migrate (pause-before-switchover)' : event.type;
}

/** Replays `events` through the model from the start. */
export function planPath(events: readonly WorldEvent[]): PlannedPath {
  let world = initialWorld();
  const steps: PlannedStep[] = [];
  for (const event of events) {
    const next = consequence(world, event);
    if (!next) throw new Error(`'${eventLabel(event)}' cannot happen in ${worldKey(world)}`);
    const causes = [
      ...next.source.transitions.filter((t) => !t.onActorError).map((t) => `source: ${t.id} ⟸ ${event.type}`),
      ...next.destination.transitions.map((t) => `destination: ${t.id} ⟸ ${event.type}`),
    ];
    steps.push({ event, before: world, after: next.world, source: next.source, destination: next.destination, causes });
    world = next.world;
  }
  return { steps, title: `${events.map(eventLabel).join(' → ')} ⇒ ${worldKey(world)}` };
}

const model = createTestModel(worldMachine, {
  events: worldEvents,
  serializeState: (snapshot) => worldKey(snapshot.context),
  filterEvents: (snapshot, event) => consequence(snapshot.context, event) !== null,
});

/** Model steps of an xstate path (its first step is the `xstate.init` pseudo-step). */
function eventsOf(path: { steps: { event: { type: string } }[] }): WorldEvent[] {
  return path.steps.slice(1).map((s) => s.event as WorldEvent);
}

let toEveryState: ReturnType<typeof model.getShortestPaths> | undefined;

/** The shortest path to each model state (the traversal is the costly part: done once). */
function shortestToEveryState(): ReturnType<typeof model.getShortestPaths> {
  toEveryState ??= model.getShortestPaths({ allowDuplicatePaths: true });
  return toEveryState;
}

/** Shortest paths to every model state, leaving out those another path extends. */
export function shortestPaths(): WorldEvent[][] {
  return withoutPrefixes(shortestToEveryState().map(eventsOf));
}

/** For every model transition: the shortest path to its state, then its event. */
export function transitionPaths(): WorldEvent[][] {
  const paths: WorldEvent[][] = [];
  for (const path of shortestToEveryState()) {
    for (const event of worldEvents) {
      if (consequence(path.state.context, event)) paths.push([...eventsOf(path), event]);
    }
  }
  return paths;
}

/**
 * Simple paths (no model state twice) of at most `depth` events. The model's
 * cycles make unbounded simple paths explode, so the traversal runs over the
 * model with a step count in its state, stopped at `depth`; only the longest
 * paths are kept (each shorter one is a prefix of some longer one).
 */
export function simplePaths(depth: number): WorldEvent[][] {
  const counted = fromTransition(
    (state: { world: World; steps: number }, event: WorldEvent) => {
      const next = consequence(state.world, event);
      return next ? { world: next.world, steps: state.steps + 1 } : state;
    },
    { world: initialWorld(), steps: 0 },
  );
  const paths = getSimplePaths(counted, {
    events: worldEvents,
    serializeState: (s) => `${worldKey(s.context.world)} @${s.context.steps}`,
    filterEvents: (s, event) => s.context.steps < depth && consequence(s.context.world, event) !== null,
  })
    .filter((p) => new Set(p.steps.map((s) => worldKey(s.state.context.world))).size === p.steps.length)
    .map(eventsOf);
  return withoutPrefixes(paths);
}

function withoutPrefixes(paths: WorldEvent[][]): WorldEvent[][] {
  const keys = paths.map((p) => p.map((e) => `${JSON.stringify(e)} `).join(''));
  return paths.filter((_, i) => !keys.some((other, j) => j !== i && other.length > keys[i]!.length && other.startsWith(keys[i]!)));
}

/** What a path contributes to the cover: its real transitions by cause, and the world events it drives. */
function targetsOf(path: PlannedPath): string[] {
  return [...path.steps.flatMap((s) => s.causes), ...path.steps.map((s) => `event: ${s.event.type}`)];
}

/** Every target a set of candidates offers. */
function allTargets(paths: readonly PlannedPath[]): Set<string> {
  return new Set(paths.flatMap(targetsOf));
}

/**
 * Greedy set cover: repeatedly the path with the most targets not yet
 * covered per unit of cost (a pair of instances costs about six steps).
 */
export function cover(candidates: readonly PlannedPath[]): PlannedPath[] {
  const uncovered = allTargets(candidates);
  const chosen: PlannedPath[] = [];
  while (uncovered.size > 0) {
    let best: PlannedPath | undefined;
    let bestScore = 0;
    for (const path of candidates) {
      const gain = new Set(targetsOf(path).filter((t) => uncovered.has(t))).size;
      const score = gain / (6 + path.steps.length);
      if (score > bestScore) [best, bestScore] = [path, score];
    }
    if (!best) break;
    chosen.push(best);
    for (const t of targetsOf(best)) uncovered.delete(t);
  }
  return chosen;
}

export type PlanMode = 'cover' | 'shortest' | 'full';

/** The simple paths in the pool `npm test` chooses from: deep enough to matter, cheap to generate. */
const POOL_DEPTH = 4;

/**
 * The paths a run drives:
 * - `cover` (default, `npm test`): the greedy cover above;
 * - `shortest`: the cover plus the shortest path to every model state;
 * - `full`: those plus every simple path of at most LIVEMIG_MODEL_DEPTH events (default 4).
 */
export function planFromEnvironment(env: NodeJS.ProcessEnv = process.env): { mode: PlanMode; depth: number; paths: PlannedPath[] } {
  const mode = (env.LIVEMIG_MODEL_PATHS ?? 'cover') as PlanMode;
  if (!['cover', 'shortest', 'full'].includes(mode)) throw new Error(`LIVEMIG_MODEL_PATHS must be cover, shortest or full, not '${mode}'`);
  const depth = Number(env.LIVEMIG_MODEL_DEPTH ?? POOL_DEPTH);
  if (!Number.isInteger(depth) || depth < 1) throw new Error(`LIVEMIG_MODEL_DEPTH must be a positive integer, not '${env.LIVEMIG_MODEL_DEPTH}'`);
  const shortest = shortestPaths();
  const pool = [...shortest, ...transitionPaths(), ...simplePaths(POOL_DEPTH)].map(planPath);
  const paths = cover(pool);
  if (mode !== 'cover') paths.push(...shortest.map(planPath));
  if (mode === 'full') paths.push(...simplePaths(depth).map(planPath));
  return { mode, depth, paths: unique(paths) };
}

function unique(paths: PlannedPath[]): PlannedPath[] {
  const seen = new Set<string>();
  return paths.filter((p) => {
    const key = p.title;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}
