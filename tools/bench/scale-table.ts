/**
 * How cost grows (the scaling series in scenarios.ts). Along guest size,
 * each engine's run of each size: throughput (flat when cost grows with RAM
 * and no faster), setup time, peak RSS beyond guest RAM on each side
 * (flagged from a tenth of it), and for livemig a dirty sync's cost at that
 * size (dirty-sync-cost.ts). Along vCPUs, a running guest writing more each
 * second with each vCPU: passes, downtime and total time. scale-plots.ts
 * draws the same figures.
 */
import { median } from './median.js';
import type { DirtySyncCost, Medians, ScenarioResult } from './results.js';
import { fixed, verifiedOf } from './table.js';

export const SCALE_RAM_COLUMNS = [
  'scenario', 'guest', 'total', 'GB/s', '÷ QEMU', 'setup', 'RSS beyond RAM src', 'RSS beyond RAM dst', 'dirty sync clean / ab', 'sync per GiB', 'verified',
] as const;

export const SCALE_VCPU_COLUMNS = ['scenario', 'guest', 'total', 'downtime', 'passes', 'setup', 'CPU s src/dst', 'peak RSS src/dst', 'verified'] as const;

/** The bound on memory beyond guest RAM, each side: a tenth of it. */
export const BEYOND_RAM_BOUND = 0.1;

const GiB = 1 << 30;
const MiB = 1 << 20;

/** One guest size of the series: livemig's run and QEMU's of that size. */
export interface SizePoint {
  ram: number;
  livemig: ScenarioResult;
  qemu?: ScenarioResult;
  /** Medians over livemig's runs (dirty-sync-cost.ts). */
  dirtySync?: DirtySyncCost;
}

/** The guest-size series, smallest guest first. */
export function sizeSeries(results: ScenarioResult[]): SizePoint[] {
  const byName = new Map(results.map((r) => [r.name, r]));
  return results
    .filter((r) => r.family === 'livemig' && scaleOf(r)?.axis === 'ram')
    .map((livemig) => {
      const reference = scaleOf(livemig)!.reference;
      const qemu = reference === undefined ? undefined : byName.get(reference);
      const dirtySync = dirtySyncMedians(livemig);
      return { ram: livemig.config.ram as number, livemig, ...(qemu ? { qemu } : {}), ...(dirtySync ? { dirtySync } : {}) };
    })
    .sort((a, b) => a.ram - b.ram);
}

/** The vCPU series, fewest vCPUs first. */
export function vcpuSeries(results: ScenarioResult[]): { smp: number; result: ScenarioResult }[] {
  return results
    .filter((r) => r.family === 'livemig' && scaleOf(r)?.axis === 'vcpus')
    .map((result) => ({ smp: (result.config.smp as number | undefined) ?? 1, result }))
    .sort((a, b) => a.smp - b.smp);
}

/** Peak RSS beyond guest RAM of one side, in bytes. */
export function beyondRam(m: Medians, side: 'source' | 'destination', ram: number): number {
  return (side === 'source' ? m.sourcePeakRssBytes : m.destinationPeakRssBytes) - ram;
}

/** One row per engine per guest size, in SCALE_RAM_COLUMNS order; '–' where a figure is missing. */
export function scaleRamRows(results: ScenarioResult[]): string[][] {
  return sizeSeries(results).flatMap(({ ram, livemig, qemu, dirtySync }) => {
    const gbps = (r: ScenarioResult | undefined) => r?.median?.guestGBps;
    const vsQemu = gbps(livemig) !== undefined && gbps(qemu) ? `${(gbps(livemig)! / gbps(qemu)!).toFixed(2)}×` : '–';
    const sync = dirtySync ? `${fixed(dirtySync.cleanMs, 2)} / ${fixed(dirtySync.abRangeMs, 2)} ms` : '–';
    const perGiB = dirtySync ? `${fixed(dirtySync.cleanMs / (ram / GiB), 3)} / ${fixed(dirtySync.abRangeMs / (ram / GiB), 3)}` : '–';
    const row = (r: ScenarioResult, extra: [string, string, string]) => {
      const m = r.median;
      const [ratio, syncCell, perGiBCell] = extra;
      return [
        `${r.family} ${r.name}`,
        `${ram / MiB} MiB`,
        ms(m?.totalTimeMs),
        fixed(m?.guestGBps, 2),
        ratio,
        ms(m?.setupTimeMs),
        m ? beyondCell(beyondRam(m, 'source', ram), ram) : '–',
        m ? beyondCell(beyondRam(m, 'destination', ram), ram) : '–',
        syncCell,
        perGiBCell,
        verifiedOf(r),
      ];
    };
    return [row(livemig, [vsQemu, sync, perGiB]), ...(qemu ? [row(qemu, ['', '', ''])] : [])];
  });
}

