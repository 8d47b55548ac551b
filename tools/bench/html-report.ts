/**
 * bench-results/report.html: the table, the ratios, and per scenario two
 * plots (throughput and remaining bytes over time) with livemig next to the
 * QEMU run it is compared with, so a person can look rather than read.
 */
import { COMPRESSION_COLUMNS, compressionRows } from './compression-table.js';
import { START_TO_DONE_COLUMNS, startToDoneRows } from './start-to-done-table.js';
import { DOWNTIME_COLUMNS, downtimeRows, downtimeSweepPoints, downtimeSweepSummary } from './downtime-table.js';
import { SCALE_RAM_COLUMNS, SCALE_VCPU_COLUMNS, scaleRamRows, scaleVcpuRows, throughputFlatness } from './scale-table.js';
import { scalePlots } from './scale-plots.js';
import { CONVERGENCE_COLUMNS, convergenceRows } from './convergence-table.js';
import { floorStatements, THREAD_PROFILE_COLUMNS, threadProfileRows } from './thread-profile-table.js';
import type { BenchResults, RunMetrics, Sample, ScenarioResult } from './results.js';
import { REFERENCES } from './scenarios.js';
import { escapeXml, lineChart, type PlotSeries } from './svg-plot.js';
import { COLO_COLUMNS, coloRows, COLUMNS, formatDrift, formatNotes, POSTCOPY_COLUMNS, postcopyRows, SNAPSHOT_COLUMNS, snapshotRows, tableRows, VS_QEMU_COLUMNS, vsQemuRows } from './table.js';

const LIVEMIG_COLOR = '#1f77b4';
const QEMU_COLOR = '#d62728';

/** GB/s between consecutive samples as steps, starting from nothing sent at time 0. */
export function throughputPoints(series: Sample[]): [number, number][] {
  const points: [number, number][] = [];
  let prev = { t: 0, transferred: 0 };
  for (const s of series) {
    const dt = s.t - prev.t;
    if (dt <= 0) continue;
    const rate = (s.transferred - prev.transferred) / 1e6 / dt;
    points.push([prev.t, rate], [s.t, rate]);
    prev = s;
  }
  return points;
}

/** GiB remaining, from the whole of guest RAM at time 0. */
function remainingPoints(series: Sample[], ramBytes: number): [number, number][] {
  return [[0, ramBytes / (1 << 30)], ...series.map((s): [number, number] => [s.t, s.remaining / (1 << 30)])];
}

/** The median run of a scenario, the one plotted. */
function plotted(r: ScenarioResult) {
  return r.medianRun === undefined ? undefined : r.runs[r.medianRun];
}

function figure(result: ScenarioResult, reference: ScenarioResult | undefined): string {
  const lines = [{ name: `livemig ${result.name}`, color: LIVEMIG_COLOR, run: plotted(result) }];
  const ref = reference && plotted(reference);
  if (ref) lines.push({ name: reference!.name, color: QEMU_COLOR, run: ref });
  const series = (pick: (run: RunMetrics) => [number, number][]): PlotSeries[] =>
    lines.map((l) => ({ name: l.name, color: l.color, points: l.run ? pick(l.run) : [] }));
  return `<figure id="${escapeXml(result.name)}"><figcaption><b>${escapeXml(result.name)}</b>: ${escapeXml(result.description)}</figcaption>
${lineChart({ title: 'throughput', xLabel: 'ms since migrate', yLabel: 'GB/s on the wire', series: series((r) => throughputPoints(r.series)) })}
${lineChart({ title: 'remaining', xLabel: 'ms since migrate', yLabel: 'GiB remaining', series: series((r) => remainingPoints(r.series, r.ramBytes)) })}
</figure>`;
}

/** How far apart the two engines' dots sit at one limit, ms: side by side rather than on top of each other. */
const ENGINE_OFFSET_MS = 4;

