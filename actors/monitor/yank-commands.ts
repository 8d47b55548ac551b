/**
 * yank and query-yank (QEMU's util/yank.c) for the one kind of instance a
 * livemig instance has: the migration, registered from `migrate` or
 * `migrate-incoming` until the migration is over. Yanking it shuts every
 * channel of the migration down at once, as QEMU's does: a migration stuck
 * on a dead link then fails, or in postcopy pauses, instead of waiting on
 * TCP. livemig's monitors are not chardevs, and it has no block nodes.
 */
import { defineCommand, type QmpCommand } from '../../protocols/qmp/command.js';
import { genericError, QmpError } from '../../protocols/qmp/errors.js';
import { NO_ARGUMENTS, qapi } from '../../protocols/qmp/schema.js';
import type { MonitorHost } from './host.js';

const INSTANCE_TYPES = ['block-node', 'chardev', 'migration'] as const;
type InstanceType = (typeof INSTANCE_TYPES)[number];

/** Each YankInstance branch's own member, besides `type`. */
const BRANCH_MEMBER: Record<InstanceType, string | undefined> = { 'block-node': 'node-name', chardev: 'id', migration: undefined };

/** QEMU's checks of one YankInstance (a union on `type`), with its texts. */
function checkInstance(instance: { type: InstanceType; 'node-name'?: string; id?: string }, index: number): void {
  const own = BRANCH_MEMBER[instance.type];
  for (const member of ['node-name', 'id'] as const) {
    if (member === own && instance[member] === undefined) throw genericError(`Parameter 'instances[${index}].${member}' is missing`);
    if (member !== own && instance[member] !== undefined) throw genericError(`Parameter 'instances[${index}].${member}' is unexpected`);
  }
}

export function yankCommands(host: MonitorHost): [string, QmpCommand][] {
  return [
    ['query-yank', defineCommand({
      args: NO_ARGUMENTS,
      run: () => (host.migrationYankable ? [{ type: 'migration' }] : []),
    })],
    ['yank', defineCommand({
      args: qapi.object({
        instances: qapi.array(qapi.object({ type: qapi.enumOf(INSTANCE_TYPES), 'node-name': qapi.optional(qapi.str), id: qapi.optional(qapi.str) })),
      }),
      run: ({ instances }) => {
        instances.forEach(checkInstance);
        // All named instances must exist before any is yanked (QEMU's order).
        if (instances.some((i) => i.type !== 'migration' || !host.migrationYankable)) throw new QmpError('DeviceNotFound', 'Instance not found');
        if (instances.length > 0) host.yankMigration();
        return {};
      },
    })],
  ];
}
