import { createLogger } from '../actors/instance/logger.js';
import { Instance } from '../actors/instance/instance.js';
import { QmpError } from '../protocols/qmp/errors.js';
import { RUN_HELP, UsageError, parseRunOptions } from './run-options.js';

/** `livemig run`: start an instance and serve until quit, SIGINT or SIGTERM. */
export async function runCommand(argv: string[]): Promise<void> {
  let config;
  try {
    config = parseRunOptions(argv);
  } catch (err) {
    if (err instanceof UsageError) {
      console.error(`livemig run: ${err.message}`);
      process.exit(2);
    }
    throw err;
  }
  if (config === 'help') {
    console.log(RUN_HELP);
    return;
  }
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
    instance = await Instance.start(config, log);
  } catch (err) {
    // A --cap/--param value QEMU would refuse is a usage error too.
    const usage = err instanceof QmpError;
    console.error(`livemig run: ${(err as Error).message}`);
    process.exit(usage ? 2 : 1);
  }
  log.info({ ram: config.guest.ram, smp: config.guest.smp, workload: config.guest.workload, runState: instance.guest.runState }, 'instance started');
  if (pendingSignal) void instance.shutdown(0);
}
