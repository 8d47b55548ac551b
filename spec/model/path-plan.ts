/**
 * Which paths through the world model run against real instances.
 *
 * xstate/graph generates them: shortest paths to every model state, paths
 * to every model transition (the shortest path to its state, then the
 * event), and simple paths up to a depth. Each path costs two fresh
 * instances, so `npm test` runs a greedy cover of the first two: the fewest
 * paths that take every real transition under every world event that can
 * cause it, and every world event at least once; steps that change
 * nothing (the monitor's refusals, a request that waits) are then threaded
 * into those paths wherever they apply. LIVEMIG_MODEL_PATHS widens it for a
 * longer exploration (see `planFromEnvironment`).
 */
import { fromTransition } from 'xstate';
import { createTestModel, getSimplePaths } from 'xstate/graph';
import {
  consequence, initialWorld, worldEvents, worldKey, worldMachine, type Consequence, type SideStep, type World, type WorldEvent,
} from './world-model.js';

/** Cover targets of the monitor's refusals: `refused: <command>: <its answer>`. */
const REFUSED = 'refused: ';

export interface PlannedStep {
  event: WorldEvent;
  before: World;
  after: World;
  /** What each side announces and which of its real transitions it takes. */
  source: SideStep;
  destination: SideStep;
  /** The monitor's refusal of the step's command (its error text), or null when it accepts it. */
  refusal: string | null;
  /**
   * Model keys of the real transitions taken, with their cause, e.g.
   * `source: active --failed--> failed ⟸ cut`, and of the refusal, e.g.
   * `refused: migrate_cancel: Cannot cancel a migration in postcopy-active: …`.
   */
  causes: string[];
}

export interface PlannedPath {
  steps: PlannedStep[];
  /** How the test names it: the events, then where both sides end. */
  title: string;
}

/** Human-readable form of a world event. */
export function eventLabel(event: WorldEvent): string {
  if (event.type === 'migrate-pause' || event.type === 'x-colo-lost-heartbeat') return `${event.type} (${event.side})`;
  if (event.type !== 'migrate') return event.type;
  const capabilities = [
    ...(event.postcopy ? ['postcopy-ram'] : []), ...(event.colo ? ['x-colo'] : []), ...(event.pauseBeforeSwitchover ? ['pause-before-switchover'] : []),
    ...(event.switchoverAck ? ['switchover-ack'] : []),
  ];
  return capabilities.length === 0 ? 'migrate' : `migrate (${capabilities.join(', ')})`;
}

/** Replays `events` through the model from the start. */
export function planPath(events: readonly WorldEvent[]): PlannedPath {
  let world = initialWorld();
  const steps: PlannedStep[] = [];
  for (const event of events) {
    const next = consequence(world, event);
    if (!next) throw new Error(`'${eventLabel(event)}' cannot happen in ${worldKey(world)}`);
    steps.push(plannedStep(world, event, next));
    world = next.world;
  }
  return { steps, title: `${events.map(eventLabel).join(' → ')} ⇒ ${worldKey(world)}` };
}

