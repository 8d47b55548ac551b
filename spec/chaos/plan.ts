/**
 * What the fault campaign runs: for each run a mode, a fault (or two) and
 * the moment to inject each, all drawn from one seeded generator so a seed
 * names the whole campaign and `--first K` replays its run K exactly.
 *
 * Each fault strikes where it can happen: the proxy's faults on a pair
 * joined through loopback (`loopback`), the link faults on a pair whose
 * sides run in two network namespaces joined by a veth pair (`netns`), a
 * full filesystem under a `file:` target (`file`); a kill or a cancel
 * anywhere. A run's layout is the first that all its faults can strike in.
 */
import { SeededRandom } from '../fuzz/seeded-random.js';

export const MODES = ['precopy', 'multifd', 'postcopy'] as const;
/** Every mode the campaign knows: MODES (whose plans are as they were), and precopy over TLS. */
export const ALL_MODES = [...MODES, 'tls'] as const;
export type Mode = (typeof ALL_MODES)[number];

/**
 * The faults of the loopback pair (the proxy's, signals, the orchestrator's
 * cancel). Their order and the plans drawn from them are as they were before
 * the faults below came: a seed's campaign over these is unchanged.
 */
export const FAULTS = ['none', 'cut', 'stall', 'corrupt', 'slow', 'kill-source', 'kill-destination', 'cancel'] as const;
/**
 * Every fault the campaign knows: FAULTS, a full filesystem under a file:
 * target, the real link's faults, and a multifd channel's thread killed on
 * either side (the instances' --fault-injection command).
 */
export const ALL_FAULTS = [...FAULTS, 'full-tmpfs', 'link-down', 'htb-rate', 'kill-multifd-thread'] as const;
export type Fault = (typeof ALL_FAULTS)[number];

export const LAYOUTS = ['loopback', 'netns', 'file'] as const;
/** The channels of a multifd run (migration-pair.ts). */
export const MULTIFD_CHANNELS = 2;
export type Layout = (typeof LAYOUTS)[number];

/** Where each fault can strike, the one it prefers first. */
const LAYOUTS_OF: Record<Fault, readonly Layout[]> = {
  none: LAYOUTS,
  cut: ['loopback'],
  stall: ['loopback'],
  corrupt: ['loopback'],
  slow: ['loopback'],
  'kill-source': LAYOUTS,
  // A file target has no destination process while the stream is written.
  'kill-destination': ['loopback', 'netns'],
  cancel: LAYOUTS,
  'full-tmpfs': ['file'],
  'link-down': ['netns'],
  'htb-rate': ['netns'],
  'kill-multifd-thread': ['loopback', 'netns'],
};

/** Faults that need network namespaces (root, ip, tc). */
export const NETNS_FAULTS: readonly Fault[] = ALL_FAULTS.filter((f) => LAYOUTS_OF[f].length === 1 && LAYOUTS_OF[f][0] === 'netns');

/**
 * file: is one-way: livemig refuses multifd and postcopy on it, as QEMU
 * does (mapped-ram is out of scope), and TLS. Only multifd runs have
 * multifd channel threads to kill.
 */
export function fits(fault: Fault, mode: Mode): boolean {
  if (fault === 'full-tmpfs') return mode === 'precopy';
  if (fault === 'kill-multifd-thread') return mode === 'multifd';
  return true;
}

/**
 * Two faults that cannot meet in one run: killing both processes leaves no
 * one to own the guest (no promise covers that), and two of the proxy's
 * link states would only overwrite each other (stall, corrupt and slow are
 * modes of the one proxy).
 */
function compatible(a: Fault, b: Fault): boolean {
  if (a === b || a === 'none' || b === 'none') return false;
  const pair = new Set([a, b]);
  if (pair.has('kill-source') && pair.has('kill-destination')) return false;
  const proxyStates: Fault[] = ['stall', 'corrupt', 'slow'];
  if (proxyStates.includes(a) && proxyStates.includes(b)) return false;
  return layoutOf([a, b]) !== undefined;
}

/** The layout a run of these faults takes: the first all of them can strike in. */
export function layoutOf(faults: readonly Fault[]): Layout | undefined {
  return LAYOUTS.find((layout) => faults.every((f) => LAYOUTS_OF[f].includes(layout)));
}

/**
 * How long a fault-free migration of the campaign's guest takes in each mode
 * (measured on this 2-core machine): moments are drawn from 0 to a bit past
 * it, so some faults land after completion, where they must change nothing.
 */
export const EXPECTED_MS: Record<Mode, number> = { precopy: 1_150, multifd: 1_150, postcopy: 1_700, tls: 1_400 };
/** How far past the expected completion a moment may fall. */
const PAST_COMPLETION = 1.25;

