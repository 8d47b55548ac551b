/**
 * What the campaign prints and keeps: a line per run, a summary by fault
 * and outcome with the figures the issue asks for (guests lost, crashes,
 * leaks), the replay command of every failed run, and a JSON file of it all.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ProblemKind } from './oracle.js';
import { ALL_FAULTS, ALL_MODES, type Fault, type Mode } from './plan.js';
import type { RunResult } from './run-one.js';

/** Which faults and modes the campaign drew from: its plan, and so a replay, depends on them. */
export interface Scope {
  faults: readonly Fault[];
  modes: readonly Mode[];
  /** 2: two faults a run (--faults-per-run 2); 1 when absent. */
  faultsPerRun?: 1 | 2;
}

/** The replay of one run: the same seed and scope, from its index, one run. */
export function replayCommand(result: RunResult, scope: Scope): string {
  const narrowed = [
    ...(scope.faults.join(',') !== ALL_FAULTS.join(',') ? [`--faults ${scope.faults.join(',')}`] : []),
    ...(scope.modes.join(',') !== ALL_MODES.join(',') ? [`--modes ${scope.modes.join(',')}`] : []),
    ...((scope.faultsPerRun ?? 1) !== 1 ? [`--faults-per-run ${scope.faultsPerRun}`] : []),
  ];
  return ['npm run chaos --', `--seed ${result.seed}`, ...narrowed, `--first ${result.index} --runs 1`].join(' ');
}

export function runLine(result: RunResult): string {
  const verdict = result.problems.length === 0 ? 'ok' : `FAIL (${result.problems.map((p) => p.kind).join(', ')})`;
  return [
    `#${String(result.index).padStart(3)}`,
    result.mode.padEnd(8),
    ...strikesText(result),
    result.outcome.padEnd(17),
    `src ${result.source}, dst ${result.destination}`.padEnd(48),
    `${(result.ms / 1000).toFixed(1).padStart(5)} s`,
    verdict,
  ].join('  ');
}

/** The fault column(s) of a run's line: each fault with its moment and the phase it landed in (and its choices). */
function strikesText(result: RunResult): string[] {
  const strikes = result.strikes ?? [{ fault: result.fault, momentMs: result.momentMs }];
  return strikes.map((s, i) => {
    const choices = [s.side, s.forMs === undefined ? undefined : `${s.forMs} ms`].filter((c) => c !== undefined);
    const fault = choices.length > 0 ? `${s.fault} (${choices.join(', ')})` : s.fault;
    const phase = result.phases?.[i] ?? (i === 0 ? result.phase : '?');
    return [fault.padEnd(26), `at ${String(s.momentMs).padStart(4)} ms (${phase})`.padEnd(32)].join('  ');
  });
}

/** Every fault a run injected. */
function faultsOf(result: RunResult): Fault[] {
  return (result.strikes ?? [{ fault: result.fault }]).map((s) => s.fault);
}

export interface Summary {
  runs: number;
  /** Faults injected, by kind (a run of two counts both). */
  faults: Record<string, number>;
  /** Runs by layout (loopback, netns, file). */
  layouts: Record<string, number>;
  outcomes: Record<string, number>;
  /** Runs where no side kept an intact running guest, or both ran it. */
  guestsLost: number;
  crashes: number;
  leaks: number;
  /** Runs with any other failed check (state, error-desc, the harness). */
  otherFailures: number;
  failedRuns: number;
  seconds: number;
}

export function summarize(results: readonly RunResult[], seconds: number): Summary {
  const count = (key: (r: RunResult) => string) =>
    results.reduce<Record<string, number>>((acc, r) => ((acc[key(r)] = (acc[key(r)] ?? 0) + 1), acc), {});
  const runsWith = (kinds: ProblemKind[]) => results.filter((r) => r.problems.some((p) => kinds.includes(p.kind))).length;
  return {
    runs: results.length,
    faults: results.reduce<Record<string, number>>((acc, r) => {
      for (const f of faultsOf(r)) acc[f] = (acc[f] ?? 0) + 1;
      return acc;
    }, {}),
    layouts: count((r) => r.layout ?? 'loopback'),
    outcomes: count((r) => r.outcome),
    guestsLost: runsWith(['guest-lost', 'both-running']),
    crashes: runsWith(['crash']),
    leaks: runsWith(['leak']),
    otherFailures: runsWith(['state', 'error-desc', 'harness']),
    failedRuns: results.filter((r) => r.problems.length > 0).length,
    seconds: Math.round(seconds),
  };
}

export function summaryText(summary: Summary, results: readonly RunResult[], scope: Scope): string {
  const figures = (counts: Record<string, number>) => Object.entries(counts).map(([k, n]) => `${k} ${n}`).join(', ');
  const lines = [
    `runs ${summary.runs} in ${summary.seconds} s`,
    `faults injected: ${figures(summary.faults)}`,
    `layouts: ${figures(summary.layouts)}`,
    `outcomes: ${figures(summary.outcomes)}`,
    `guests lost: ${summary.guestsLost}   crashes: ${summary.crashes}   leaks: ${summary.leaks}   other failed checks: ${summary.otherFailures}`,
  ];
  for (const failed of results.filter((r) => r.problems.length > 0)) {
    const struck = (failed.strikes ?? [failed]).map((s) => `${s.fault} at ${s.momentMs} ms`).join(' and ');
    lines.push(`FAILED #${failed.index} (seed ${failed.seed}, ${failed.mode}, ${struck}): replay with ${replayCommand(failed, scope)}`);
    for (const problem of failed.problems) lines.push(`  ${problem.kind}: ${problem.detail.split('\n')[0]}`);
  }
  return lines.join('\n');
}

/** Writes the options, every run (evidence included) and the summary to DIR/chaos-<time>.json; returns its path. */
export function writeResults(dir: string, options: Record<string, unknown>, results: readonly RunResult[], summary: Summary): string {
  mkdirSync(dir, { recursive: true });
  const path = join(dir, `chaos-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
  writeFileSync(path, `${JSON.stringify({ options, summary, results }, null, 2)}\n`);
  return path;
}
