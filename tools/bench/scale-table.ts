/**
 * How cost grows (the scaling series in scenarios.ts): along guest size,
 * time and CPU per GiB and memory beyond guest RAM, beside QEMU at each
 * size (a cost that grows faster than RAM shows as a ms/GiB that climbs);
 * along vCPUs, a running guest writing more each second with each vCPU:
 * passes, downtime and total time.
 */
import type { ScenarioResult } from './results.js';
import { fixed, verifiedOf } from './table.js';

export const SCALE_COLUMNS = [
  'scenario', 'guest', 'total', 'ms per GiB', 'CPU s/GiB src/dst', 'peak RSS src/dst', 'passes', 'downtime', 'QEMU ms per GiB', '÷ QEMU', 'verified',
] as const;

const GiB = 1 << 30;
const MiB = 1 << 20;

/** Peak RSS of both processes; for a guest whose RAM is all written (the size series), also what lies beyond its RAM. */
function peakRss(source: number, destination: number, ram: number | undefined): string {
  const both = `${fixed(source / MiB, 0)} / ${fixed(destination / MiB, 0)} MiB`;
  return ram === undefined ? both : `${both} (+${fixed((source - ram) / MiB, 0)} / +${fixed((destination - ram) / MiB, 0)})`;
}

/** One row per livemig scaling scenario, in SCALE_COLUMNS order; '–' where a figure is missing. */
export function scaleRows(results: ScenarioResult[]): string[][] {
  const byName = new Map(results.map((r) => [r.name, r]));
  return results.flatMap((r) => {
    const scale = r.config.scale as { axis: string; reference?: string } | undefined;
    const m = r.median;
    if (r.family !== 'livemig' || !scale) return [];
    const ram = r.config.ram as number;
    const gib = ram / GiB;
    const ref = scale.reference ? byName.get(scale.reference)?.median : undefined;
    const smp = (r.config.smp as number | undefined) ?? 1;
    return [[
      `livemig ${r.name}`,
      scale.axis === 'ram' ? `${ram / MiB} MiB` : `${ram / MiB} MiB, ${smp} vCPU${smp > 1 ? 's' : ''}`,
      m ? `${fixed(m.totalTimeMs, 0)} ms` : '–',
      fixed(m && m.totalTimeMs / gib, 0),
      m ? `${fixed(m.sourceCpuSeconds / gib, 2)} / ${fixed(m.destinationCpuSeconds / gib, 2)}` : '–',
      m ? peakRss(m.sourcePeakRssBytes, m.destinationPeakRssBytes, scale.axis === 'ram' ? ram : undefined) : '–',
      fixed(m?.dirtySyncCount, 0),
      m?.downtimeMs === null || m?.downtimeMs === undefined ? '–' : `${fixed(m.downtimeMs, 0)} ms`,
      fixed(ref && ref.totalTimeMs / gib, 0),
      m && ref ? `${(ref.totalTimeMs / m.totalTimeMs).toFixed(2)}×` : '–',
      verifiedOf(r),
    ]];
  });
}
