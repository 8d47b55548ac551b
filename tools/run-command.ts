import type { Command } from 'commander';
import { createLogger } from '../actors/instance/logger.js';
import { Instance, type InstanceConfig } from '../actors/instance/instance.js';
import { monitorCommands } from '../actors/monitor/commands.js';
import { QmpError } from '../protocols/qmp/errors.js';
import { livemigCommand } from './cli-options.js';
import { instanceConfig, withRunOptions } from './run-options.js';
import { logThreadRoles } from '../actors/threads/thread-role.js';

/** `livemig run`: start an instance and serve until quit, SIGINT or SIGTERM. */
export function runCommand(): Command {
  return withRunOptions(livemigCommand('run', 'livemig run'))
    .summary('start an instance (a guest and its QMP monitor)')
    .description('Starts one instance: a guest and its migration service, driven over QMP.')
    .action((_values, command: Command) => serve(instanceConfig(command)));
}

async function serve(config: InstanceConfig): Promise<void> {
  const log = createLogger('livemig');
  // Handlers go in before anything opens: a signal during start-up is acted
  // on once the instance exists, so no socket file is left behind.
  let instance: Instance | undefined;
  let pendingSignal: NodeJS.Signals | undefined;
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      log.info({ signal }, 'shutting down');
      if (instance) void instance.shutdown(0);
      else pendingSignal = signal;
    });
  }
  try {
    instance = await Instance.start(config, { log, commands: monitorCommands });
  } catch (err) {
    // A --cap/--param value QEMU would refuse is a usage error too.
    const usage = err instanceof QmpError;
    console.error(`livemig run: ${(err as Error).message}`);
    process.exit(usage ? 2 : 1);
  }
  log.info({ ram: config.guest.ram, smp: config.guest.smp, workload: config.guest.workload, runState: instance.guest.runState }, 'instance started');
  logThreadRoles((message, fields) => log.info(fields, message), 'vcpu', instance.guest.vcpuThreads());
  if (pendingSignal) void instance.shutdown(0);
}
