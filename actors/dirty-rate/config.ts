import { genericError } from '../../protocols/qmp/errors.js';
import {
  DIRTYRATE_DEFAULT_SAMPLE_PAGES, MAX_CALC_TIME_MS, MAX_SAMPLE_PAGE_COUNT, MIN_CALC_TIME_MS, MIN_SAMPLE_PAGE_COUNT,
} from './constants.js';
import { convertTimeUnit } from './time-unit.js';
import type { DirtyRateConfig, DirtyRateMeasureMode, TimeUnit } from './types.js';

/** calc-dirty-rate's arguments, as QMP's argument checks let them through. */
export interface CalcDirtyRateArguments {
  'calc-time': number | bigint;
  'calc-time-unit'?: TimeUnit;
  'sample-pages'?: number | bigint;
  mode?: DirtyRateMeasureMode;
}

/**
 * qmp_calc_dirty_rate's checks, in QEMU 8.2's order and words: nothing
 * while a measurement runs, then calc-time's range (in milliseconds), then
 * sample-pages (page-sampling only, and its range). Every mode is enabled
 * on this guest (dirty-rate-log.ts), so QEMU's "mode %s is not enabled,
 * use other method instead." never applies.
 */
export function checkCalcDirtyRate(args: CalcDirtyRateArguments, measuring: boolean): DirtyRateConfig {
  if (measuring) throw genericError('the dirty rate is already being measured.');
  const calcTimeMs = convertTimeUnit(BigInt(args['calc-time']), args['calc-time-unit'] ?? 'second', 'millisecond');
  if (calcTimeMs < MIN_CALC_TIME_MS || calcTimeMs > MAX_CALC_TIME_MS) {
    throw genericError(`Calculation time is out of range [${MIN_CALC_TIME_MS}ms, ${MAX_CALC_TIME_MS}ms].`);
  }
  const mode = args.mode ?? 'page-sampling';
  const samplePages = args['sample-pages'];
  if (samplePages !== undefined && mode !== 'page-sampling') throw genericError('sample-pages is used only in page-sampling mode');
  if (samplePages !== undefined && (samplePages < MIN_SAMPLE_PAGE_COUNT || samplePages > MAX_SAMPLE_PAGE_COUNT)) {
    throw genericError(`sample-pages is out of range[${MIN_SAMPLE_PAGE_COUNT}, ${MAX_SAMPLE_PAGE_COUNT}].`);
  }
  return { calcTimeMs: Number(calcTimeMs), samplePagesPerGiB: Number(samplePages ?? DIRTYRATE_DEFAULT_SAMPLE_PAGES), mode };
}
