/**
 * What the fault campaign runs: for each run a mode, a fault and the moment
 * to inject it, all drawn from one seeded generator so a seed names the
 * whole campaign and `--first K` replays its run K exactly.
 */
import { SeededRandom } from '../fuzz/seeded-random.js';

export const MODES = ['precopy', 'multifd', 'postcopy'] as const;
export type Mode = (typeof MODES)[number];

export const FAULTS = ['none', 'cut', 'stall', 'corrupt', 'slow', 'kill-source', 'kill-destination', 'cancel'] as const;
export type Fault = (typeof FAULTS)[number];

/**
 * How long a fault-free migration of the campaign's guest takes in each mode
 * (measured on this 2-core machine): moments are drawn from 0 to a bit past
 * it, so some faults land after completion, where they must change nothing.
 */
export const EXPECTED_MS: Record<Mode, number> = { precopy: 1_150, multifd: 1_150, postcopy: 1_700 };
/** How far past the expected completion a moment may fall. */
const PAST_COMPLETION = 1.25;

export interface RunPlan {
  /** The run's place in the campaign: `--seed S --first INDEX --runs 1` replays it. */
  index: number;
  seed: number;
  mode: Mode;
  fault: Fault;
  /** Milliseconds after `migrate` at which the fault strikes. */
  momentMs: number;
}

/**
 * The first `count` runs of the campaign of `seed`. Every fault meets every
 * mode once per round of |faults|×|modes| runs (in a seeded order), so a
 * short campaign still covers each pair; only the moments are free.
 */
export function planRuns(seed: number, count: number, faults: readonly Fault[] = FAULTS, modes: readonly Mode[] = MODES): RunPlan[] {
  const random = new SeededRandom(seed);
  const pairs = faults.flatMap((fault) => modes.map((mode) => ({ fault, mode })));
  const runs: RunPlan[] = [];
  let round: typeof pairs = [];
  for (let index = 0; index < count; index++) {
    if (round.length === 0) round = shuffled(pairs, random);
    const { fault, mode } = round.pop()!;
    const momentMs = random.int(0, Math.round(EXPECTED_MS[mode] * PAST_COMPLETION));
    runs.push({ index, seed, mode, fault, momentMs });
  }
  return runs;
}

function shuffled<T>(items: readonly T[], random: SeededRandom): T[] {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = random.int(0, i);
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

export function parseList<T extends string>(text: string | undefined, known: readonly T[], what: string): T[] {
  if (text === undefined) return [...known];
  const items = text.split(',').map((s) => s.trim()).filter((s) => s !== '');
  for (const item of items) if (!known.includes(item as T)) throw new Error(`Unknown ${what} '${item}'; ${what}s: ${known.join(', ')}`);
  return items as T[];
}