/** One row per vCPU count, in SCALE_VCPU_COLUMNS order; '–' where a figure is missing. */
export function scaleVcpuRows(results: ScenarioResult[]): string[][] {
  return vcpuSeries(results).map(({ smp, result: r }) => {
    const m = r.median;
    return [
      `livemig ${r.name}`,
      `${(r.config.ram as number) / MiB} MiB, ${smp} vCPU${smp > 1 ? 's' : ''}`,
      ms(m?.totalTimeMs),
      ms(m?.downtimeMs),
      fixed(m?.dirtySyncCount, 0),
      ms(m?.setupTimeMs),
      m ? `${fixed(m.sourceCpuSeconds, 2)} / ${fixed(m.destinationCpuSeconds, 2)}` : '–',
      m ? `${fixed(m.sourcePeakRssBytes / MiB, 0)} / ${fixed(m.destinationPeakRssBytes / MiB, 0)} MiB` : '–',
      verifiedOf(r),
    ];
  });
}

/** Whether throughput held flat with size: each engine's guest GB/s from the smallest guest to the largest. */
export function throughputFlatness(results: ScenarioResult[]): string | undefined {
  const points = sizeSeries(results);
  if (points.length < 2) return undefined;
  const engine = (name: string, pick: (p: SizePoint) => ScenarioResult | undefined) => {
    const gbps = points.map((p) => pick(p)?.median?.guestGBps).filter((v): v is number => v !== undefined && v > 0);
    if (gbps.length < 2) return undefined;
    return `${name} ${gbps.map((v) => v.toFixed(2)).join(' → ')} GB/s (largest ÷ smallest guest ${(gbps.at(-1)! / gbps[0]!).toFixed(2)})`;
  };
  const lines = [engine('livemig', (p) => p.livemig), engine('QEMU', (p) => p.qemu)].filter(Boolean);
  return lines.length > 0 ? `Throughput with size: ${lines.join('; ')}.` : undefined;
}

const ms = (v: number | null | undefined) => (v === null || v === undefined ? '–' : `${fixed(v, 0)} ms`);

/** MiB and % of guest RAM, '!' from BEYOND_RAM_BOUND on. */
function beyondCell(bytes: number, ram: number): string {
  const share = bytes / ram;
  return `${bytes >= 0 ? '+' : ''}${fixed(bytes / MiB, 0)} MiB ${fixed(share * 100, 1)} %${share >= BEYOND_RAM_BOUND ? ' !' : ''}`;
}

function scaleOf(r: ScenarioResult): { axis: 'ram' | 'vcpus'; reference?: string } | undefined {
  return r.config.scale as { axis: 'ram' | 'vcpus'; reference?: string } | undefined;
}

/** Each figure's median over the runs that measured one. */
function dirtySyncMedians(r: ScenarioResult): DirtySyncCost | undefined {
  const costs = r.runs.flatMap((run) => (run.dirtySync ? [run.dirtySync] : []));
  if (costs.length === 0) return undefined;
  return {
    cleanMs: median(costs.map((c) => c.cleanMs)),
    abRangeMs: median(costs.map((c) => c.abRangeMs)),
    abRangePages: costs[0]!.abRangePages,
  };
}
