/**
 * calc-dirty-rate and query-dirty-rate (QEMU 8.2's, migration/dirtyrate.c):
 * the guest's dirty page rate measured over a time, by page-sampling,
 * dirty-bitmap or dirty-ring, with or without a migration running
 * (actors/dirty-rate/).
 */
import { defineCommand, type QmpCommand } from '../../protocols/qmp/command.js';
import { qapi } from '../../protocols/qmp/schema.js';
import { checkCalcDirtyRate } from '../dirty-rate/config.js';
import type { DirtyRateMeasurement } from '../dirty-rate/measurement.js';
import { DIRTY_RATE_MODES, TIME_UNITS } from '../dirty-rate/types.js';

export function dirtyRateCommands(measurement: DirtyRateMeasurement): [string, QmpCommand][] {
  return [
    ['calc-dirty-rate', defineCommand({
      args: qapi.object({
        'calc-time': qapi.int,
        'calc-time-unit': qapi.optional(qapi.enumOf(TIME_UNITS)),
        'sample-pages': qapi.optional(qapi.int),
        mode: qapi.optional(qapi.enumOf(DIRTY_RATE_MODES)),
      }),
      run: (args) => {
        measurement.start(checkCalcDirtyRate(args, measurement.status === 'measuring'));
        return {};
      },
    })],
    ['query-dirty-rate', defineCommand({
      args: qapi.object({ 'calc-time-unit': qapi.optional(qapi.enumOf(TIME_UNITS)) }),
      run: ({ 'calc-time-unit': unit }) => measurement.query(unit ?? 'second'),
    })],
  ];
}
