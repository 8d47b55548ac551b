/**
 * QEMU 8.2's MigrationStatus, in QAPI order, and the groupings migration.c
 * decides with. Both statecharts name their states after these values.
 */
export const migrationStatuses = [
  'none',
  'setup',
  'cancelling',
  'cancelled',
  'active',
  'postcopy-active',
  'postcopy-paused',
  'postcopy-recover',
  'completed',
  'failed',
  'colo',
  'pre-switchover',
  'device',
  'wait-unplug',
] as const;

export type MigrationStatus = (typeof migrationStatuses)[number];

/** True for a QAPI MigrationStatus name, e.g. `migrate-continue`'s `state`. */
export function isMigrationStatus(value: string): value is MigrationStatus {
  return (migrationStatuses as readonly string[]).includes(value);
}

/** The statuses in which a migration holds the guest's state: the core of QEMU's groupings below. */
const MIGRATING: ReadonlySet<MigrationStatus> = new Set<MigrationStatus>([
  'setup', 'wait-unplug', 'active', 'pre-switchover', 'device', 'postcopy-active', 'postcopy-paused', 'postcopy-recover',
]);

/** QEMU's migration_is_setup_or_active: the migration holds the guest's state (includes colo). */
export function isSetupOrActive(status: MigrationStatus): boolean {
  return MIGRATING.has(status) || status === 'colo';
}

/**
 * QEMU's migration_is_running: "a migration is in progress" for `migrate`,
 * `migrate_cancel` and `migrate-set-capabilities`. Unlike isSetupOrActive it
 * counts cancelling (cleanup still owns the channels) and not colo.
 */
export function isRunning(status: MigrationStatus): boolean {
  return MIGRATING.has(status) || status === 'cancelling';
}

/** QEMU's migration_is_idle: nothing started, or the last migration is over. */
export function isIdle(status: MigrationStatus): boolean {
  switch (status) {
    case 'none':
    case 'cancelled':
    case 'completed':
    case 'failed':
      return true;
    default:
      return false;
  }
}

/** QEMU's migration_in_postcopy: past the point of no return. */
export function inPostcopy(status: MigrationStatus): boolean {
  return status === 'postcopy-active' || status === 'postcopy-paused' || status === 'postcopy-recover';
}

/** QEMU's migration_has_failed: ended without moving the guest. */
export function hasFailed(status: MigrationStatus): boolean {
  return status === 'cancelled' || status === 'failed';
}
