/**
 * The migration status a query-migrate answer stands for. QEMU leaves
 * `status` out until something started, and also while a destination only
 * listens (its incoming state is still none, though its MIGRATION event
 * said `setup`): then the answer holds just `socket-address`.
 *
 * @example statusOfQueryMigrate({ 'socket-address': [{ type: 'unix', path: '/tmp/m' }] }) // 'setup'
 */
export function statusOfQueryMigrate(info: { status?: unknown; 'socket-address'?: unknown }): string {
  if (typeof info.status === 'string') return info.status;
  return info['socket-address'] === undefined ? 'none' : 'setup';
}
