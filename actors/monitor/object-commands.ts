import { defineCommand, type QmpCommand } from '../../protocols/qmp/command.js';
import { qapi } from '../../protocols/qmp/schema.js';
import type { JsonObject } from '../../protocols/qmp/types.js';
import { OBJECT_ADD_ARGS } from '../objects/user-objects.js';
import type { MonitorHost } from './host.js';

/** QEMU's object-add and object-del, for the objects migration uses (TLS credentials, authorisation). */
export function objectCommands(host: MonitorHost): [string, QmpCommand][] {
  return [
    ['object-add', defineCommand({
      args: OBJECT_ADD_ARGS,
      run: (args) => {
        host.objects.add(args as JsonObject);
        return {};
      },
    })],
    ['object-del', defineCommand({
      args: qapi.object({ id: qapi.str }),
      run: ({ id }) => {
        host.objects.del(id);
        return {};
      },
    })],
  ];
}
