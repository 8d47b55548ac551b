/**
 * What the soak prints and keeps: a line per round, a summary (rounds by
 * kind and outcome, time per round, the source's RSS, descriptors and
 * threads at the start, at the end of the warm-up and at the end, against
 * the bound), and in DIR a JSON file of every round's samples and an HTML
 * report whose plots (inline SVG, the bench's line chart) show the curves.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { median } from '../../tools/bench/median.js';
import { escapeXml, lineChart, type PlotSeries } from '../../tools/bench/svg-plot.js';
import { mib, MiB, RSS_WINDOW, type Sample } from './samples.js';
import { DEFAULTS, type RoundResult, type SoakResult } from './soak.js';

const SOURCE_COLOR = '#1f77b4';
const DESTINATION_COLOR = '#ff7f0e';
const BOUND_COLOR = '#d62728';
const WARMUP_COLOR = '#999999';

export function roundLine(r: RoundResult): string {
  const kind = `${r.kind}${r.cancelAfterMs === undefined ? '' : ` cancel+${r.cancelAfterMs}ms`}`;
  const sample = r.source ? `src ${mib(r.source.rss)} MiB ${r.source.fds} fds ${r.source.threads} thr` : '';
  const dst = r.destination ? `dst ${mib(r.destination.rss)} MiB ${r.destination.fds} fds ${r.destination.threads} thr` : '';
  return [
    `#${String(r.index).padStart(4)}`,
    kind.padEnd(28),
    (r.outcome ?? 'FAILED').padEnd(9),
    `${String(r.migrationMs ?? '-').padStart(5)} ms`,
    `${(r.ms / 1000).toFixed(1).padStart(5)} s`,
    sample.padEnd(34),
    dst.padEnd(34),
    r.problem === undefined ? 'exact' : `FAILED: ${r.problem.split('\n')[0]}`,
  ].join('  ');
}

/** The command that replays a soak up to its failed round (rounds are judged against the source's history, so from round 0). */
export function replayCommand(result: SoakResult, round: RoundResult): string {
  const o = result.options;
  const extra = [
    ...(o.sizeMiB !== DEFAULTS.sizeMiB ? [`--size ${o.sizeMiB}`] : []),
    ...(o.kinds.join() !== DEFAULTS.kinds.join() ? [`--kinds ${o.kinds.join(',')}`] : []),
    ...(o.cancelEvery !== DEFAULTS.cancelEvery ? [`--cancel-every ${o.cancelEvery}`] : []),
  ];
  return ['npm run soak --', `--seed ${o.seed}`, `--rounds ${round.index + 1}`, ...extra].join(' ');
}

function count<T>(items: readonly T[], key: (item: T) => string): Record<string, number> {
  return items.reduce<Record<string, number>>((acc, item) => ((acc[key(item)] = (acc[key(item)] ?? 0) + 1), acc), {});
}

const figures = (counts: Record<string, number>) => Object.entries(counts).map(([k, n]) => `${k} ${n}`).join(', ');
const sampleText = (s: Sample | undefined) => (s ? `${mib(s.rss)} MiB RSS, ${s.fds} fds, ${s.threads} threads` : '-');

