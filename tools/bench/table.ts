/** The side-by-side tables printed on the terminal (and shown in the HTML report): every scenario, livemig next to QEMU, then the postcopy, snapshot and COLO ones' own figures. */
import { convergenceSummary } from './convergence-table.js';
import type { BenchResults, Medians, Ratio, RunMetrics, ScenarioResult } from './results.js';
import { DRIFT_PROBE } from './round-plan.js';

export const COLUMNS = [
  'scenario', 'status', 'total ms', 'setup ms', 'downtime ms', 'GB/s RAM', 'GB/s wire', 'syncs', 'pages/s',
  'CPU s src/dst', 'peak RSS MiB src/dst', '÷ QEMU', '÷ limit', 'verified',
] as const;

/**
 * Each livemig scenario next to the QEMU run it is compared with (same
 * guest size, like data; plain or TLS alike): guest GB/s of each and their
 * ratio, and the CPU seconds each engine's source and destination spent
 * migrating, with livemig's total ÷ QEMU's (below 1: livemig spent less).
 */
export const VS_QEMU_COLUMNS = [
  'scenario', 'reference', 'GB/s livemig', 'GB/s QEMU', '÷ QEMU', 'CPU s livemig src/dst', 'CPU s QEMU src/dst', 'CPU s ÷ QEMU',
] as const;

/**
 * Postcopy scenarios (livemig's and QEMU's under the same plan): time from
 * the switch (the source's MIGRATION postcopy-active event) to completion,
 * QEMU's downtime (stop until the package is sent), the source's STOP to
 * the destination's RESUME, livemig's stop-to-run, page requests, bytes sent after the switch, the destination's page-fault
 * waits (livemig: count, median, 99th percentile, max) and blocktime.
 */
export const POSTCOPY_COLUMNS = [
  'scenario', 'status', 'switchover→done ms', 'downtime ms', 'stop→resume ms', 'stop-to-run ms', 'requests', 'postcopy MiB',
  'faults', 'fault p50 µs', 'fault p99 µs', 'fault max µs', 'blocktime ms', '÷ QEMU', 'verified',
] as const;

/**
 * Background snapshots (livemig only: QEMU's is not measured): total time,
 * the moment the guest stopped, guest RAM written per second, pages
 * written ahead of the pass for the guest's writes, and the guest's
 * throughput (vcpu-work) before and during the snapshot.
 */
export const SNAPSHOT_COLUMNS = [
  'scenario', 'status', 'snapshot ms', 'downtime ms', 'GB/s RAM', 'faulted pages',
  'guest Mpages/s before', 'guest Mpages/s during', 'during ÷ before', 'verified',
] as const;

/**
 * COLO (livemig only: QEMU's COLO is not measured), a row per
 * x-checkpoint-delay: the window it was measured over, the checkpoints in
 * it, each checkpoint's time, guest downtime and pages (medians), and the
 * primary guest's throughput (vcpu-work) before `migrate` and during COLO.
 */
export const COLO_COLUMNS = [
  'scenario', 'status', 'checkpoint delay ms', 'window s', 'checkpoints', 'checkpoint ms', 'downtime ms', 'pages',
  'guest Mpages/s before', 'guest Mpages/s during', 'during ÷ before', 'verified',
] as const;

export const fixed = (v: number | null | undefined, digits: number) => (v === null || v === undefined ? '–' : v.toFixed(digits));
const mib = (bytes: number) => (bytes / (1 << 20)).toFixed(0);
/** Three significant digits: a guest slowed down a hundredfold still shows a figure. */
const significant = (v: number | null | undefined) => (v === null || v === undefined ? '–' : v.toPrecision(3));
/** Guest pages/s as millions. */
const mega = (pagesPerSecond: number | null | undefined) => significant(pagesPerSecond === null || pagesPerSecond === undefined ? null : pagesPerSecond / 1e6);

function statusOf(r: ScenarioResult): string {
  return r.status === 'ok' && r.note ? 'ok*' : r.status;
}

/** Runs whose destination was checked, as "passed/checked". */
export function verifiedOf(r: ScenarioResult): string {
  const verified = r.runs.filter((run) => run.verified !== null);
  return verified.length === 0 ? '–' : `${verified.filter((run) => run.verified).length}/${verified.length}`;
}

