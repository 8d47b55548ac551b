/**
 * Devices a migration must deal with, as livemig extensions:
 * - non-migratable devices (as a passthrough device in QEMU): plugged at run
 *   time (or with --nonmigratable-device), each is a migration blocker —
 *   `migrate` is refused with its reason and query-migrate lists it in
 *   blocked-reasons — until it is unplugged;
 * - failover primaries (`failover-pair-id`, as QEMU's failover_pair_id):
 *   not blockers, since a migration has the guest unplug them first
 *   (wait-unplug); `guest-unplug` stands for the guest's OS finishing it;
 * - on a destination, devices that hold the switchover until they are
 *   ready (switchover-ack): `device-ready` stands for the device saying so.
 */
import { defineCommand, type QmpCommand } from '../../protocols/qmp/command.js';
import { genericError } from '../../protocols/qmp/errors.js';
import { EXTENSION_PREFIX } from '../../protocols/qmp/livemig-extensions.js';
import { qapi } from '../../protocols/qmp/schema.js';
import { DEFAULT_DEVICE_DELAY_MS } from '../guest/device-timing.js';
import { NIC_NAME } from '../net/announce.js';
import type { MonitorHost } from './host.js';

export function deviceCommands(host: MonitorHost): [string, QmpCommand][] {
  return [
    [`${EXTENSION_PREFIX}device-add`, defineCommand({
      args: qapi.object({
        id: qapi.str,
        migratable: qapi.bool,
        'failover-pair-id': qapi.optional(qapi.str),
        // How long the guest's OS takes to unplug a failover primary (ms), or never by itself.
        'unplug-delay': qapi.optional(qapi.alternate('UnplugDelay', qapi.uint32, qapi.enumOf(['never']))),
      }),
      run: ({ id, migratable, 'failover-pair-id': pair, 'unplug-delay': delay }) => {
        if (migratable) throw genericError(`${EXTENSION_PREFIX}device-add adds devices that cannot be migrated (migratable: false); a migratable one has nothing to add`);
        if (pair === undefined) {
          if (delay !== undefined) throw genericError("'unplug-delay' is for a failover primary: give 'failover-pair-id' too");
          host.addNonMigratableDevice(id);
          return {};
        }
        if (pair !== NIC_NAME) throw genericError(`failover-pair-id '${pair}' names no network device of the guest (it has '${NIC_NAME}')`);
        host.addFailoverPrimary(id, delay === 'never' ? null : (delay ?? DEFAULT_DEVICE_DELAY_MS));
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
    [`${EXTENSION_PREFIX}guest-unplug`, defineCommand({
      args: qapi.object({ id: qapi.str }),
      run: ({ id }) => refusedAsGenericError(() => host.failoverPrimaries.guestUnplugged(id)),
    })],
    [`${EXTENSION_PREFIX}device-ready`, defineCommand({
      args: qapi.object({ id: qapi.str }),
      run: ({ id }) => refusedAsGenericError(() => host.switchoverAckDevices.ready(id)),
    })],
  ];
}

/** Runs a simulated device's step; its refusal (a plain Error, e.g. nothing asked of that device) is the command's GenericError. */
function refusedAsGenericError(step: () => void): Record<string, never> {
  try {
    step();
  } catch (err) {
    throw genericError((err as Error).message);
  }
  return {};
}
