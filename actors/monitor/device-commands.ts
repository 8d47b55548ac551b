/**
 * Devices that cannot be migrated (as a passthrough device in QEMU), as
 * livemig extensions: plugged at run time (or with --nonmigratable-device),
 * each is a migration blocker — `migrate` is refused with its reason and
 * query-migrate lists it in blocked-reasons — until it is unplugged.
 */
import { defineCommand, type QmpCommand } from '../../protocols/qmp/command.js';
import { genericError } from '../../protocols/qmp/errors.js';
import { EXTENSION_PREFIX } from '../../protocols/qmp/livemig-extensions.js';
import { qapi } from '../../protocols/qmp/schema.js';
import type { MonitorHost } from './host.js';

export function deviceCommands(host: MonitorHost): [string, QmpCommand][] {
  return [
    [`${EXTENSION_PREFIX}device-add`, defineCommand({
      args: qapi.object({ id: qapi.str, migratable: qapi.bool }),
      run: ({ id, migratable }) => {
        if (migratable) throw genericError(`${EXTENSION_PREFIX}device-add adds devices that cannot be migrated (migratable: false); a migratable one has nothing to add`);
        host.addNonMigratableDevice(id);
        return {};
      },
    })],
    [`${EXTENSION_PREFIX}device-del`, defineCommand({
      args: qapi.object({ id: qapi.str }),
      run: ({ id }) => {
        host.removeDevice(id);
        return {};
      },
    })],
  ];
}