/** One row of cells per scenario, in COLUMNS order. */
export function tableRows(results: ScenarioResult[]): string[][] {
  return results.map((r) => {
    const m = r.median;
    const status = statusOf(r);
    if (!m) return [`${r.family} ${r.name}`, status, ...COLUMNS.slice(2).map(() => '')];
    return [
      `${r.family} ${r.name}`,
      status,
      fixed(m.totalTimeMs, 0),
      fixed(m.setupTimeMs, 0),
      fixed(m.downtimeMs, 0),
      fixed(m.guestGBps, 2),
      fixed(m.wireGBps, 2),
      fixed(m.dirtySyncCount, 0),
      m.pagesPerSecond === null ? '–' : Math.round(m.pagesPerSecond).toLocaleString('en-US'),
      `${fixed(m.sourceCpuSeconds, 2)}/${fixed(m.destinationCpuSeconds, 2)}`,
      `${mib(m.sourcePeakRssBytes)}/${mib(m.destinationPeakRssBytes)}`,
      r.vsQemu ? `${r.vsQemu.value.toFixed(2)}×` : r.config.snapshot || r.config.colo ? '–' : '',
      r.vsLimit ? `${r.vsLimit.value.toFixed(2)}×` : '',
      verifiedOf(r),
    ];
  });
}

/** One row per livemig scenario with a QEMU ratio, in VS_QEMU_COLUMNS order. */
export function vsQemuRows(results: ScenarioResult[]): string[][] {
  const byName = new Map(results.map((r) => [r.name, r]));
  return results.flatMap((r) => {
    const ours = r.median;
    const theirs = r.vsQemu && byName.get(r.vsQemu.reference)?.median;
    if (!ours || !theirs) return [];
    const cpu = (m: Medians) => `${fixed(m.sourceCpuSeconds, 2)}/${fixed(m.destinationCpuSeconds, 2)}`;
    const cpuTotal = (m: Medians) => m.sourceCpuSeconds + m.destinationCpuSeconds;
    return [[
      `livemig ${r.name}`,
      r.vsQemu!.reference,
      fixed(ours.guestGBps, 2),
      fixed(theirs.guestGBps, 2),
      `${r.vsQemu!.value.toFixed(2)}×`,
      cpu(ours),
      cpu(theirs),
      cpuTotal(theirs) > 0 ? `${(cpuTotal(ours) / cpuTotal(theirs)).toFixed(2)}×` : '–',
    ]];
  });
}

/** The scenarios that migrate with postcopy, both engines. */
export function postcopyResults(results: ScenarioResult[]): ScenarioResult[] {
  return results.filter((r) => r.config.postcopy !== undefined);
}

/** One row per postcopy scenario, in POSTCOPY_COLUMNS order; "–" where the engine gives no such figure. */
export function postcopyRows(results: ScenarioResult[]): string[][] {
  return postcopyResults(results).map((r) => {
    const m = r.median;
    const pc = m?.postcopy;
    if (!m || !pc) return [`${r.family} ${r.name}`, statusOf(r), ...POSTCOPY_COLUMNS.slice(2).map(() => '')];
    return [
      `${r.family} ${r.name}`,
      statusOf(r),
      fixed(pc.switchoverToCompleteMs, 0),
      fixed(m.downtimeMs, 0),
      fixed(pc.stopToResumeMs, 1),
      fixed(pc.stopToRunMs, 0),
      fixed(pc.requests, 0),
      fixed(pc.postcopyBytes / (1 << 20), 1),
      fixed(pc.faultCount, 0),
      fixed(pc.faultP50Us, 0),
      fixed(pc.faultP99Us, 0),
      fixed(pc.faultMaxUs, 0),
      fixed(pc.blocktimeMs, 0),
      r.postcopyVsQemu ? `${r.postcopyVsQemu.value.toFixed(2)}×` : '',
      verifiedOf(r),
    ];
  });
}

