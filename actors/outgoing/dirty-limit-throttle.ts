/**
 * dirty-limit (QEMU's migration_dirty_limit_guest): when the throttle
 * trigger fires (the same one auto-converge waits for: throttle-trigger.ts),
 * every vCPU's dirty page rate is capped at vcpu-dirty-limit MB/s. A later
 * firing sets the cap again only if the parameter changed meanwhile, so it
 * is read live. When the migration ends the caps are cancelled, every
 * vCPU's, as QEMU's migration_cancel does; livemig does it however the
 * migration ends (completed, failed or cancelled), as it lifts
 * auto-converge's throttle.
 */
import type { VcpuDirtyLimits } from '../guest/dirty-limit.js';
import type { MigrationParameters } from '../options/parameters.js';
import { ThrottleTrigger } from './throttle-trigger.js';

type DirtyLimitParameters = Pick<MigrationParameters, 'throttle-trigger-threshold' | 'vcpu-dirty-limit'>;

/** What dirty-limit caps: the vCPUs' dirty page rates (the instance's VcpuDirtyLimits). */
export type DirtyLimiter = Pick<VcpuDirtyLimits, 'inService' | 'set' | 'cancel'>;

export class DirtyLimitThrottle {
  private readonly trigger: ThrottleTrigger;
  /** The quota this migration set last (QEMU's quota_dirtyrate). */
  private quota: bigint | undefined;
  private stopped = false;

  constructor(
    private readonly limits: DirtyLimiter,
    private readonly params: () => DirtyLimitParameters,
    now: number,
    transferred: number,
  ) {
    this.trigger = new ThrottleTrigger(() => this.params()['throttle-trigger-threshold'], now, transferred);
  }

  /** A dirty sync found `dirtiedPages` pages dirty; `transferred` bytes have gone so far. */
  onSync(now: number, dirtiedPages: number, transferred: number): void {
    if (this.stopped || !this.trigger.onSync(now, dirtiedPages, transferred)) return;
    const quota = this.params()['vcpu-dirty-limit'];
    if (this.limits.inService && quota === this.quota) return;
    this.quota = quota;
    this.limits.set(quota);
  }

  /** The migration is over, however it ended: no vCPU is limited any more. Only the first call acts. */
  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    this.limits.cancel();
  }
}
