/**
 * The scaling series drawn for the report (scale-table.ts gives the same
 * figures as numbers): along guest size, each engine's throughput, peak RSS
 * beyond guest RAM on each side against the bound, and a dirty sync's cost;
 * along vCPUs, total time and downtime.
 */
import type { ScenarioResult } from './results.js';
import { BEYOND_RAM_BOUND, beyondRam, sizeSeries, vcpuSeries, type SizePoint } from './scale-table.js';
import { lineChart, type PlotSeries } from './svg-plot.js';

const GiB = 1 << 30;
const MiB = 1 << 20;
const BOUND_COLOR = '#999999';
/** Appended to an engine's colour for its destination: the same hue, half opaque. */
const DESTINATION_ALPHA = '80';

/** The engines' colours, as in the report's other plots. */
export interface EngineColors {
  livemig: string;
  qemu: string;
}

/** The plots of the scaling series in `results` ('' when it holds none). */
export function scalePlots(results: ScenarioResult[], colors: EngineColors): string {
  const sizes = sizeSeries(results);
  const vcpus = vcpuSeries(results);
  const xSize = 'guest RAM, GiB';
  const bySize = (pick: (p: SizePoint) => number | undefined): [number, number][] =>
    sizes.flatMap((p) => {
      const y = pick(p);
      return y === undefined ? [] : [[p.ram / GiB, y]];
    });
  const beyond = (engine: 'livemig' | 'qemu', side: 'source' | 'destination') =>
    bySize((p) => {
      const m = p[engine]?.median;
      return m && beyondRam(m, side, p.ram) / MiB;
    });
  const byVcpus = (pick: (r: ScenarioResult) => number | null | undefined): [number, number][] =>
    vcpus.flatMap(({ smp, result }) => {
      const y = pick(result);
      return y === null || y === undefined ? [] : [[smp, y]];
    });
  const charts: string[] = [];
  if (sizes.length > 0) {
    charts.push(lineChart({
      title: 'throughput vs guest size',
      xLabel: xSize,
      yLabel: 'guest GB/s',
      series: [
        { name: 'livemig', color: colors.livemig, points: bySize((p) => p.livemig.median?.guestGBps) },
        { name: 'QEMU', color: colors.qemu, points: bySize((p) => p.qemu?.median?.guestGBps) },
      ],
    }));
    const rss: PlotSeries[] = [
      { name: 'livemig src', color: colors.livemig, points: beyond('livemig', 'source') },
      { name: 'livemig dst', color: `${colors.livemig}${DESTINATION_ALPHA}`, points: beyond('livemig', 'destination') },
      { name: 'QEMU src', color: colors.qemu, points: beyond('qemu', 'source') },
      { name: 'QEMU dst', color: `${colors.qemu}${DESTINATION_ALPHA}`, points: beyond('qemu', 'destination') },
      { name: `${BEYOND_RAM_BOUND * 100} % of RAM`, color: BOUND_COLOR, points: bySize((p) => (p.ram * BEYOND_RAM_BOUND) / MiB) },
    ];
    charts.push(lineChart({ title: 'peak RSS beyond guest RAM vs guest size', xLabel: xSize, yLabel: 'MiB', series: rss, width: 580 }));
    charts.push(lineChart({
      title: 'one dirty sync vs guest size',
      xLabel: xSize,
      yLabel: 'ms per sync',
      series: [
        { name: 'nothing dirty', color: colors.livemig, points: bySize((p) => p.dirtySync?.cleanMs) },
        { name: "ab's range dirty", color: `${colors.livemig}${DESTINATION_ALPHA}`, points: bySize((p) => p.dirtySync?.abRangeMs) },
      ],
    }));
  }
  if (vcpus.length > 0) {
    const series = (name: string, pick: (r: ScenarioResult) => number | null | undefined) => [{ name, color: colors.livemig, points: byVcpus(pick) }];
    charts.push(lineChart({ title: 'total time vs vCPUs', xLabel: 'vCPUs running ab', yLabel: 'ms', series: series('livemig', (r) => r.median?.totalTimeMs) }));
    charts.push(lineChart({ title: 'downtime vs vCPUs', xLabel: 'vCPUs running ab', yLabel: 'ms', series: series('livemig', (r) => r.median?.downtimeMs) }));
  }
  return charts.join('\n');
}
