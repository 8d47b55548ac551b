/**
 * Fault injection for fault campaigns (spec/chaos): a multifd channel's
 * thread killed, which nothing outside the process can do to one thread
 * (a signal ends the whole process). The command is always in the table,
 * so a client learns why it is refused; it acts only on an instance started
 * with --fault-injection.
 */
import { defineCommand, type QmpCommand } from '../../protocols/qmp/command.js';
import { KILL_MULTIFD_THREAD_COMMAND } from '../../protocols/qmp/livemig-extensions.js';
import { qapi } from '../../protocols/qmp/schema.js';
import type { MonitorHost } from './host.js';

export function faultCommands(host: MonitorHost): [string, QmpCommand][] {
  return [
    [KILL_MULTIFD_THREAD_COMMAND, defineCommand({
      args: qapi.object({ channel: qapi.uint8 }),
      run: ({ channel }) => {
        host.killMultifdThread(channel);
        return {};
      },
    })],
  ];
}
