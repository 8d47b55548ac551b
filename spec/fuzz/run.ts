/**
 * The long fuzz run: `npm run fuzz -- [--runs N] [--seed S] [--target NAME] [--path P]`.
 * For each target, N hostile inputs against its properties and N/10 round
 * trips; prints inputs tried, failures, seed and time. A failure prints the
 * shrunk input, its seed and path (`--seed S --path P` replays it) and adds
 * the input to spec/fuzz/corpus/<target>.json, which `npm test` replays.
 */
import * as fc from 'fast-check';
import { parseArgs } from 'node:util';
import { addToCorpus } from './corpus.js';
import type { FuzzInput } from './fuzz-target.js';
import { FUZZ_TARGETS } from './targets.js';

const { values } = parseArgs({
  options: { runs: { type: 'string', default: '20000' }, seed: { type: 'string' }, target: { type: 'string' }, path: { type: 'string' } },
});
const runs = Number(values.runs);
const seed = values.seed === undefined ? Date.now() % 0x7fffffff : Number(values.seed);
const targets = FUZZ_TARGETS.filter((t) => values.target === undefined || t.name === values.target);
if (targets.length === 0) throw new Error(`No fuzz target '${values.target}'; targets: ${FUZZ_TARGETS.map((t) => t.name).join(', ')}`);

let failed = false;
for (const target of targets) {
  const started = performance.now();
  const parameters = { numRuns: runs, seed, ...(values.path === undefined ? {} : { path: values.path }) };
  const hostile = fc.check(fc.property(target.input, (input) => target.check(input)), parameters);
  const roundTrip = fc.check(target.roundTrip, { ...parameters, numRuns: Math.max(1, Math.round(runs / 10)) });
  const seconds = ((performance.now() - started) / 1000).toFixed(1);
  console.log(
    `${target.name.padEnd(20)} inputs ${String(hostile.numRuns).padStart(6)}  round trips ${String(roundTrip.numRuns).padStart(5)}  ` +
      `failures ${Number(hostile.failed) + Number(roundTrip.failed)}  seed ${seed}  ${seconds} s`,
  );
  for (const [property, details] of [['hostile input', hostile], ['round trip', roundTrip]] as const) {
    if (!details.failed) continue;
    failed = true;
    const reason = details.errorInstance instanceof Error ? (details.errorInstance.cause ?? details.errorInstance) : details.errorInstance;
    console.log(`  ${property} failed: ${String(reason)}`);
    console.log(`  replay: npm run fuzz -- --target ${target.name} --seed ${details.seed} --path ${details.counterexamplePath} --runs ${runs}`);
    if (property === 'hostile input' && details.counterexample !== null) {
      const [input] = details.counterexample as [FuzzInput];
      console.log(`  input: ${Buffer.from(input.bytes).toString('hex')} cuts [${input.cuts.join(', ')}]`);
      addToCorpus(target.name, input, `fuzz seed ${details.seed}: ${String(reason).slice(0, 200)}`);
    } else {
      console.log(`  counterexample: ${fc.stringify(details.counterexample)}`);
    }
  }
}
process.exitCode = failed ? 1 : 0;
