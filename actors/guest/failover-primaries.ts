/**
 * Failover primary devices (QEMU's `failover_pair_id`): passthrough devices
 * paired with the guest's NIC, which cannot be migrated. A migration asks
 * the guest to unplug them and waits in `wait-unplug` until its OS has done
 * so (each unplug is QEMU's UNPLUG_PRIMARY event); a migration that then
 * fails or is cancelled plugs them back.
 *
 * The guest OS's answer is simulated: each device says how many ms its
 * guest takes to unplug it, or `null` for a guest that never does by itself
 * (`__org.livemig_guest-unplug` then stands for its OS finishing the unplug).
 */
type PrimaryState = 'plugged' | 'unplugging' | 'unplugged';

interface Primary {
  state: PrimaryState;
  unplugDelayMs: number | null;
  timer?: NodeJS.Timeout;
}

export class FailoverPrimaries {
  private readonly primaries = new Map<string, Primary>();
  private waiters: (() => void)[] = [];
  /** The devices the current migration asked the guest to unplug. */
  private requested = new Set<string>();

  /** @param unplugged the guest has unplugged `id` (UNPLUG_PRIMARY) */
  constructor(private readonly unplugged: (id: string) => void) {}

  add(id: string, unplugDelayMs: number | null): void {
    this.primaries.set(id, { state: 'plugged', unplugDelayMs });
  }

  has(id: string): boolean {
    return this.primaries.has(id);
  }

  remove(id: string): boolean {
    const primary = this.primaries.get(id);
    if (!primary) return false;
    clearTimeout(primary.timer);
    this.primaries.delete(id);
    this.wakeIfDone();
    return true;
  }

  /** A device is still plugged into the guest, or being unplugged: a migration must wait (QEMU's guest_unplug_pending). */
  get unplugPending(): boolean {
    return [...this.primaries.values()].some((p) => p.state !== 'unplugged');
  }

  /** Asks the guest to unplug every plugged device; resolves once none is left plugged. */
  unplugAll(): Promise<void> {
    this.requested = new Set();
    for (const [id, primary] of this.primaries) {
      if (primary.state !== 'plugged') continue;
      this.requested.add(id);
      primary.state = 'unplugging';
      if (primary.unplugDelayMs !== null) primary.timer = setTimeout(() => this.guestUnplugged(id), primary.unplugDelayMs);
    }
    if (!this.unplugPending) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  /**
   * The guest's OS has unplugged `id`.
   *
   * @throws Error when no unplug of `id` was asked for
   */
  guestUnplugged(id: string): void {
    const primary = this.primaries.get(id);
    if (primary?.state !== 'unplugging') throw new Error(`No unplug of device '${id}' was requested`);
    clearTimeout(primary.timer);
    primary.state = 'unplugged';
    this.unplugged(id);
    this.wakeIfDone();
  }

  /**
   * After a failed or cancelled migration: the unplugs it asked for are
   * withdrawn and those devices plugged back (ones a completed migration
   * unplugged before stay unplugged).
   */
  replug(): void {
    for (const id of this.requested) {
      const primary = this.primaries.get(id);
      if (!primary) continue;
      clearTimeout(primary.timer);
      primary.state = 'plugged';
    }
    this.requested = new Set();
    this.waiters = [];
  }

  private wakeIfDone(): void {
    if (this.unplugPending) return;
    const waiters = this.waiters;
    this.waiters = [];
    for (const wake of waiters) wake();
  }
}
