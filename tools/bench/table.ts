/** The side-by-side table printed on the terminal (and shown in the HTML report). */
import type { ScenarioResult } from './results.js';

export const COLUMNS = [
  'scenario', 'status', 'total ms', 'setup ms', 'downtime ms', 'GB/s RAM', 'GB/s wire', 'syncs', 'pages/s',
  'CPU s src/dst', 'peak RSS MiB src/dst', '÷ QEMU', '÷ limit', 'verified',
] as const;

const fixed = (v: number | null | undefined, digits: number) => (v === null || v === undefined ? '–' : v.toFixed(digits));
const mib = (bytes: number) => (bytes / (1 << 20)).toFixed(0);

/** One row of cells per scenario, in COLUMNS order. */
export function tableRows(results: ScenarioResult[]): string[][] {
  return results.map((r) => {
    const m = r.median;
    const verified = r.runs.filter((run) => run.verified !== null);
    const ok = verified.filter((run) => run.verified).length;
    const status = r.status === 'ok' && r.note ? 'ok*' : r.status;
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
      r.vsQemu ? `${r.vsQemu.value.toFixed(2)}×` : '',
      r.vsLimit ? `${r.vsLimit.value.toFixed(2)}×` : '',
      verified.length === 0 ? '–' : `${ok}/${verified.length}`,
    ];
  });
}

/** A plain-text table, numbers right-aligned. */
export function formatTable(results: ScenarioResult[]): string {
  const rows = [COLUMNS.slice() as string[], ...tableRows(results)];
  const widths = COLUMNS.map((_, i) => Math.max(...rows.map((row) => row[i]!.length)));
  const line = (row: string[]) => row.map((cell, i) => (i < 2 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!))).join('  ');
  const out = [line(rows[0]!), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.slice(1).map(line)];
  return out.join('\n');
}

/** The ratios and the reasons scenarios did not run, as sentences under the table. */
export function formatNotes(results: ScenarioResult[]): string {
  const lines: string[] = [];
  for (const r of results) {
    if (r.vsQemu || r.vsLimit) {
      const parts = [r.vsQemu && `${r.vsQemu.value.toFixed(2)}× ${r.vsQemu.reference}`, r.vsLimit && `${r.vsLimit.value.toFixed(2)}× ${r.vsLimit.reference}`];
      lines.push(`livemig ${r.name}: ${parts.filter(Boolean).join(', ')} (guest GB/s, medians)`);
    }
  }
  for (const r of results) {
    if (r.note) lines.push(`${r.family} ${r.name} ${r.status === 'ok' ? 'partly failed' : r.status}: ${r.note.split('\n')[0]}`);
  }
  return lines.join('\n');
}
