/**
 * The fuzz corpus replayed (spec/fuzz/corpus), then a short fixed-seed run
 * of every fuzz target's properties. The long run is `npm run fuzz`.
 */
import * as fc from 'fast-check';
import { entryInput, readCorpus } from './fuzz/corpus.js';
import { FUZZ_TARGETS } from './fuzz/targets.js';

/** Enough to catch a regression in seconds; `npm run fuzz` runs tens of thousands. */
const SHORT_RUNS = 200;
const SEED = 0x21;

describe('fuzz corpus and short fuzz runs', () => {
  for (const target of FUZZ_TARGETS) {
    describe(target.name, () => {
      it('keeps its properties on every corpus entry', () => {
        for (const entry of readCorpus(target.name)) {
          try {
            target.check(entryInput(entry));
          } catch (error) {
            throw new Error(`corpus entry (${entry.found}) ${entry.hex.slice(0, 120)}: ${String(error)}`, { cause: error });
          }
        }
      });

      it(`keeps its properties on ${SHORT_RUNS} hostile inputs (seed ${SEED})`, () => {
        fc.assert(fc.property(target.input, (input) => target.check(input)), { numRuns: SHORT_RUNS, seed: SEED });
      });

      it(`round-trips ${SHORT_RUNS / 4} encodings in random chunks (seed ${SEED})`, () => {
        fc.assert(target.roundTrip, { numRuns: SHORT_RUNS / 4, seed: SEED });
      });
    });
  }
});
