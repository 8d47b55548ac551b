/**
 * A fixed-seed slice of the fault campaign (spec/chaos/): one round of
 * every fault against every mode, each run its own test, judged by the
 * campaign's oracle. The full campaign is `npm run chaos`; a failure here
 * names the command that replays its run.
 */
import { expect } from 'chai';
import { MODES, fits, planRuns, type Fault } from './chaos/plan.js';
import { replayCommand } from './chaos/report.js';
import { RUN_BOUND_MS, runOne } from './chaos/run-one.js';
import { stopAllInstances } from './support/instances.js';

const SEED = 21;
/** The faults of the slice: the proxy's, the signals', the orchestrator's and a multifd thread's death (the campaign has more). */
const SLICE_FAULTS: readonly Fault[] = ['none', 'cut', 'stall', 'corrupt', 'slow', 'kill-source', 'kill-destination', 'cancel', 'kill-multifd-thread'];
/** One round: each fault meets each mode it fits once, at a moment of the seed's drawing. */
const RUNS = SLICE_FAULTS.flatMap((f) => MODES.filter((m) => fits(f, m))).length;

describe(`fault campaign slice (seed ${SEED})`, function () {
  // runOne bounds a run itself and cleans up after it; this only catches a harness that hangs past that.
  this.timeout(RUN_BOUND_MS + 30_000);
  afterEach(stopAllInstances);

  for (const plan of planRuns(SEED, RUNS, SLICE_FAULTS, MODES)) {
    it(`#${plan.index} ${plan.mode}, ${plan.fault} at ${plan.momentMs} ms`, async () => {
      const result = await runOne(plan);
      const problems = result.problems.map((p) => `${p.kind}: ${p.detail}`).join('\n');
      const replay = replayCommand(result, { faults: SLICE_FAULTS, modes: MODES });
      expect(problems, `${result.outcome} (src ${result.source}, dst ${result.destination}); ${replay}\n${result.evidence ?? ''}`).to.equal('');
    });
  }
});
