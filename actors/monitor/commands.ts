import type { QmpCommandTable } from '../../protocols/qmp/command.js';
import { DirtyRateMeasurement } from '../dirty-rate/measurement.js';
import type { MonitorHost } from './host.js';
import { faultCommands } from './fault-commands.js';
import { fdCommands } from './fd-commands.js';
import { announceCommands } from './announce-commands.js';
import { coloCommands } from './colo-commands.js';
import { convergenceCommands } from './convergence-commands.js';
import { dirtyRateCommands } from './dirty-rate-commands.js';
import { dirtyLimitCommands } from './dirty-limit-commands.js';
import { memoryCommands } from './memory-commands.js';
import { deviceCommands } from './device-commands.js';
import { objectCommands } from './object-commands.js';
import { yankCommands } from './yank-commands.js';
import { migrationCommands } from './migration-commands.js';
import { runControlCommands } from './run-control.js';
import { traceCommands } from './trace-commands.js';

/** Every QMP command an instance answers (the server adds qmp_capabilities, query-version, query-commands). */
export function monitorCommands(host: MonitorHost): QmpCommandTable {
  // calc-dirty-rate's last measurement is what query-convergence predicts from.
  const measurement = new DirtyRateMeasurement(host.guest, (message) => host.warn(message));
  return new Map([...runControlCommands(host), ...migrationCommands(host), ...coloCommands(host), ...memoryCommands(host), ...objectCommands(host), ...deviceCommands(host), ...yankCommands(host), ...traceCommands(host), ...dirtyLimitCommands(host), ...dirtyRateCommands(measurement), ...convergenceCommands(host, measurement), ...announceCommands(host), ...faultCommands(host), ...fdCommands(host)]);
}