/** The summary's lines: what ran, how long, what the source held and whether it kept to the bound. */
export function summaryLines(result: SoakResult): string[] {
  const { rounds, growth, options } = result;
  const exact = rounds.filter((r) => r.problem === undefined);
  const lines = [
    `rounds ${rounds.length} of ${options.rounds} in ${result.seconds} s (seed ${options.seed}, ${options.sizeMiB} MiB guest, ab over ${result.ab.start / MiB}..${result.ab.end / MiB} MiB)`,
    `exact ${exact.length}; by kind: ${figures(count(rounds, (r) => r.kind))}; outcomes: ${figures(count(rounds, (r) => r.outcome ?? 'failed'))}`,
    `time per round: median ${medianOf(rounds.map((r) => r.ms))} ms, max ${Math.max(0, ...rounds.map((r) => r.ms))} ms; ` +
      `migration (migrate to completed) median ${medianOf(exact.flatMap((r) => (r.outcome === 'completed' ? [r.migrationMs!] : [])))} ms`,
    `source (pid ${result.sourcePid}) before round 0: ${sampleText(result.initial)}`,
    `source's reference: fds and threads the highest over the warm-up (${options.warmupRounds} rounds), RSS the first window's median: ${sampleText(growth.reference)}`,
    `source after the last round: ${sampleText(rounds.at(-1)?.source)}`,
  ];
  if (growth.judged) {
    lines.push(
      `median RSS per window of ${Math.min(RSS_WINDOW, rounds.length - options.warmupRounds)} rounds: ${growth.rssWindowMedians!.map((m) => mib(m)).join(', ')} MiB; ` +
        `highest ${signedMib(growth.rssPeakGrowth!)} MiB above the first (bound +${options.rssBoundMiB} MiB), the last ${signedMib(growth.rssEndGrowth!)} MiB; ` +
        `fds peak ${signed(growth.fdsPeakGrowth!)}, threads peak ${signed(growth.threadsPeakGrowth!)} above the warm-up's (bound +0)`,
    );
  } else {
    lines.push(`growth not judged: no round past the ${options.warmupRounds}-round warm-up`);
  }
  for (const breach of growth.breaches) lines.push(`GROWTH: ${breach}`);
  if (result.failedRound) {
    lines.push(`FAILED round ${result.failedRound.index} (seed ${options.seed}, ${result.failedRound.kind}): ${result.failedRound.problem}`);
    lines.push(`replay: ${replayCommand(result, result.failedRound)}`);
  }
  if (result.interrupted) lines.push('interrupted before its last round');
  lines.push(result.passed ? 'PASSED' : 'FAILED');
  return lines;
}

const medianOf = (values: number[]) => (values.length === 0 ? '-' : String(Math.round(median(values))));
const signed = (n: number) => (n > 0 ? `+${n}` : String(n));
const signedMib = (bytes: number) => `${bytes >= 0 ? '+' : ''}${mib(bytes)}`;

/** Writes DIR/soak-<time>.json (options, every round with its samples, the verdict) and DIR/soak-<time>.html; returns both paths. */
export function writeResults(dir: string, result: SoakResult): { json: string; html: string } {
  mkdirSync(dir, { recursive: true });
  const stem = join(dir, `soak-${new Date().toISOString().replace(/[:.]/g, '-')}`);
  writeFileSync(`${stem}.json`, `${JSON.stringify(result, null, 2)}\n`);
  writeFileSync(`${stem}.html`, htmlReport(result));
  return { json: `${stem}.json`, html: `${stem}.html` };
}

