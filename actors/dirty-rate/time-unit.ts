import type { TimeUnit } from './types.js';

/** Decimal power of a time unit relative to one second (QEMU's time_unit_to_power). */
const POWER: Record<TimeUnit, number> = { second: 0, millisecond: -3 };

/**
 * A time from one unit to another, as QEMU's convert_time_unit does it: a
 * power of ten at a time, dividing with the remainder dropped (toward
 * zero). Exact on int64: a value that would not fit stays out of any range
 * checked against it.
 *
 * @example
 * convertTimeUnit(1500n, 'millisecond', 'second') === 1n
 */
export function convertTimeUnit(value: bigint, from: TimeUnit, to: TimeUnit): bigint {
  let power = POWER[from] - POWER[to];
  for (; power < 0; power++) value /= 10n;
  for (; power > 0; power--) value *= 10n;
  return value;
}