function plannedStep(before: World, event: WorldEvent, next: Consequence): PlannedStep {
  const causes = [
    ...next.source.transitions.filter((t) => !t.onActorError).map((t) => `source: ${t.id} ⟸ ${event.type}`),
    ...next.destination.transitions.map((t) => `destination: ${t.id} ⟸ ${event.type}`),
    ...(next.refusal === null ? [] : [`${REFUSED}${event.type}: ${next.refusal}`]),
  ];
  const { source, destination, refusal } = next;
  return { event, before, after: next.world, source, destination, refusal, causes };
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

/** What a step contributes to the cover: its real transitions by cause, its refusal, and the world event it drives. */
function stepTargets(step: PlannedStep): string[] {
  return [...step.causes, ...(step.refusal === null ? [`event: ${step.event.type}`] : [])];
}

function targetsOf(path: PlannedPath): string[] {
  return path.steps.flatMap(stepTargets);
}

/** Every target a set of candidates offers. */
function allTargets(paths: readonly PlannedPath[]): Set<string> {
  return new Set(paths.flatMap(targetsOf));
}

/**
 * A step that leaves the world as it was (a refusal, a request that waits,
 * a command accepted in vain) changes nothing after it: it can go into any
 * path that passes a state where it happens so.
 */
function isLoop(step: Pick<PlannedStep, 'before' | 'after'>): boolean {
  return worldKey(step.before) === worldKey(step.after);
}

/**
 * The cover: a greedy set cover of the candidates for what takes a change
 * of state, then the loops threaded into the chosen paths; a target met on
 * none of them gets a candidate path of its own.
 */
export function cover(candidates: readonly PlannedPath[]): PlannedPath[] {
  const targets = allTargets(candidates);
  const threadable = new Set(candidates.flatMap((p) => p.steps.filter(isLoop).flatMap(stepTargets)));
  const chosen = greedyCover(candidates, [...targets].filter((t) => !threadable.has(t)));
  const reached = allTargets(chosen);
  const threaded = thread(chosen, [...threadable].filter((t) => !reached.has(t)));
  const covered = allTargets(threaded);
  return [...threaded, ...greedyCover(candidates, [...targets].filter((t) => !covered.has(t)))];
}

/**
 * Greedy set cover of `targets`: repeatedly the path with the most targets
 * not yet covered per unit of cost (a pair of instances costs about six steps).
 */
function greedyCover(candidates: readonly PlannedPath[], targets: readonly string[]): PlannedPath[] {
  const uncovered = new Set(targets);
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
  // A path chosen early may be covered by the ones chosen after it: the longest such go first.
  const wanted = new Set(targets);
  for (const path of [...chosen].sort((a, b) => b.steps.length - a.steps.length)) {
    const others = allTargets(chosen.filter((p) => p !== path));
    if (targetsOf(path).every((t) => others.has(t) || !wanted.has(t))) chosen.splice(chosen.indexOf(path), 1);
  }
  return chosen;
}

/**
 * Inserts into `paths`, at the first state where it happens, a loop for
 * each target in `wanted` (a step, instead of a pair of instances).
 */
function thread(paths: readonly PlannedPath[], wanted: readonly string[]): PlannedPath[] {
  const uncovered = new Set(wanted);
  return paths.map((path) => {
    const events: WorldEvent[] = [];
    const threaded: string[] = [];
    const threadAt = (world: World) => {
      for (const event of worldEvents) {
        const next = consequence(world, event);
        if (!next || !isLoop({ before: world, after: next.world })) continue;
        const gains = stepTargets(plannedStep(world, event, next)).filter((t) => uncovered.delete(t));
        if (gains.length === 0) continue;
        threaded.push(...gains);
        events.push(event);
      }
    };
    for (const step of path.steps) {
      threadAt(step.before);
      events.push(step.event);
    }
    threadAt(path.steps.at(-1)?.after ?? initialWorld());
    if (threaded.length === 0) return path;
    // Replanned from the start: the loops must change nothing the path's own steps meet.
    const replanned = planPath(events);
    const lost = [...targetsOf(path), ...threaded].filter((t) => !targetsOf(replanned).includes(t));
    if (lost.length > 0) throw new Error(`threading into '${path.title}' loses ${lost.join('; ')}`);
    return replanned;
  });
}

export type PlanMode = 'cover' | 'shortest' | 'full';

/** How deep `full` goes by default: deep enough to matter, cheap to generate. */
const FULL_DEPTH = 4;

/**
 * The paths a run drives:
 * - `cover` (default, `npm test`): the cover above. Simple paths are left
 *   out of its pool: to depth 4 they added no path to the cover, and cost
 *   more than a second of planning at every run;
 * - `shortest`: the cover plus the shortest path to every model state;
 * - `full`: those plus every simple path of at most LIVEMIG_MODEL_DEPTH events (default 4).
 */
export function planFromEnvironment(env: NodeJS.ProcessEnv = process.env): { mode: PlanMode; depth: number; paths: PlannedPath[] } {
  const mode = (env.LIVEMIG_MODEL_PATHS ?? 'cover') as PlanMode;
  if (!['cover', 'shortest', 'full'].includes(mode)) throw new Error(`LIVEMIG_MODEL_PATHS must be cover, shortest or full, not '${mode}'`);
  const depth = Number(env.LIVEMIG_MODEL_DEPTH ?? FULL_DEPTH);
  if (!Number.isInteger(depth) || depth < 1) throw new Error(`LIVEMIG_MODEL_DEPTH must be a positive integer, not '${env.LIVEMIG_MODEL_DEPTH}'`);
  const shortest = shortestPaths();
  const pool = [...shortest, ...transitionPaths()].map(planPath);
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
