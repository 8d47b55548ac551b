import type { QmpCommandTable } from '../../protocols/qmp/command.js';
import type { Instance } from '../instance/instance.js';
import { memoryCommands } from './memory-commands.js';
import { migrationCommands } from './migration-commands.js';
import { runControlCommands } from './run-control.js';
import { traceCommands } from './trace-commands.js';

/** Every QMP command an instance answers (the server adds qmp_capabilities, query-version, query-commands). */
export function monitorCommands(instance: Instance): QmpCommandTable {
  return new Map([...runControlCommands(instance), ...migrationCommands(instance), ...memoryCommands(instance), ...traceCommands(instance)]);
}
