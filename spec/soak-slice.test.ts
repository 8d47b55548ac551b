/**
 * A fixed-seed slice of the soak (spec/soak/): one long-lived source
 * migrated six times, each round to a fresh destination, over tcp, a unix
 * socket, multifd (with and without zstd), xbzrle and TLS, two of the
 * rounds cancelled during `active`. Every round must be exact and every
 * round sampled; six rounds are too few to judge growth (the full soak,
 * `npm run soak`, does after its warm-up).
 */
import { expect } from 'chai';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stopAllInstances } from './support/instances.js';
import { planRounds, type Kind } from './soak/plan.js';
import { replayCommand, writeResults } from './soak/report.js';
import { ROUND_BOUND_MS, runSoak, type SoakOptions, type SoakResult } from './soak/soak.js';

const KINDS: Kind[] = ['tcp', 'unix', 'multifd-2', 'multifd-4-zstd', 'xbzrle', 'tls'];
const OPTIONS: SoakOptions = {
  rounds: 6,
  seed: 21,
  sizeMiB: 32,
  kinds: KINDS,
  // Two cancelled rounds in six.
  cancelEvery: 3,
  // Past the slice's end: growth is not judged on six rounds.
  warmupRounds: 10,
  rssBoundMiB: 32,
};

describe(`soak slice (seed ${OPTIONS.seed}, ${OPTIONS.rounds} rounds)`, function () {
  // Each round is bounded by the soak itself; this only catches a harness that hangs past that.
  this.timeout(ROUND_BOUND_MS + 60_000);
  afterEach(stopAllInstances);

  it('covers tcp, multifd and a cancel', () => {
    const plan = planRounds(OPTIONS.seed, OPTIONS.rounds, OPTIONS.kinds, OPTIONS.cancelEvery);
    expect(plan.map((r) => r.kind)).to.include.members(['tcp', 'multifd-2', 'multifd-4-zstd']);
    expect(plan.filter((r) => r.cancelAfterMs !== undefined)).to.have.length(2);
  });

  let result: SoakResult;
  it('every round is exact, and the source and each completed destination sampled', async () => {
    result = await runSoak(OPTIONS);
    const failed = result.failedRound;
    expect(failed?.problem, failed && `round ${failed.index} (${failed.kind}); ${replayCommand(result, failed)}\n${failed.evidence}`).to.equal(undefined);
    expect(result.rounds).to.have.length(OPTIONS.rounds);
    expect(result.passed).to.equal(true);
    expect(result.growth.judged).to.equal(false);
    for (const sample of [result.initial, ...result.rounds.map((r) => r.source)]) {
      expect(sample).to.include.all.keys('rss', 'fds', 'threads');
      expect(sample!.rss).to.be.above(0);
      expect(sample!.fds).to.be.above(0);
      expect(sample!.threads).to.be.above(0);
    }
    for (const round of result.rounds) {
      const cancelled = round.cancelAfterMs !== undefined;
      expect(round.outcome, `round ${round.index}`).to.equal(cancelled ? 'cancelled' : 'completed');
      if (cancelled) expect(round.destination).to.equal(undefined);
      else expect(round.destination!.threads, `round ${round.index}'s destination sample`).to.be.above(0);
    }
  });

  it('writes the samples as JSON and the three curves into the HTML report', function () {
    if (!result) this.skip();
    const dir = mkdtempSync(join(tmpdir(), 'livemig-soak-report-'));
    try {
      const paths = writeResults(dir, result);
      const json = JSON.parse(readFileSync(paths.json, 'utf8')) as SoakResult;
      expect(json.rounds.map((r) => r.source)).to.deep.equal(result.rounds.map((r) => r.source));
      const html = readFileSync(paths.html, 'utf8');
      expect(html.match(/<svg /g)).to.have.length(3);
      for (const title of ['resident set', 'open file descriptors', 'threads']) expect(html).to.include(title);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