/** One row per scenario that takes a background snapshot, in SNAPSHOT_COLUMNS order. */
export function snapshotRows(results: ScenarioResult[]): string[][] {
  return results.filter((r) => r.config.snapshot !== undefined).map((r) => {
    const m = r.median;
    const sn = m?.snapshot;
    if (!m || !sn) return [`${r.family} ${r.name}`, statusOf(r), ...SNAPSHOT_COLUMNS.slice(2).map(() => '')];
    return [
      `${r.family} ${r.name}`,
      statusOf(r),
      fixed(m.totalTimeMs, 0),
      fixed(m.downtimeMs, 0),
      fixed(m.guestGBps, 2),
      fixed(sn.faultedPages, 0),
      mega(sn.guestPagesPerSecondBefore),
      mega(sn.guestPagesPerSecondDuring),
      significant(sn.duringOverBefore),
      verifiedOf(r),
    ];
  });
}

/** One row per x-checkpoint-delay of each COLO scenario, in COLO_COLUMNS order. */
export function coloRows(results: ScenarioResult[]): string[][] {
  return results.filter((r) => r.config.colo !== undefined).flatMap((r) => {
    const delays = r.median?.colo;
    if (!delays) return [[`${r.family} ${r.name}`, statusOf(r), ...COLO_COLUMNS.slice(2).map(() => '')]];
    return delays.map((d) => [
      `${r.family} ${r.name}`,
      statusOf(r),
      fixed(d.delayMs, 0),
      fixed(d.windowMs / 1000, 1),
      fixed(d.checkpoints, 0),
      fixed(d.checkpointMs, 0),
      fixed(d.downtimeMs, 0),
      Math.round(d.pages).toLocaleString('en-US'),
      mega(d.guestPagesPerSecondBefore),
      mega(d.guestPagesPerSecondDuring),
      significant(d.duringOverBefore),
      verifiedOf(r),
    ]);
  });
}

/** A plain-text table, numbers right-aligned. */
export function formatRows(columns: readonly string[], cells: string[][]): string {
  const rows = [columns.slice(), ...cells];
  const widths = columns.map((_, i) => Math.max(...rows.map((row) => row[i]!.length)));
  const line = (row: string[]) => row.map((cell, i) => (i < 2 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!))).join('  ');
  const out = [line(rows[0]!), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.slice(1).map(line)];
  return out.join('\n');
}

export function formatTable(results: ScenarioResult[]): string {
  return formatRows(COLUMNS, tableRows(results));
}

/** The livemig-next-to-QEMU table, or '' when no scenario was compared with QEMU. */
export function formatVsQemuTable(results: ScenarioResult[]): string {
  const rows = vsQemuRows(results);
  return rows.length === 0 ? '' : formatRows(VS_QEMU_COLUMNS, rows);
}

/** The postcopy table, or '' when no postcopy scenario ran. */
export function formatPostcopyTable(results: ScenarioResult[]): string {
  const rows = postcopyRows(results);
  return rows.length === 0 ? '' : formatRows(POSTCOPY_COLUMNS, rows);
}

/** The snapshot table, or '' when no snapshot scenario ran. */
export function formatSnapshotTable(results: ScenarioResult[]): string {
  const rows = snapshotRows(results);
  return rows.length === 0 ? '' : formatRows(SNAPSHOT_COLUMNS, rows);
}

/** The COLO table, or '' when no COLO scenario ran. */
export function formatColoTable(results: ScenarioResult[]): string {
  const rows = coloRows(results);
  return rows.length === 0 ? '' : formatRows(COLO_COLUMNS, rows);
}

