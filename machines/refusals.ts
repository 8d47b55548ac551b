/**
 * Why a command is refused in a status, with QEMU 8.2's texts. The machines'
 * guards take a command only when its refusal is null, and the monitor
 * answers a refused command with the same text, so the two cannot disagree.
 */
import type { MigrateCommand, MigrateIncomingCommand } from './events.js';
import { inPostcopy, isRunning, type MigrationStatus } from './status.js';

/** QEMU's QERR_MIGRATION_ACTIVE, also `migrate-set-capabilities`' refusal while running. */
export const migrationActive = "There's a migration process in progress";

/** QMP `migrate` (migrate_prepare's checks, in its order). */
export function refuseMigrate(
  status: MigrationStatus,
  command: Pick<MigrateCommand, 'resume' | 'runState' | 'blockers' | 'capabilities'>,
): string | null {
  if (command.resume) {
    if (status !== 'postcopy-paused') return 'Cannot resume if there is no paused migration';
    // Pages released after sending may never have reached the destination.
    if (command.capabilities['release-ram'] === true) {
      return 'Postcopy recovery cannot work when release-ram capability is set';
    }
    return null;
  }
  // QEMU's migration_is_running leaves colo out; livemig does not let a second migration start over a COLO pair.
  if (isRunning(status) || status === 'colo') return migrationActive;
  if (command.runState === 'inmigrate') return 'Guest is waiting for an incoming migration';
  if (command.runState === 'postmigrate') {
    return "Can't migrate the vm that was paused due to previous migration";
  }
  const blocker = command.blockers[0];
  if (blocker !== undefined) return blocker;
  return null;
}

/** QMP `migrate-continue`: accepted (if pointless) whenever `state` is the current status. */
export function refuseMigrateContinue(status: MigrationStatus, state: MigrationStatus): string | null {
  return status === state ? null : `Migration not in expected state: ${status}`;
}

/**
 * QMP `migrate_cancel`. QEMU cancels in any status, silently doing nothing
 * when idle. livemig refuses it in postcopy (DESIGN §10): the destination
 * already runs the guest, and cancelling would throw its state away.
 */
export function refuseMigrateCancel(status: MigrationStatus): string | null {
  if (!inPostcopy(status)) return null;
  return `Cannot cancel a migration in ${status}: the guest already runs on the destination, and only the destination has its latest state`;
}

/**
 * QMP `migrate-start-postcopy` (QEMU 8.2's checks): postcopy must be on, and
 * a migration started. Otherwise it only asks the migration to switch, and
 * is accepted (if pointless) once the migration is over, as in QEMU.
 */
export function refuseMigrateStartPostcopy(status: MigrationStatus, postcopyRam: boolean): string | null {
  if (!postcopyRam) return 'Enable postcopy with migrate_set_capability before the start of migration';
  if (status === 'none') return 'Postcopy must be started after migration has been started';
  return null;
}

/** QMP `migrate-pause`, on whichever side is in postcopy-active or postcopy-recover (the source first, as QEMU looks). */
export function refuseMigratePause(source: MigrationStatus, destination: MigrationStatus): string | null {
  const pausable = (status: MigrationStatus) => status === 'postcopy-active' || status === 'postcopy-recover';
  if (pausable(source) || pausable(destination)) return null;
  return 'migrate-pause is currently only supported during postcopy-active or postcopy-recover state';
}

/**
 * QMP `migrate-recover` (destination). As in QEMU 8.2, a second one while
 * the first still waits for the source replaces it (the source may not
 * reach the first address); QEMU before 6.0 refused it as "triggered already".
 */
export function refuseMigrateRecover(status: MigrationStatus): string | null {
  if (status !== 'postcopy-paused') return 'Migrate recover can only be run when postcopy is paused.';
  return null;
}

/** QMP `migrate-incoming` (or `--incoming` at start); one incoming migration per process. */
export function refuseMigrateIncoming(
  status: MigrationStatus,
  command: Pick<MigrateIncomingCommand, 'runState'>,
): string | null {
  if (status !== 'none') return 'The incoming migration has already been started';
  if (command.runState !== 'inmigrate') return "'-incoming' was not specified on the command line";
  return null;
}

/**
 * QMP `x-colo-lost-heartbeat`: only in COLO (the source as primary, or the
 * destination as secondary); QEMU's QERR_FEATURE_DISABLED otherwise.
 */
export function refuseXColoLostHeartbeat(source: MigrationStatus, destination: MigrationStatus): string | null {
  if (source === 'colo' || destination === 'colo') return null;
  return "The feature 'colo' is not enabled";
}

/** livemig's `colo-checkpoint`: the primary takes checkpoints, so only a source in colo. */
export function refuseColoCheckpoint(source: MigrationStatus): string | null {
  return source === 'colo' ? null : 'A COLO checkpoint is taken by the primary: this instance is not one';
}
