import type { QmpCommandTable } from '../../protocols/qmp/command.js';
import type { MonitorHost } from './host.js';
import { announceCommands } from './announce-commands.js';
import { coloCommands } from './colo-commands.js';
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
  return new Map([...runControlCommands(host), ...migrationCommands(host), ...coloCommands(host), ...memoryCommands(host), ...objectCommands(host), ...deviceCommands(host), ...yankCommands(host), ...traceCommands(host), ...dirtyLimitCommands(host), ...dirtyRateCommands(host), ...announceCommands(host)]);
}
