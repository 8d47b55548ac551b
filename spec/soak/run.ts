/**
 * The soak: `npm run soak -- [--rounds N] [--seed S] [--size MIB] [--kinds a,b]
 * [--cancel-every K] [--warmup N] [--rss-bound MIB] [--out DIR]`.
 * Migrates one running `ab` guest again and again from one long-lived
 * source to a fresh destination per round (soak.ts), prints a line per
 * round and a summary, writes DIR/soak-<time>.json and .html (the RSS,
 * descriptor and thread curves), and exits 1 if a round was not exact or
 * the source grew past the bound. A failed round prints its number, its
 * seed and the command that replays the soak up to it. Ctrl-C (or SIGTERM)
 * stops the instances, writes what was run so far, and exits 130.
 */
import { parseArgs } from 'node:util';
import { stopAllInstances } from '../support/instances.js';
import { parseKinds } from './plan.js';
import { roundLine, summaryLines, writeResults } from './report.js';
import { DEFAULTS, runSoak, type RoundResult, type SoakOptions } from './soak.js';

const { values } = parseArgs({
  options: {
    rounds: { type: 'string', default: String(DEFAULTS.rounds) },
    seed: { type: 'string' },
    size: { type: 'string', default: String(DEFAULTS.sizeMiB) },
    kinds: { type: 'string' },
    'cancel-every': { type: 'string', default: String(DEFAULTS.cancelEvery) },
    warmup: { type: 'string', default: String(DEFAULTS.warmupRounds) },
    'rss-bound': { type: 'string', default: String(DEFAULTS.rssBoundMiB) },
    out: { type: 'string', default: 'soak-results' },
  },
});

function whole(name: string, text: string | undefined, min = 0): number {
  const value = Number(text);
  if (!Number.isSafeInteger(value) || value < min) throw new Error(`--${name} must be a whole number${min > 0 ? ` of at least ${min}` : ''}, not ${text}`);
  return value;
}

const options: SoakOptions = {
  rounds: whole('rounds', values.rounds, 1),
  seed: values.seed === undefined ? Date.now() % 0x7fffffff : whole('seed', values.seed),
  sizeMiB: whole('size', values.size, 8),
  kinds: parseKinds(values.kinds),
  cancelEvery: whole('cancel-every', values['cancel-every']),
  warmupRounds: whole('warmup', values.warmup, 1),
  rssBoundMiB: whole('rss-bound', values['rss-bound']),
};

const abort = new AbortController();
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    console.log(`\n${signal}: stopping the soak`);
    abort.abort();
    // The round in flight fails at once without its processes; runSoak then cleans up and returns.
    void stopAllInstances();
  });
}

console.log(
  `soak: seed ${options.seed}, ${options.rounds} rounds, ${options.sizeMiB} MiB guest, kinds ${options.kinds.join(',')}, ` +
    `1 round in ${options.cancelEvery} cancelled, bound after ${options.warmupRounds} rounds: RSS +${options.rssBoundMiB} MiB, fds and threads +0`,
);
const result = await runSoak(options, { signal: abort.signal, onRound: (r: RoundResult) => console.log(roundLine(r)) });
if (result.failedRound?.evidence) console.log(result.failedRound.evidence);
console.log(`\n${summaryLines(result).join('\n')}`);
const paths = writeResults(values.out, result);
console.log(`results: ${paths.json}\nreport: ${paths.html}`);
process.exitCode = result.interrupted ? 130 : result.passed ? 0 : 1;
