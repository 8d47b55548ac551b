/**
 * What the soak measures of a process, and the bound it holds the long-lived
 * source to. A sample is its resident set (VmRSS), its open descriptors
 * (/proc/PID/fd) and its threads (/proc/PID/task, as Threads: in its
 * status), read with the helpers the bench and the multifd tests use.
 *
 * The bound: the warm-up (every kind of round has run at least once, the
 * allocators and Node's thread pool have grown to their working size) sets
 * the source's working envelope of descriptors and threads, the highest of
 * each over its rounds; after it, neither may rise above that at all. An
 * envelope, not the last warm-up sample: the source holds two steady
 * states, with and without its warm multifd sender threads
 * (actors/multifd/send-pool.ts: kept between migrations once a multifd
 * round ran, ended by a cancelled one; 2 threads and 10 descriptors on a
 * 2-core host), and the warm-up sees both.
 *
 * RSS is judged by the median of each window of RSS_WINDOW rounds after the
 * warm-up: a garbage-collected heap swings by tens of MiB from one round to
 * the next (V8 grows its old space lazily and gives it back in bulk), so a
 * single sample says little; a leak lifts every window's median. No window's
 * median may rise more than RSS_BOUND_MIB above the first one's.
 */
import { median } from '../../tools/bench/median.js';
import { rssBytes } from '../../tools/bench/process-usage.js';
import { holdings, steadyHoldings } from '../support/multifd-pair.js';

export const MiB = 1 << 20;
/** Rounds before the bound applies (more than the rotation's 8 kinds, so each has run once). */
export const WARMUP_ROUNDS = 10;
/** How far a window's median RSS may rise above the first window's. */
export const RSS_BOUND_MIB = 32;
/** Rounds per RSS window (fewer when the soak is shorter). */
export const RSS_WINDOW = 100;
/** The longest a sample waits for the process's threads and descriptors to hold still. */
const STEADY_WITHIN_MS = 2_000;

export interface Sample {
  rss: number;
  fds: number;
  threads: number;
}

/** A reading now (the destination's, at completion). */
export function sampleNow(pid: number): Sample {
  const { fds, threads } = holdings(pid);
  return { rss: rssBytes(pid), fds, threads };
}

/** A reading once two, 200 ms apart, agree on threads and descriptors (or the bound ran out): the source's, after each round. */
export async function sampleSteady(pid: number): Promise<Sample> {
  const { fds, threads } = await steadyHoldings(pid, STEADY_WITHIN_MS);
  return { rss: rssBytes(pid), fds, threads };
}

export interface GrowthBound {
  warmupRounds: number;
  rssBoundMiB: number;
}

export interface Growth {
  /** False when the soak ran no round past the warm-up: nothing was judged. */
  judged: boolean;
  /** Descriptors and threads: the highest over the warm-up; RSS: the first window's median. */
  reference?: Sample;
  /** The median RSS of each window after the warm-up, in order. */
  rssWindowMedians?: number[];
  /** The highest window median and the last one, above the first (negative: below it). */
  rssPeakGrowth?: number;
  rssEndGrowth?: number;
  /** The highest descriptor and thread counts after the warm-up, above the warm-up's. */
  fdsPeakGrowth?: number;
  threadsPeakGrowth?: number;
  /** One line per bound broken. */
  breaches: string[];
}

/** Judges the source's samples, one per round in order, against the bound. */
export function judgeGrowth(samples: readonly Sample[], bound: GrowthBound): Growth {
  if (samples.length <= bound.warmupRounds || bound.warmupRounds < 1) return { judged: false, breaches: [] };
  const warmup = samples.slice(0, bound.warmupRounds);
  const after = samples.slice(bound.warmupRounds);
  const window = Math.min(RSS_WINDOW, after.length);
  const medians: number[] = [];
  for (let at = 0; at < after.length; at += window) medians.push(median(after.slice(at, at + window).map((s) => s.rss)));
  const highest = (pick: (s: Sample) => number) => Math.max(...warmup.map(pick));
  const reference: Sample = { rss: medians[0]!, fds: highest((s) => s.fds), threads: highest((s) => s.threads) };
  const peak = (pick: (s: Sample) => number) => Math.max(...after.map(pick)) - pick(reference);
  const growth = {
    judged: true,
    reference,
    rssWindowMedians: medians,
    rssPeakGrowth: Math.max(...medians) - reference.rss,
    rssEndGrowth: medians.at(-1)! - reference.rss,
    fdsPeakGrowth: peak((s) => s.fds),
    threadsPeakGrowth: peak((s) => s.threads),
  };
  const breaches: string[] = [];
  const firstOver = (over: (s: Sample) => boolean) => bound.warmupRounds + after.findIndex(over);
  if (growth.rssPeakGrowth > bound.rssBoundMiB * MiB) {
    const at = medians.findIndex((m) => m - reference.rss > bound.rssBoundMiB * MiB);
    breaches.push(
      `the median RSS of rounds ${bound.warmupRounds + at * window}-${Math.min(bound.warmupRounds + (at + 1) * window, samples.length) - 1} rose ${mib(growth.rssPeakGrowth)} MiB ` +
        `above the first window's, ${mib(reference.rss)} MiB (bound ${bound.rssBoundMiB} MiB)`,
    );
  }
  if (growth.fdsPeakGrowth > 0) {
    const at = firstOver((s) => s.fds > reference.fds);
    breaches.push(`descriptors rose to ${reference.fds + growth.fdsPeakGrowth}, above the warm-up's highest, ${reference.fds}, first after round ${at}`);
  }
  if (growth.threadsPeakGrowth > 0) {
    const at = firstOver((s) => s.threads > reference.threads);
    breaches.push(`threads rose to ${reference.threads + growth.threadsPeakGrowth}, above the warm-up's highest, ${reference.threads}, first after round ${at}`);
  }
  return { ...growth, breaches };
}

export function mib(bytes: number): string {
  return (bytes / MiB).toFixed(1);
}