/** One run in a line, as the bench logs it. */
export function runSummary(m: RunMetrics): string {
  if (m.convergence) return convergenceSummary(m.convergence);
  const pc = m.postcopy;
  const faults = pc?.faultLatencyUs;
  const sn = m.snapshot;
  const colo = m.colo?.delays.map((d) => `${d.delayMs} ms: ${d.checkpoints} checkpoints of ${d.checkpointMs} ms, guest ×${significant(d.guestPagesPerSecond / m.colo!.guestPagesPerSecondBefore)}`);
  return [
    `${m.guestGBps.toFixed(2)} GB/s, total ${m.totalTimeMs.toFixed(0)} ms`,
    m.downtimeMs !== undefined ? `downtime ${m.downtimeMs} ms` : '',
    pc ? `switchover→done ${pc.switchoverToCompleteMs.toFixed(0)} ms, ${pc.requests} page requests` : '',
    faults ? `fault p50/p99 ${faults.p50}/${faults.p99} µs over ${faults.count}` : '',
    pc?.blocktimeMs !== undefined ? `blocktime ${pc.blocktimeMs} ms` : '',
    sn ? `${sn.faultedPages} faulted pages, guest ${mega(sn.guestPagesPerSecondBefore)} → ${mega(sn.guestPagesPerSecondDuring)} Mpages/s` : '',
    colo ? `x-checkpoint-delay ${colo.join('; ')}` : '',
  ].filter(Boolean).join(', ');
}

/** The ratios and the reasons scenarios did not run, as sentences under the table. */
export function formatNotes(results: ScenarioResult[]): string {
  const lines: string[] = [];
  for (const r of results) {
    if (r.vsQemu || r.vsLimit) {
      const ratios = [r.vsQemu, r.vsLimit].filter((ratio) => ratio !== undefined);
      lines.push(`livemig ${r.name} (guest GB/s, ${ratioBasis(ratios)}): ${ratios.map(ratioText).join(', ')}`);
    }
    if (r.postcopyVsQemu) {
      lines.push(`livemig ${r.name} (switchover → completion, QEMU's time ÷ livemig's, ${ratioBasis([r.postcopyVsQemu])}): ${ratioText(r.postcopyVsQemu)}`);
    }
  }
  for (const r of results) {
    if (r.note) lines.push(`${r.family} ${r.name} ${r.status === 'ok' ? 'partly failed' : r.status}: ${r.note.split('\n')[0]}`);
  }
  return lines.join('\n');
}

/**
 * A ratio as the notes give it: "1.36× qemu-multifd2 (1.21–1.52 over 5
 * pairs)", saying when flagged pairs were left out of its median, or could
 * not be (fewer than two others).
 */
export function ratioText(ratio: Ratio): string {
  const head = `${ratio.value.toFixed(2)}× ${ratio.reference}`;
  const p = ratio.pairs;
  if (!p) return head;
  const n = p.ratios.length;
  const flagged = p.ratios.filter((pair) => pair.flagged).length;
  const range = n === 1 ? '1 pair' : `${p.min.toFixed(2)}–${p.max.toFixed(2)} over ${n} pairs`;
  const left = flagged === 0 ? '' : p.medianOver === 'unflagged' ? `; ${flagged} flagged, median of the ${n - flagged} others` : `; ${flagged} flagged, median of all: too few others`;
  return `${head} (${range}${left})`;
}

/** What the notes' ratios are: medians of pairs, or (no round had both runs) of the two scenarios' medians. */
function ratioBasis(ratios: Ratio[]): string {
  return ratios.every((ratio) => ratio.pairs) ? "median of the rounds' pairs" : 'medians';
}

/** The rounds whose references drifted, a line each, under a line saying what flags a round; one line when none did; '' when no pair was measured. */
export function formatDrift(drift: BenchResults['drift']): string {
  if (!drift) return '';
  const tolerance = `±${Math.round(drift.tolerance * 100)} %`;
  if (drift.rounds.length === 0) return `Drift: no reference moved more than ${tolerance} from its median over the run; no pair flagged.`;
  const lines = drift.rounds.map((d) => {
    const digits = d.unit === 'ms' ? 0 : 2;
    const off = `${Math.round(Math.abs(d.deviation) * 100)} % ${d.deviation < 0 ? 'below' : 'above'} its median (${d.median.toFixed(digits)})`;
    const what = d.flagged.length === 0
      ? 'no pair of this round to flag'
      : d.reference === DRIFT_PROBE ? `every pair of this round flagged (${d.flagged.join(', ')})` : `the pairs of ${d.flagged.join(', ')} in this round flagged`;
    return `round ${d.round + 1}: ${d.reference} ${d.value.toFixed(digits)} ${d.unit}, ${off}: ${what}`;
  });
  return [`Drift (a reference more than ${tolerance} off its median over the run flags pairs of its round):`, ...lines].join('\n');
}