/** The downtime sweep's verdicts, and each completed run's downtime against its limit, both engines, with the line downtime = limit. */
function downtimeSweepFigure(results: ScenarioResult[]): string {
  const points = downtimeSweepPoints(results);
  const limits = [...points.livemig, ...points.qemu].map(([limit]) => limit);
  if (limits.length === 0) return '';
  const shift = (p: [number, number][], by: number) => p.map(([limit, downtime]): [number, number] => [limit + by, downtime]);
  const plot = lineChart({
    title: 'downtime against downtime-limit (each completed run)',
    xLabel: 'downtime-limit ms',
    yLabel: 'downtime ms',
    width: 560,
    height: 320,
    series: [
      { name: 'downtime = limit', color: '#888', points: [[0, 0], [Math.max(...limits), Math.max(...limits)]] },
      { name: 'livemig', color: LIVEMIG_COLOR, points: shift(points.livemig, -ENGINE_OFFSET_MS), dots: true },
      { name: 'QEMU', color: QEMU_COLOR, points: shift(points.qemu, ENGINE_OFFSET_MS), dots: true },
    ],
  });
  return `<p>${downtimeSweepSummary(results).map(escapeXml).join('<br>\n')}</p>
<figure>${plot}<figcaption>Above the line: over the limit. livemig's dots sit ${ENGINE_OFFSET_MS} ms left of their limit, QEMU's right.</figcaption></figure>`;
}

/** A table in the report, numbers right-aligned. */
function htmlTable(columns: readonly string[], cells: string[][]): string {
  const rows = cells
    .map((row) => `<tr>${row.map((cell, i) => `<td${i >= 2 ? ' class="n"' : ''}>${escapeXml(cell)}</td>`).join('')}</tr>`)
    .join('\n');
  return `<table><thead><tr>${columns.map((c) => `<th>${escapeXml(c)}</th>`).join('')}</tr></thead><tbody>
${rows}
</tbody></table>`;
}

/** The QEMU run a livemig scenario is plotted next to: its shape's reference, or its postcopy or convergence plan's. */
function referenceName(s: ScenarioResult): string | undefined {
  const shape = s.config.shape as keyof typeof REFERENCES | undefined;
  if (shape) return REFERENCES[shape].qemu;
  return ((s.config.postcopy ?? s.config.convergence) as { reference?: string } | undefined)?.reference;
}

