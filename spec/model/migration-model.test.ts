/**
 * Model-based tests: paths generated from the world model (both statecharts
 * and the link between them) are driven against real instances, and after
 * every step the real query-migrate status and MIGRATION events of both
 * sides must be the model's. Coverage of the two real machines is printed
 * at the end, and must be complete.
 *
 * LIVEMIG_MODEL_PATHS=shortest|full widens the run (see path-plan.ts).
 */
import { expect } from 'chai';
import { stopAllInstances } from '../support/instances.js';
import { ModelCoverage } from './coverage.js';
import { LiveWorld, startPair, type InstancePair } from './live-world.js';
import { planFromEnvironment, planPath, transitionPaths } from './path-plan.js';
import { destinationChart, sourceChart } from './statechart.js';
import { UNDRIVABLE } from './world-model.js';

/** Planning runs the real machines under the model: a machine that refuses a modelled step fails here, in a test. */
function planOrFailure(): ReturnType<typeof planFromEnvironment> | Error {
  try {
    return planFromEnvironment();
  } catch (err) {
    return err as Error;
  }
}

const planned = planOrFailure();
const paths = planned instanceof Error ? [] : planned.paths;
const coverage = new ModelCoverage();

const scope = planned instanceof Error ? 'no plan' : `${planned.mode}${planned.mode === 'full' ? ` to depth ${planned.depth}` : ''}, ${planned.paths.length} paths`;

describe(`model-based: both statecharts against real instances (${scope})`, function () {
  this.timeout(120_000);
  let world: LiveWorld | undefined;
  /** The next path's pair, starting while a path runs: startup is most of a path's time. */
  let prestarted: Promise<InstancePair> | undefined;
  const startNext = () => {
    prestarted = startPair();
    prestarted.catch(() => {}); // awaited by the next path, which reports the failure
  };

  afterEach(async () => {
    await world?.close();
    world = undefined;
  });

  after(async () => {
    await prestarted?.catch(() => {});
    await stopAllInstances();
  });

  after(() => {
    console.log(`      ${coverage.summary()}`);
    console.log(`      not drivable by design (the actor threw): ${coverage.actorErrorTransitions().join('; ')}`);
    console.log(`      not drivable by the world: ${coverage.undrivableTransitions().join('; ')}`);
  });

  it('the model drives every transition of both real machines and reaches every reachable status', () => {
    if (planned instanceof Error) throw planned;
    const steps = transitionPaths().flatMap((events) => planPath(events).steps);
    for (const [chart, side] of [[sourceChart, 'source'], [destinationChart, 'destination']] as const) {
      const driven = new Set(steps.flatMap((s) => s[side].transitions.map((t) => t.id)));
      const reached = new Set(['none', ...steps.flatMap((s) => s[side].statuses)]);
      const undrivable = Object.keys(UNDRIVABLE[side]);
      const undriven = chart.transitions.filter((t) => !t.onActorError && !undrivable.includes(t.id) && !driven.has(t.id)).map((t) => t.id);
      expect(undriven, `no world event drives these ${side} transitions`).to.deep.equal([]);
      // The list of what the world cannot drive names real transitions, and none a world event drives.
      expect(undrivable.filter((id) => !chart.transitions.some((t) => t.id === id)), `UNDRIVABLE names no ${side} transition`).to.deep.equal([]);
      expect(undrivable.filter((id) => driven.has(id)), `UNDRIVABLE lists ${side} transitions a world event drives`).to.deep.equal([]);
      expect(chart.reachable.filter((s) => !reached.has(s)), `the model never reaches these ${side} statuses`).to.deep.equal([]);
    }
  });

  for (const [i, path] of paths.entries()) {
    it(path.title, async () => {
      coverage.pathsRun += 1;
      const pair = prestarted ?? startPair();
      prestarted = undefined;
      world = new LiveWorld(await pair, path);
      if (i + 1 < paths.length) startNext();
      await world.drive(path, (step) => coverage.record(step));
    });
  }

  it('the executed paths took every reachable status and transition of both machines', function () {
    // A run narrowed with --grep cannot cover everything: only a whole run is judged.
    if (planned instanceof Error || coverage.pathsRun < paths.length) this.skip();
    expect(coverage.missing(), 'not covered by any path the real instances followed').to.deep.equal([]);
    expect(coverage.undrivableTaken(), 'listed as undrivable, yet taken').to.deep.equal([]);
  });
});
