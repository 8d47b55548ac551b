import {
  DEFAULT_CAPABILITIES, applyCapabilities, type MigrationCapabilities, type MigrationCapabilityStatus,
} from './capabilities.js';
import { DEFAULT_PARAMETERS, applyParameters, type MigrateSetParameters, type MigrationParameters } from './parameters.js';

/**
 * An instance's migration capabilities and parameters (QEMU's MigrationState
 * capabilities + parameters), with live reads for a running migration.
 */
export class MigrationOptions {
  caps: MigrationCapabilities = DEFAULT_CAPABILITIES;
  params: Readonly<MigrationParameters> = DEFAULT_PARAMETERS;

  /** migrate-set-capabilities; `running` is QEMU's migration_is_running or COLO. */
  setCapabilities(changes: readonly MigrationCapabilityStatus[], ctx: { running: boolean; incomingStarted: boolean; warn?: (m: string) => void }): void {
    this.caps = applyCapabilities(this.caps, changes, {
      migrationRunning: ctx.running,
      incomingStarted: ctx.incomingStarted,
      parameters: this.params,
      ...(ctx.warn ? { warn: ctx.warn } : {}),
    });
  }

  /** migrate-set-parameters: allowed while migrating; the live ones are read at every use. */
  setParameters(set: MigrateSetParameters): void {
    this.params = applyParameters(this.params, set, { zeroCopySend: this.caps['zero-copy-send'] });
  }

  /** max-bandwidth in bytes/s (values beyond 2^53 mean "no practical limit"). */
  maxBandwidth(): number {
    return Number(this.params['max-bandwidth']);
  }

  downtimeLimit(): number {
    return Number(this.params['downtime-limit']);
  }

  availSwitchoverBandwidth(): number {
    return Number(this.params['avail-switchover-bandwidth']);
  }

  /** Whether a migration will open connections beside the main one (multifd, postcopy-preempt), so its URI must allow it. */
  needsSeveralChannels(): boolean {
    return this.caps.multifd || this.caps['postcopy-preempt'];
  }

  /** The capabilities that are on, as the migration actors take them. */
  enabled(): Record<string, boolean> {
    return { ...this.caps };
  }
}
