/**
 * The fault campaign: `npm run chaos -- [--runs N] [--seed S] [--first K]
 * [--faults a,b] [--modes a,b] [--faults-per-run 1|2] [--duration SECONDS]
 * [--out DIR]`.
 * Runs migrations of a running ab guest with one fault each (two with
 * `--faults-per-run 2`, each at a moment of its own), at moments the seeded
 * plan draws (plan.ts), judges each with the oracle (oracle.ts), prints a
 * line per run and a summary, writes DIR/chaos-<time>.json, and exits 1 if
 * any run failed a check. A failed run prints the command that replays it:
 * the same seed, `--first` its index, `--runs 1`.
 * With --duration, runs go on (up to --runs, if given) until that many
 * seconds have passed; with neither, one round: each fault (or pair of
 * faults) against each mode it fits once.
 * Without --faults, every fault (ALL_FAULTS) — but the link faults, which
 * need network namespaces, where the machine has none (said at start).
 * Namespaces, veths and tmpfs mounts left by a crashed earlier campaign are
 * removed at start; those of this one at the end of each run, and on
 * SIGINT or SIGTERM.
 */
import { parseArgs } from 'node:util';
import { stopAllInstances } from '../support/instances.js';
import { netnsUnavailable, removeStaleLinks } from './netns.js';
import { ALL_FAULTS, ALL_MODES, NETNS_FAULTS, parseList, planRuns } from './plan.js';
import { replayCommand, runLine, summarize, summaryText, writeResults } from './report.js';
import { removeLiveResources, runOne, type RunResult } from './run-one.js';
import { removeStaleMounts } from './tmpfs.js';

const { values } = parseArgs({
  options: {
    runs: { type: 'string' },
    seed: { type: 'string' },
    first: { type: 'string', default: '0' },
    faults: { type: 'string' },
    modes: { type: 'string' },
    'faults-per-run': { type: 'string', default: '1' },
    duration: { type: 'string' },
    out: { type: 'string', default: 'chaos-results' },
  },
});
const seed = values.seed === undefined ? Date.now() % 0x7fffffff : Number(values.seed);
const first = Number(values.first);
const durationMs = values.duration === undefined ? Infinity : Number(values.duration) * 1000;
let faults = parseList(values.faults, ALL_FAULTS, 'fault');
const modes = parseList(values.modes, ALL_MODES, 'mode');
const faultsPerRun = Number(values['faults-per-run']) as 1 | 2;
if (faultsPerRun !== 1 && faultsPerRun !== 2) throw new Error(`--faults-per-run must be 1 or 2, not ${values['faults-per-run']}`);

for (const removed of [...removeStaleLinks(), ...removeStaleMounts()]) console.log(`chaos: removed ${removed}, left by an earlier campaign`);
if (faults.some((f) => NETNS_FAULTS.includes(f))) {
  const why = netnsUnavailable();
  if (why !== undefined) {
    if (values.faults !== undefined) throw new Error(`the faults ${NETNS_FAULTS.join(', ')} need network namespaces: ${why}`);
    console.log(`chaos: leaving out ${NETNS_FAULTS.join(', ')}: ${why}`);
    faults = faults.filter((f) => !NETNS_FAULTS.includes(f));
  }
}
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    // The instances first: a namespace's veth goes only once no process is left in it, a mount once no file on it is open.
    void stopAllInstances()
      .catch(() => {})
      .finally(() => {
        removeLiveResources();
        process.exit(130);
      });
  });
}

// Without a count or a duration: one round, each fault (or pair) against each mode once.
const runs = values.runs !== undefined ? Number(values.runs) : durationMs === Infinity ? roundOf() : Number.MAX_SAFE_INTEGER;
for (const [name, value] of Object.entries({ seed, first, runs })) {
  if (!Number.isSafeInteger(value) || value < 0) throw new Error(`--${name} must be a whole number, not ${value}`);
}
if (!(durationMs > 0)) throw new Error(`--duration must be a number of seconds, not ${values.duration}`);

/** How many runs make a round: every combination of the plan once (the plan repeats its combinations per round). */
function roundOf(): number {
  const seen = new Set<string>();
  for (const run of planRuns(seed, 10_000, faults, modes, faultsPerRun)) {
    const key = `${run.mode}:${run.strikes.map((s) => s.fault).join('+')}`;
    if (seen.has(key)) return seen.size;
    seen.add(key);
  }
  return seen.size;
}

const scope = { faults, modes, faultsPerRun } as const;
console.log(`chaos: seed ${seed}, faults ${faults.join(',')}, modes ${modes.join(',')}${faultsPerRun === 2 ? ', two faults a run' : ''}`);
const started = performance.now();
const results: RunResult[] = [];
// The plan is drawn run by run from the start of the seed's sequence, so run K is the same whatever --first and --runs say.
const plan = planRuns(seed, first + Math.min(runs, 100_000), faults, modes, faultsPerRun).slice(first);
for (const run of plan) {
  if (results.length >= runs || performance.now() - started > durationMs) break;
  const result = await runOne(run);
  results.push(result);
  console.log(runLine(result));
  if (result.notes && result.notes.length > 0) console.log(`    ${result.notes.join('; ')}`);
  if (result.problems.length > 0) {
    for (const problem of result.problems) console.log(`    ${problem.kind}: ${problem.detail}`);
    console.log(`    replay: ${replayCommand(result, scope)}`);
  }
}
const summary = summarize(results, (performance.now() - started) / 1000);
console.log(`\n${summaryText(summary, results, scope)}`);
const path = writeResults(values.out, { seed, first, runs, faults, modes, faultsPerRun, durationMs }, results, summary);
console.log(`results: ${path}`);
process.exitCode = summary.failedRuns > 0 ? 1 : 0;
