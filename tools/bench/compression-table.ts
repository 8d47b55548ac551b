/**
 * The compression scenarios' table: each livemig scenario with multifd
 * compression beside the QEMU run of the same method, level, channels and
 * guest bytes. Besides speed, what compressing costs and gains: CPU seconds
 * per GiB of guest RAM (source + destination, user + system, all threads)
 * and the compression ratio (guest RAM ÷ the bytes the run's own loopback
 * carried: QEMU 7.2's query-migrate counts compressed pages whole, see
 * loopback-namespace.ts).
 */
import type { CompressionMethod } from '../../protocols/multifd/constants.js';
import type { Medians, ScenarioResult, Shape } from './results.js';
import { REFERENCES } from './scenarios.js';
import { fixed, verifiedOf } from './table.js';

export const COMPRESSION_COLUMNS = [
  'scenario', 'reference', 'GB/s livemig', 'GB/s QEMU', '÷ QEMU', 'CPU s/GiB livemig', 'CPU s/GiB QEMU', 'ratio livemig', 'ratio QEMU', 'verified livemig, QEMU',
] as const;

const GiB = 1 << 30;

/** Source + destination CPU seconds per GiB of the scenario's guest RAM. */
function cpuPerGiB(r: ScenarioResult | undefined): number | undefined {
  const m: Medians | undefined = r?.median;
  const ram = r?.config.ram;
  return m && typeof ram === 'number' ? (m.sourceCpuSeconds + m.destinationCpuSeconds) / (ram / GiB) : undefined;
}

const ratioOf = (r: ScenarioResult | undefined) => (r?.median?.compressionRatio === undefined ? '–' : `${r.median.compressionRatio.toFixed(2)}×`);

/** One row per livemig scenario with multifd compression, in COMPRESSION_COLUMNS order; '–' where a side did not run. */
export function compressionRows(results: ScenarioResult[]): string[][] {
  const byName = new Map(results.map((r) => [r.name, r]));
  return results.flatMap((r) => {
    const multifd = r.config.multifd as { compression: CompressionMethod } | undefined;
    if (r.family !== 'livemig' || !multifd || multifd.compression === 'none') return [];
    const shape = r.config.shape as Shape | undefined;
    const refName = shape ? REFERENCES[shape].qemu : undefined;
    const ref = refName ? byName.get(refName) : undefined;
    return [[
      `livemig ${r.name}`,
      refName ?? '–',
      fixed(r.median?.guestGBps, 2),
      fixed(ref?.median?.guestGBps, 2),
      r.vsQemu ? `${r.vsQemu.value.toFixed(2)}×` : '–',
      fixed(cpuPerGiB(r), 2),
      fixed(cpuPerGiB(ref), 2),
      ratioOf(r),
      ratioOf(ref),
      `${verifiedOf(r)}, ${ref ? verifiedOf(ref) : '–'}`,
    ]];
  });
}