/** One fault of a run, and what the seed chose for it. */
export interface StrikePlan {
  fault: Fault;
  /** Milliseconds after `migrate` at which the fault strikes (full-tmpfs: about when the filesystem is full, see tmpfsBytes). */
  momentMs: number;
  /** link-down: the end of the veth taken down; kill-multifd-thread: the process whose channel thread dies. */
  side?: 'source' | 'destination';
  /** kill-multifd-thread: the channel whose thread dies. */
  channel?: number;
  /** link-down, htb-rate: how long the link stays down, or slow. */
  forMs?: number;
}

export interface RunPlan {
  /** The run's place in the campaign: `--seed S --first INDEX --runs 1` replays it. */
  index: number;
  seed: number;
  mode: Mode;
  /** The first fault (the only one unless --faults-per-run 2), and its moment. */
  fault: Fault;
  momentMs: number;
  layout: Layout;
  /** Every fault of the run with its choices, the first one first. */
  strikes: StrikePlan[];
}

/**
 * The first `count` runs of the campaign of `seed`. Every fault meets every
 * mode once per round of |faults|×|modes| runs (in a seeded order), so a
 * short campaign still covers each pair; only the moments are free. With
 * `faultsPerRun` 2, a round is every pair of two faults that can meet (none
 * left out) against every mode, each fault at a moment of its own.
 * Choices peculiar to a fault (which end of a link, for how long) come from
 * a generator of the run's own, so they never shift the others' draws.
 */
export function planRuns(
  seed: number,
  count: number,
  faults: readonly Fault[] = FAULTS,
  modes: readonly Mode[] = MODES,
  faultsPerRun: 1 | 2 = 1,
): RunPlan[] {
  const random = new SeededRandom(seed);
  const sets: Fault[][] =
    faultsPerRun === 1 ? faults.map((f) => [f]) : faults.flatMap((a, i) => faults.slice(i + 1).filter((b) => compatible(a, b)).map((b) => [a, b]));
  const combinations = sets.flatMap((set) => modes.filter((mode) => set.every((f) => fits(f, mode))).map((mode) => ({ set, mode })));
  if (combinations.length === 0) {
    throw new Error(`no run can be made of faults ${faults.join(',')} in modes ${modes.join(',')}${faultsPerRun === 2 ? ' with two faults a run' : ''}`);
  }
  const runs: RunPlan[] = [];
  let round: typeof combinations = [];
  for (let index = 0; index < count; index++) {
    if (round.length === 0) round = shuffled(combinations, random);
    const { set, mode } = round.pop()!;
    const own = new SeededRandom(runSeed(seed, index));
    const strikes = set.map((fault) => ({ fault, momentMs: random.int(0, Math.round(EXPECTED_MS[mode] * PAST_COMPLETION)), ...choices(fault, own) }));
    runs.push({ index, seed, mode, fault: strikes[0]!.fault, momentMs: strikes[0]!.momentMs, layout: layoutOf(set)!, strikes });
  }
  return runs;
}

/**
 * A link down for this long, then up: from a blip TCP rides out to longer
 * than the harness's patience (LINK_STALL_BOUND_MS, 4 s, in faults.ts), so
 * some runs are yanked while the link is down, some after it is back but
 * before TCP's backed-off retransmission notices, and some ride it out.
 */
export const LINK_DOWN_MS = { min: 300, max: 6_000 };
/** An htb-shaped link for this long. */
export const HTB_MS = { min: 1_000, max: 3_000 };

function choices(fault: Fault, random: SeededRandom): Partial<StrikePlan> {
  switch (fault) {
    case 'link-down':
      return { side: random.pick(['source', 'destination'] as const), forMs: random.int(LINK_DOWN_MS.min, LINK_DOWN_MS.max) };
    case 'htb-rate':
      return { forMs: random.int(HTB_MS.min, HTB_MS.max) };
    case 'kill-multifd-thread':
      return { side: random.pick(['source', 'destination'] as const), channel: random.int(0, MULTIFD_CHANNELS - 1) };
    default:
      return {};
  }
}

/** The seed of run `index`'s own generator. */
function runSeed(seed: number, index: number): number {
  return (Math.imul(seed ^ 0x9e3779b9, 0x85ebca6b) + Math.imul(index + 1, 0xc2b2ae35)) >>> 0;
}

/**
 * The size of the small tmpfs under a full-tmpfs run's file: about what the
 * stream has written by the fault's moment, from half a MiB on. Measured on
 * the campaign's guest: the source writes 24 MB/s (its max-bandwidth), at
 * twice that in its first 200 ms while its write buffer fills. At most
 * 40 MB: less than the guest's 64 MiB of RAM and than the 55 MB a completed
 * save of it writes (a first pass and the final one), so it always fills
 * up mid-stream.
 */
export function tmpfsBytes(momentMs: number): number {
  const bytes = 512 * 1024 + momentMs * 24_000 + Math.min(momentMs, 200) * 24_000;
  return Math.ceil(bytes / 4096) * 4096;
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