export function htmlReport(results: BenchResults): string {
  const byName = new Map(results.scenarios.map((s) => [s.name, s]));
  const vsQemu = vsQemuRows(results.scenarios);
  const compression = compressionRows(results.scenarios);
  const startToDone = startToDoneRows(results.scenarios);
  const downtime = downtimeRows(results.scenarios);
  const scaleRam = scaleRamRows(results.scenarios);
  const scaleVcpu = scaleVcpuRows(results.scenarios);
  const postcopy = postcopyRows(results.scenarios);
  const snapshot = snapshotRows(results.scenarios);
  const colo = coloRows(results.scenarios);
  const convergence = convergenceRows(results.scenarios);
  const threadProfile = threadProfileRows(results.scenarios, results.machine.cpus);
  const figures = results.scenarios
    .filter((s) => s.family === 'livemig' && s.median)
    .map((s) => {
      const ref = referenceName(s);
      return figure(s, ref ? byName.get(ref) : undefined);
    })
    .join('\n');
  const m = results.machine;
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>livemig benchmark</title>
<style>
body { font-family: sans-serif; margin: 1.5em; color: #222; }
table { border-collapse: collapse; font-size: 13px; }
th, td { border-bottom: 1px solid #ddd; padding: 3px 8px; white-space: nowrap; }
td.n { text-align: right; font-variant-numeric: tabular-nums; }
figure { display: inline-block; margin: 1em 1em 1em 0; }
figcaption { margin-bottom: 4px; }
pre { background: #f6f6f6; padding: 8px; }
</style></head><body>
<h1>livemig benchmark</h1>
<p>${escapeXml(results.startedAt)} – ${escapeXml(results.finishedAt)}; ${m.cpus} CPUs, ${(m.memoryBytes / (1 << 30)).toFixed(0)} GiB, Node ${escapeXml(m.node)}, ${escapeXml(m.qemu ?? 'no QEMU')};
load average before ${m.loadBefore.map((l) => l.toFixed(2)).join(' ')}, after ${m.loadAfter.map((l) => l.toFixed(2)).join(' ')}.
Medians of ${escapeXml(String(results.options.repeat))} runs. Ratios are guest GB/s against the reference measured in this run,
right beside it in every round: the median of the rounds' ratios, their range, and rounds in which a reference drifted flagged (below);
for postcopy, the reference's switchover → completion time ÷ livemig's under the same plan.</p>
${htmlTable(COLUMNS, tableRows(results.scenarios))}
${vsQemu.length > 0 ? `<h2>Next to QEMU</h2>
<p>Each livemig scenario next to the QEMU run it is compared with: the same guest size and data, plain or over TLS alike
(x509, verify-peer on both ends, the same credentials for both engines). CPU s: user + system seconds of each process, all threads,
while it migrated; CPU s ÷ QEMU is livemig's source + destination over QEMU's (below 1: livemig spent less).</p>
${htmlTable(VS_QEMU_COLUMNS, vsQemu)}` : ''}
${compression.length > 0 ? `<h2>Multifd compression</h2>
<p>Both engines with the same method at the same level (1, QEMU's default) over the same channels, on random RAM (the codec's cost
alone: nothing shrinks) and on RAM that compresses like a real guest's (<code>-text</code>: text, mostly-zero pages, arrays of records
and 15 % random pages, the same bytes for both engines). CPU s/GiB: source + destination CPU seconds (user + system, all threads) per
GiB of guest RAM. Ratio: guest RAM ÷ the bytes the run's own network namespace's loopback carried, counted by the kernel for both
engines alike (QEMU 7.2's query-migrate counts a compressed page whole); "–" where no namespace could be made (the bench not root).</p>
${htmlTable(COMPRESSION_COLUMNS, compression)}` : ''}
${downtime.length > 0 ? `<h2>Downtime against its promise</h2>
<p>downtime-limit: what the orchestrator allows (QEMU's default 300 ms unless the scenario sets it). Completed: runs that completed, of
those measured (a sweep point cancelled at its bound did not). Within the limit: completed runs whose downtime did not exceed it.
Downtime: the median, and the longest of any run. expected-downtime: the source's estimate at the dirty sync it switched over on (median over
runs); its error: (expected − downtime) ÷ downtime per run, the median and the worst, and how many runs it foretold within ±20 %.
A stopped guest feels no pause, but its downtime is the same promise. The <code>downtime-</code> scenarios are the sweep of issue 20:
guests that keep dirtying at downtime-limit 30, 100 and 300 ms (livemig: <code>random</code> at three rates and <code>ab</code>;
QEMU: the dirtying boot sector, TCG); its verdict per engine below the table.</p>
${htmlTable(DOWNTIME_COLUMNS, downtime)}
${downtimeSweepFigure(results.scenarios)}` : ''}
${scaleRam.length + scaleVcpu.length > 0 ? `<h2>Scaling</h2>
${scaleRam.length > 0 ? `<p>How cost grows. Along guest size: random RAM over one channel, each size beside QEMU's run of it. Guest GB/s stays flat when
cost grows with RAM and no faster; ÷ QEMU: livemig's GB/s over QEMU's. Setup: query-migrate's setup-time. RSS beyond RAM: each
side's peak resident set (VmHWM, all threads) less guest RAM, in MiB and % of guest RAM, "!" from 10 %. Dirty sync: one
<code>RamSaver.sync()</code> (fetch and clear the dirty log, merge it into the migration bitmap), timed in the bench process after
the run on a RAM block of the guest's size, with nothing written since the last sync and with <code>ab</code>'s default range
([1 MiB, 100 MiB), clamped to RAM) written through the guest's MMU (the median of many syncs each; the source reports no sync timing). ${escapeXml(throughputFlatness(results.scenarios) ?? '')}</p>
${htmlTable(SCALE_RAM_COLUMNS, scaleRam)}` : ''}
${scaleVcpu.length > 0 ? `<p>How cost grows along vCPUs: a guest running <code>ab</code> on 1, 2, 4 and 8 vCPUs (each its slice of the range, so more vCPUs
write more each second) on this ${results.machine.cpus}-core machine.</p>
${htmlTable(SCALE_VCPU_COLUMNS, scaleVcpu)}` : ''}
${scalePlots(results.scenarios, { livemig: LIVEMIG_COLOR, qemu: QEMU_COLOR })}` : ''}
${startToDone.length > 0 ? `<h2>Start to done</h2>
<p>What an orchestrator waits for: from starting the destination (the source already running) to the migration done, in ms.
QEMU's destination pre-allocates its RAM (prealloc=on) before its monitor answers, and is migrated into at once; livemig's monitor
answers at once and its vCPU threads pre-fault RAM behind it: migrated into at once, and once pre-faulted. ÷ QEMU: QEMU's done ÷ livemig's.</p>
${htmlTable(START_TO_DONE_COLUMNS, startToDone)}` : ''}
${postcopy.length > 0 ? `<h2>Postcopy</h2>
<p>Switchover → done: from the source's MIGRATION postcopy-active event to its completed event. Downtime: QEMU's (stop until the
postcopy package is sent). Stop→resume: the source's STOP event to the destination's RESUME event. Stop-to-run (livemig's own figure): stop until the source hears the destination runs the guest. Faults: the destination's page-fault waits,
timed in the vCPU thread (livemig; QEMU gives no such figure). Blocktime: the destination's postcopy-blocktime. "–": the engine gives no such figure.</p>
${htmlTable(POSTCOPY_COLUMNS, postcopy)}` : ''}
${snapshot.length > 0 ? `<h2>Background snapshot</h2>
<p>livemig's background snapshot of a guest running <code>ab</code> over most of its RAM (QEMU's is not measured). Snapshot: its total time;
downtime: the moment the guest was stopped at its start. Faulted pages: written ahead of the pass because the guest was about to write them.
Guest throughput: pages its vCPUs stepped through per second (<code>vcpu-work</code>), over ~1 s before <code>migrate</code> and from
<code>migrate</code> until the snapshot completed; during ÷ before is the median of each run's ratio. Verified: the snapshot loaded
into a new instance, running, passes the <code>ab</code> check once stopped.</p>
${htmlTable(SNAPSHOT_COLUMNS, snapshot)}` : ''}
${colo.length > 0 ? `<h2>COLO</h2>
<p>livemig's COLO (QEMU's is not measured): a guest running <code>ab</code> migrated into a primary and a secondary on this machine,
then checkpointed at each <code>x-checkpoint-delay</code> in turn. Each delay's window starts at the end of the checkpoint the new delay
takes at once and ends at a checkpoint's end, once it holds enough checkpoints and time. Checkpoint: from the request until the secondary
had loaded it; downtime: the primary guest stopped; pages: RAM sent (medians over the window's checkpoints). Guest throughput: pages the
primary's vCPU stepped through per second (<code>vcpu-work</code>), over ~1 s before <code>migrate</code> and over the window; during ÷ before
is the median of each run's ratio. Verified: the net-out peer saw the guest's output whole and in order.</p>
${htmlTable(COLO_COLUMNS, colo)}` : ''}
${convergence.length > 0 ? `<h2>Convergence</h2>
<p>A guest dirtying one byte of every page of [1 MiB, 100 MiB) over and over (livemig: <code>ab</code>; QEMU: the dirtying boot sector, TCG),
256 MiB of RAM holding random bytes, migrated by both engines under the same max-bandwidth and downtime-limit, at which neither converges unaided: with no
lever (cancelled at its bound), auto-converge, dirty-limit or XBZRLE. Time to converge: total-time; downtime: query-migrate's;
transferred: ram.transferred (at the bound, the last sample's); syncs: dirty-sync-count; throttle: the highest cpu-throttle-percentage
seen. Medians over the converged runs. Guest: page writes/s before <code>migrate</code> and from <code>migrate</code> to its end, and calc-dirty-rate (page-sampling) before <code>migrate</code>.
÷ QEMU: livemig's figure over QEMU's. Verified: the destination's RAM equals the source's (digests; QEMU: pmemsave dumps).</p>
${htmlTable(CONVERGENCE_COLUMNS, convergence)}` : ''}
${threadProfile.length > 0 ? `<h2>Where the CPU goes</h2>
<p>Each process's CPU while it migrated, by thread role (<code>/proc/PID/task/TID/stat</code>, read every 50 ms): user and system
(kernel: system calls, the socket copies among them) seconds per GiB of guest RAM, and the share of what the machine's cores give over
the run's total time. Roles: main (the main thread), channel (a thread owning one connection: a multifd channel, a loopback
connection), vcpu, other (V8's and libuv's threads, and what threads that ended unread spent); livemig names its threads in its log.
For the loopback reference, source and destination are its sender and receiver. Medians over runs.</p>
${htmlTable(THREAD_PROFILE_COLUMNS, threadProfile)}
<pre>${escapeXml(floorStatements(results.scenarios, results.machine.cpus).join('\n'))}</pre>` : ''}
<pre>${escapeXml([formatNotes(results.scenarios), formatDrift(results.drift)].filter(Boolean).join('\n\n'))}</pre>
<h2>Over time (the median run of each)</h2>
${figures}
</body></html>
`;
}