/** The HTML report: the summary, the three curves, and the rounds in a table. */
export function htmlReport(result: SoakResult): string {
  const { rounds, growth, options } = result;
  // The sample after round i is plotted at i + 1: x = rounds done, with the sample before round 0 at 0.
  const sourcePoints = (pick: (s: Sample) => number): [number, number][] => [
    [0, pick(result.initial)],
    ...rounds.flatMap((r): [number, number][] => (r.source ? [[r.index + 1, pick(r.source)]] : [])),
  ];
  const destinationPoints = (pick: (s: Sample) => number): [number, number][] =>
    rounds.flatMap((r): [number, number][] => (r.destination ? [[r.index + 1, pick(r.destination)]] : []));
  const last = rounds.length;
  const reference = growth.reference;
  const warmupLine = (top: number): PlotSeries => ({ name: 'end of warm-up', color: WARMUP_COLOR, points: [[options.warmupRounds, 0], [options.warmupRounds, top]] });
  const boundLine = (name: string, value: number): PlotSeries => ({ name, color: BOUND_COLOR, points: [[options.warmupRounds, value], [last, value]] });
  const chart = (title: string, yLabel: string, pick: (s: Sample) => number, bound: number | undefined, boundName: string) => {
    const src = sourcePoints(pick);
    const dst = destinationPoints(pick);
    const top = Math.max(0, ...src.map((p) => p[1]), ...dst.map((p) => p[1]), bound ?? 0);
    const series: PlotSeries[] = [
      { name: 'source, after each round', color: SOURCE_COLOR, points: src },
      { name: 'destination, at completion', color: DESTINATION_COLOR, points: dst, dots: true },
    ];
    if (bound !== undefined && growth.judged) series.push(boundLine(boundName, bound));
    if (last > options.warmupRounds) series.push(warmupLine(top));
    return lineChart({ title, xLabel: 'rounds done', yLabel, series, width: 900, height: 300 });
  };
  const charts = [
    chart('resident set (VmRSS)', 'MiB', (s) => s.rss / MiB, reference && reference.rss / MiB + options.rssBoundMiB, `bound: +${options.rssBoundMiB} MiB`),
    chart('open file descriptors (/proc/PID/fd)', 'descriptors', (s) => s.fds, reference?.fds, 'bound: no growth'),
    chart('threads (/proc/PID/task)', 'threads', (s) => s.threads, reference?.threads, 'bound: no growth'),
  ];
  const rows = rounds.map((r) => {
    const cells = [
      r.index, r.kind, r.cancelAfterMs === undefined ? '' : `${r.cancelAfterMs} ms`, r.outcome ?? 'failed', r.migrationMs ?? '', r.downtimeMs ?? '', r.ms,
      r.source ? mib(r.source.rss) : '', r.source?.fds ?? '', r.source?.threads ?? '',
      r.destination ? mib(r.destination.rss) : '', r.destination?.fds ?? '', r.destination?.threads ?? '',
      r.problem ?? 'exact',
    ];
    return `<tr${r.problem === undefined ? '' : ' class="bad"'}>${cells.map((c) => `<td>${escapeXml(String(c))}</td>`).join('')}</tr>`;
  });
  const header = ['round', 'kind', 'cancel after', 'outcome', 'migration ms', 'downtime ms', 'round ms', 'src RSS MiB', 'src fds', 'src threads', 'dst RSS MiB', 'dst fds', 'dst threads', 'verdict'];
  return `<!doctype html>
<html><head><meta charset="utf-8"><title>livemig soak, seed ${options.seed}</title>
<style>
body { font-family: sans-serif; margin: 1.5em; max-width: 1000px; }
table { border-collapse: collapse; font-size: 12px; }
td, th { border: 1px solid #ccc; padding: 2px 6px; text-align: right; }
tr.bad td { background: #fdd; }
pre { white-space: pre-wrap; }
.verdict { font-weight: bold; color: ${result.passed ? '#2a7d2a' : '#b22'}; }
</style></head><body>
<h1>livemig soak</h1>
<p>One source instance runs the <code>ab</code> guest for the whole soak; each round migrates it to a fresh destination
(the kinds of round in a seeded rotation, one round in ${options.cancelEvery} cancelled with <code>migrate_cancel</code> during <code>active</code>),
judges the round exact (digests equal, the <code>ab</code> check on the destination, or after a cancel on the source) and,
after <code>cont</code> and a settle, samples the source. The bound: after a ${options.warmupRounds}-round warm-up the median RSS of no window
of ${RSS_WINDOW} rounds may rise more than ${options.rssBoundMiB} MiB above the first window's (one sample of a garbage-collected heap swings by
tens of MiB); the source's descriptors and threads may not rise above the highest they reached during the warm-up at all.
(The source has two steady states, with and without the warm multifd sender threads it keeps between migrations once a multifd round ran;
a cancelled multifd round ends them.)</p>
<p class="verdict">${result.passed ? 'PASSED' : 'FAILED'}</p>
<pre>${escapeXml(summaryLines(result).join('\n'))}</pre>
${charts.map((c) => `<figure>${c}</figure>`).join('\n')}
<details><summary>every round (${rounds.length})</summary>
<table><tr>${header.map((h) => `<th>${escapeXml(h)}</th>`).join('')}</tr>
${rows.join('\n')}
</table></details>
</body></html>
`;
}
