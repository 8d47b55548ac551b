/**
 * What the soak runs, round by round: each round's transport and
 * capabilities (a "kind") and whether it is cancelled, all drawn from one
 * seeded generator, so a seed names the whole soak. Kinds come in a seeded
 * rotation: every kind once per cycle of |kinds| rounds, in a drawn order,
 * so any stretch of rounds mixes them all (and a warm-up of 8 rounds or
 * more has run each). In every block of `cancelEvery` rounds, one round
 * (at a drawn place) is cancelled during `active`, a drawn delay after it
 * became so.
 */
import { SeededRandom } from '../fuzz/seeded-random.js';

/**
 * The round kinds. postcopy-ram turns the capability on on both sides (the
 * return path, the postcopy advice in the stream) but never switches:
 * after `migrate-start-postcopy` the source refuses `cont` (its copy of
 * the guest is stale; actors/monitor/run-control.ts), so a switched round
 * would end the one source the soak keeps.
 */
export const KINDS = ['tcp', 'unix', 'multifd-2', 'multifd-4', 'multifd-4-zstd', 'xbzrle', 'tls', 'postcopy-ram'] as const;
export type Kind = (typeof KINDS)[number];

/** One round in ten is cancelled, by default. */
export const CANCEL_EVERY = 10;
/** A cancel strikes this long (drawn from 0 to it) after the round's migration became `active`. */
export const CANCEL_DELAY_MAX_MS = 400;

export interface RoundPlan {
  /** The round's number, from 0: `--seed S --rounds N` replays rounds 0 to N-1. */
  index: number;
  seed: number;
  kind: Kind;
  /** Set on a cancelled round: ms after the migration became `active`. */
  cancelAfterMs?: number;
}

/** The first `count` rounds of the soak of `seed`. */
export function planRounds(seed: number, count: number, kinds: readonly Kind[] = KINDS, cancelEvery = CANCEL_EVERY): RoundPlan[] {
  if (kinds.length === 0) throw new Error('the soak needs at least one kind of round');
  const random = new SeededRandom(seed);
  const rounds: RoundPlan[] = [];
  let cycle: Kind[] = [];
  let cancelAt = -1;
  for (let index = 0; index < count; index++) {
    // Drawn without replacement: each kind once per cycle.
    if (cycle.length === 0) cycle = [...kinds];
    const kind = cycle.splice(random.int(0, cycle.length - 1), 1)[0]!;
    if (cancelEvery > 0 && index % cancelEvery === 0) cancelAt = index + random.int(0, cancelEvery - 1);
    const cancel = index === cancelAt ? { cancelAfterMs: random.int(0, CANCEL_DELAY_MAX_MS) } : {};
    rounds.push({ index, seed, kind, ...cancel });
  }
  return rounds;
}

/** A comma-separated list of kinds (all of them when absent). */
export function parseKinds(text: string | undefined): Kind[] {
  if (text === undefined) return [...KINDS];
  const items = text.split(',').map((s) => s.trim()).filter((s) => s !== '');
  for (const item of items) if (!KINDS.includes(item as Kind)) throw new Error(`Unknown kind '${item}'; kinds: ${KINDS.join(', ')}`);
  if (items.length === 0) throw new Error('--kinds names no kind');
  return items as Kind[];
}
