/**
 * The bench's ratios from pairs (tools/bench/pair-ratios.ts) on made-up
 * rounds: one ratio per round of the runs taken side by side, the median
 * and range over them, and the rounds flagged because a reference drifted
 * from its median over the run.
 */
import { expect } from 'chai';
import { DRIFT_TOLERANCE, driftsOf, pairRatios, summarizePairs } from '../tools/bench/pair-ratios.js';

describe('bench pair ratios', () => {
  describe('driftsOf', () => {
    it('finds the round whose figure is more than the tolerance off the median, with how far', () => {
      // Median 4.3: round 2 (0.9) is 79 % below it, the others within a few %.
      const drifts = driftsOf('loopback-1', [4.2, 4.4, 0.9, 4.3, 4.35]);
      expect(drifts).to.have.length(1);
      const [d] = drifts;
      expect(d).to.include({ round: 2, reference: 'loopback-1', value: 0.9, median: 4.3 });
      expect(d!.deviation).to.be.closeTo(0.9 / 4.3 - 1, 1e-12);
    });

    it('flags above the median as well as below, and nothing within the tolerance', () => {
      expect(driftsOf('q', [2, 2, 2.6]).map((d) => d.round)).to.deep.equal([2]);
      expect(driftsOf('q', [2, 2, 2 * (1 + DRIFT_TOLERANCE) - 0.01])).to.deep.equal([]);
      expect(driftsOf('q', [2, 2, 2 * (1 - DRIFT_TOLERANCE) + 0.01])).to.deep.equal([]);
    });

    it('skips rounds with no figure, keeping the others at their round', () => {
      expect(driftsOf('q', [3, undefined, 3, 1]).map((d) => d.round)).to.deep.equal([3]);
    });

    it('finds nothing with fewer than two figures: one is its own median', () => {
      expect(driftsOf('q', [5])).to.deep.equal([]);
      expect(driftsOf('q', [undefined, 5, undefined])).to.deep.equal([]);
      expect(driftsOf('q', [])).to.deep.equal([]);
    });

    it('takes a tolerance of its own', () => {
      expect(driftsOf('q', [1, 1, 1.2], 0.1).map((d) => d.round)).to.deep.equal([2]);
    });
  });

  describe('pairRatios', () => {
    it('divides each round by the same round of the reference, only where both measured', () => {
      const pairs = pairRatios([3, 3.3, undefined, 2], [2, 3, 2, undefined], new Set([1]));
      expect(pairs.map((p) => [p.round, p.flagged])).to.deep.equal([[0, false], [1, true]]);
      expect(pairs[0]!.value).to.equal(1.5);
      expect(pairs[1]!.value).to.be.closeTo(1.1, 1e-12);
    });

    it('with driftsOf and summarizePairs: a round where only the reference was slow is flagged, out of the median, in the range', () => {
      const ours = [3.4, 3.2, 3.3, 3.5, 3.3];
      const theirs = [2.4, 0.8, 2.3, 2.4, 2.2];
      const flagged = new Set(driftsOf('qemu', theirs).map((d) => d.round));
      expect([...flagged]).to.deep.equal([1]);
      const s = summarizePairs(pairRatios(ours, theirs, flagged))!;
      expect(s.value.toFixed(3)).to.equal('1.447'); // the middle two of the four unflagged: 3.3 ÷ 2.3 and 3.5 ÷ 2.4
      expect(s.pairs.max).to.equal(4); // 3.2 ÷ 0.8, still in the range
      expect(s.pairs.medianOver).to.equal('unflagged');
    });

    it('gives no pair against a reference figure of zero', () => {
      expect(pairRatios([1], [0], new Set())).to.deep.equal([]);
    });
  });

  describe('summarizePairs', () => {
    const pair = (round: number, value: number, flagged = false) => ({ round, value, flagged });

    it('reports the median of the pairs and their range', () => {
      const s = summarizePairs([pair(0, 1.36), pair(1, 1.21), pair(2, 1.52), pair(3, 1.4), pair(4, 1.3)])!;
      expect(s.value).to.equal(1.36);
      expect(s.pairs).to.include({ min: 1.21, max: 1.52, medianOver: 'all' });
      expect(s.pairs.ratios).to.have.length(5);
    });

    it('takes the median over the unflagged pairs while two remain, the flagged still in the range', () => {
      const s = summarizePairs([pair(0, 1.3), pair(1, 1.4), pair(2, 3.0, true)])!;
      expect(s.value).to.be.closeTo(1.35, 1e-12);
      expect(s.pairs).to.include({ min: 1.3, max: 3.0, medianOver: 'unflagged' });
    });

    it('takes the median over all pairs when fewer than two are unflagged', () => {
      const s = summarizePairs([pair(0, 1.3), pair(1, 2.0, true), pair(2, 3.0, true)])!;
      expect(s.value).to.equal(2.0);
      expect(s.pairs.medianOver).to.equal('all');
      expect(summarizePairs([pair(0, 1.5, true)])).to.deep.include({ value: 1.5 });
    });

    it('gives nothing without a pair', () => {
      expect(summarizePairs([])).to.equal(undefined);
    });
  });
});
