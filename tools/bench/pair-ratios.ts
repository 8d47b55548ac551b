/**
 * Ratios from pairs. This shared VM's speed drifts by up to 10× between
 * phases, so a ratio of two scenarios' medians can set livemig's run from a
 * fast phase against QEMU's from a slow one. Each round runs a livemig
 * scenario right beside its references (round-plan.ts), so round r gives
 * one ratio of two runs taken seconds apart: a pair. A ratio is the median
 * of its pairs, with their range. A round in which a reference moved far
 * from its own median over the run was measured in an unusual phase: its
 * pairs are flagged, kept in the range, and left out of the median while
 * at least two unflagged pairs remain.
 *
 * Plain arithmetic on per-round figures (index: round, from 0; undefined:
 * no successful run that round), tried in spec/pair-ratios.test.ts.
 */
import { median } from './median.js';

/**
 * How far a reference's figure may move in one round, as a fraction of its
 * median over the run, before that round's pairs are flagged. In a steady
 * phase this machine's run-to-run noise stays within about ±20 % (five
 * runs of one day: the loopback limit 3.45–4.78 GB/s, QEMU multifd ×2
 * 2.36–3.56), while a slow phase shows up several times below (a loopback
 * limit of 0.33 GB/s against 4.35): ±25 % lies between the two.
 */
export const DRIFT_TOLERANCE = 0.25;

/** The median leaves the flagged pairs out only while this many unflagged ones remain: one pair alone is no median. */
export const MIN_UNFLAGGED_PAIRS = 2;

/** One round's figure of a reference, off its median over the run by more than the tolerance. */
export interface Drift {
  /** From 0. */
  round: number;
  reference: string;
  value: number;
  /** The reference's median over every round that measured it. */
  median: number;
  /** value ÷ median − 1: −0.71 is 71 % below the median. */
  deviation: number;
}

/** A drift as the results report it: the figure's unit, and the livemig scenarios whose pairs of that round it flagged. */
export interface RoundDrift extends Drift {
  unit: string;
  flagged: string[];
}

/** One round's ratio: the scenario's figure ÷ its reference's, both from that round. */
export interface PairRatio {
  /** From 0. */
  round: number;
  value: number;
  flagged: boolean;
}

/** What a ratio's pairs gave: each pair, the range over all of them, and what its median was taken over. */
export interface PairStats {
  ratios: PairRatio[];
  /** The range over every pair, flagged or not. */
  min: number;
  max: number;
  /** 'unflagged': the flagged pairs were left out (at least MIN_UNFLAGGED_PAIRS others remained); 'all': none was. */
  medianOver: 'unflagged' | 'all';
  /** The ratio of the two scenarios' medians (what the bench reported before pairs), to see what pairing changed. */
  ofMedians?: number;
}

const measured = (v: number | undefined): v is number => v !== undefined && Number.isFinite(v);

/** The rounds in which `figures` (one reference's, per round) moved more than `tolerance` from their median; none with fewer than two figures. */
export function driftsOf(reference: string, figures: (number | undefined)[], tolerance = DRIFT_TOLERANCE): Drift[] {
  const values = figures.filter(measured);
  if (values.length < 2) return [];
  const mid = median(values);
  if (!(mid > 0)) return [];
  return figures.flatMap((value, round) => {
    if (!measured(value)) return [];
    const deviation = value / mid - 1;
    return Math.abs(deviation) > tolerance ? [{ round, reference, value, median: mid, deviation }] : [];
  });
}

/**
 * ours[r] ÷ theirs[r] for every round r in which both have a figure;
 * `flagged` holds the rounds whose pairs are flagged. Figures are speeds
 * (higher is better): a time is given as its inverse.
 */
export function pairRatios(ours: (number | undefined)[], theirs: (number | undefined)[], flagged: ReadonlySet<number>): PairRatio[] {
  return ours.flatMap((our, round) => {
    const their = theirs[round];
    if (!measured(our) || !measured(their) || their <= 0) return [];
    return [{ round, value: our / their, flagged: flagged.has(round) }];
  });
}

/** The ratio to report, the median of the pairs (of the unflagged ones while enough remain), and its pairs' stats; undefined without a pair. */
export function summarizePairs(ratios: PairRatio[]): { value: number; pairs: PairStats } | undefined {
  if (ratios.length === 0) return undefined;
  const unflagged = ratios.filter((p) => !p.flagged);
  const over = unflagged.length >= MIN_UNFLAGGED_PAIRS ? unflagged : ratios;
  const values = ratios.map((p) => p.value);
  return {
    value: median(over.map((p) => p.value)),
    pairs: {
      ratios,
      min: Math.min(...values),
      max: Math.max(...values),
      medianOver: over.length < ratios.length ? 'unflagged' : 'all',
    },
  };
}
