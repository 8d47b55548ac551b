/**
 * Destination devices that must load their initial precopy data before the
 * switchover (as QEMU's VFIO devices with switchover-ack): with the
 * capability, the destination acknowledges the switchover (SWITCHOVER_ACK)
 * only once every one of them is ready.
 *
 * Readiness is simulated: each device is ready a given number of ms after
 * the incoming migration starts, or (`null`) only when
 * `__org.livemig_device-ready` says it is.
 */
interface AckDevice {
  readyDelayMs: number | null;
  ready: boolean;
  timer?: NodeJS.Timeout;
}

export class SwitchoverAckDevices {
  private readonly devices = new Map<string, AckDevice>();
  private waiters: (() => void)[] = [];

  add(id: string, readyDelayMs: number | null): void {
    this.devices.set(id, { readyDelayMs, ready: false });
  }

  /** An incoming migration starts: every device loads its initial data anew. */
  start(): void {
    for (const [id, device] of this.devices) {
      clearTimeout(device.timer);
      device.ready = false;
      if (device.readyDelayMs !== null) device.timer = setTimeout(() => this.ready(id), device.readyDelayMs);
    }
  }

  /** Resolves once every device is ready (at once when there are none). */
  allReady(): Promise<void> {
    if (this.pending() === 0) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  /** Devices not ready yet (QEMU's switchover_ack_pending_num). */
  private pending(): number {
    return [...this.devices.values()].filter((d) => !d.ready).length;
  }

  /**
   * `id` has loaded its initial data.
   *
   * @throws Error when there is no such device
   */
  ready(id: string): void {
    const device = this.devices.get(id);
    if (!device) throw new Error(`Device '${id}' does not hold the switchover`);
    clearTimeout(device.timer);
    device.ready = true;
    if (this.pending() > 0) return;
    const waiters = this.waiters;
    this.waiters = [];
    for (const wake of waiters) wake();
  }

  /** The incoming migration ended: no timer may outlive it, and nobody waits any more. */
  stop(): void {
    for (const device of this.devices.values()) clearTimeout(device.timer);
    this.waiters = [];
  }
}
