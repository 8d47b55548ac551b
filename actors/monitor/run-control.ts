import { NO_ARGUMENTS } from '../../protocols/qmp/schema.js';
import { defineCommand, type QmpCommand } from '../../protocols/qmp/command.js';
import { genericError } from '../../protocols/qmp/errors.js';
import { inPostcopy } from '../../machines/status.js';
import type { MonitorHost } from './host.js';

/** stop, cont, query-status, quit: the guest's run control (QEMU's cpus/runstate commands). */
export function runControlCommands(host: MonitorHost): [string, QmpCommand][] {
  const guest = host.guest;
  return [
    ['query-status', defineCommand({
      args: NO_ARGUMENTS,
      run: () => ({ running: guest.running, singlestep: false, status: guest.runState }),
    })],
    ['stop', defineCommand({
      args: NO_ARGUMENTS,
      run: async () => {
        // A destination that has not loaded yet only forgets to autostart.
        if (guest.runState === 'inmigrate') host.setAutostart(false);
        else if (guest.running) await guest.stop('paused');
        return {};
      },
    })],
    ['cont', defineCommand({
      args: NO_ARGUMENTS,
      run: () => {
        if (guest.runState === 'inmigrate') {
          host.setAutostart(true);
          return {};
        }
        // Once postcopy started the guest runs on the destination (this copy is stale): running it here too would fork it.
        const postcopyStarted = inPostcopy(host.sourceStatus) || host.outgoing?.stats.inPostcopy === true;
        if (postcopyStarted && (guest.runState === 'finish-migrate' || guest.runState === 'postmigrate')) {
          throw genericError('Cannot continue a guest whose postcopy migration has started: it runs on the destination');
        }
        if (guest.runState === 'finish-migrate') {
          throw genericError('The guest is stopped for the migration switchover; it runs again when the migration completes, fails or is cancelled');
        }
        if (guest.runState === 'shutdown') throw genericError('Resetting the Virtual Machine is required');
        guest.start();
        return {};
      },
    })],
    ['quit', defineCommand({
      args: NO_ARGUMENTS,
      run: () => {
        // Answer first, then go: QEMU replies to quit before it exits.
        setImmediate(() => void host.shutdown(0));
        return {};
      },
    })],
  ];
}
