/**
 * The fault campaign: `npm run chaos -- [--runs N] [--seed S] [--first K]
 * [--faults a,b] [--modes a,b] [--duration SECONDS] [--out DIR]`.
 * Runs migrations of a running ab guest with one fault each, at a moment
 * the seeded plan draws (plan.ts), judges each with the oracle (oracle.ts),
 * prints a line per run and a summary, writes DIR/chaos-<time>.json, and
 * exits 1 if any run failed a check. A failed run prints the command that
 * replays it: the same seed, `--first` its index, `--runs 1`.
 * With --duration, runs go on (up to --runs, if given) until that many
 * seconds have passed; with neither, one round: each fault against each
 * mode once.
 */
import { parseArgs } from 'node:util';
import { FAULTS, MODES, parseList, planRuns } from './plan.js';
import { replayCommand, runLine, summarize, summaryText, writeResults } from './report.js';
import { runOne, type RunResult } from './run-one.js';

const { values } = parseArgs({
  options: {
    runs: { type: 'string' },
    seed: { type: 'string' },
    first: { type: 'string', default: '0' },
    faults: { type: 'string' },
    modes: { type: 'string' },
    duration: { type: 'string' },
    out: { type: 'string', default: 'chaos-results' },
  },
});
const seed = values.seed === undefined ? Date.now() % 0x7fffffff : Number(values.seed);
const first = Number(values.first);
const durationMs = values.duration === undefined ? Infinity : Number(values.duration) * 1000;
const faults = parseList(values.faults, FAULTS, 'fault');
const modes = parseList(values.modes, MODES, 'mode');
// Without a count or a duration: one round, each fault against each mode once.
const runs = values.runs !== undefined ? Number(values.runs) : durationMs === Infinity ? faults.length * modes.length : Number.MAX_SAFE_INTEGER;
for (const [name, value] of Object.entries({ seed, first, runs })) {
  if (!Number.isSafeInteger(value) || value < 0) throw new Error(`--${name} must be a whole number, not ${value}`);
}
if (!(durationMs > 0)) throw new Error(`--duration must be a number of seconds, not ${values.duration}`);

console.log(`chaos: seed ${seed}, faults ${faults.join(',')}, modes ${modes.join(',')}`);
const started = performance.now();
const results: RunResult[] = [];
// The plan is drawn run by run from the start of the seed's sequence, so run K is the same whatever --first and --runs say.
const plan = planRuns(seed, first + Math.min(runs, 100_000), faults, modes).slice(first);
for (const run of plan) {
  if (results.length >= runs || performance.now() - started > durationMs) break;
  const result = await runOne(run);
  results.push(result);
  console.log(runLine(result));
  if (result.problems.length > 0) {
    for (const problem of result.problems) console.log(`    ${problem.kind}: ${problem.detail}`);
    console.log(`    replay: ${replayCommand(result, { faults, modes })}`);
  }
}
const summary = summarize(results, (performance.now() - started) / 1000);
console.log(`\n${summaryText(summary, results, { faults, modes })}`);
const path = writeResults(values.out, { seed, first, runs, faults, modes, durationMs }, results, summary);
console.log(`results: ${path}`);
process.exitCode = summary.failedRuns > 0 ? 1 : 0;
