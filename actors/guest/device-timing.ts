/**
 * A simulated device and how long the guest (or the device) takes to do
 * what a migration asks of it: `ID` alone, `ID:MS`, or `ID:never` (then
 * only a monitor command does it). Used by --failover-primary (how long the
 * guest's OS takes to unplug it) and --switchover-ack-device (how long the
 * device takes to load its initial data).
 */
export interface DeviceTiming {
  id: string;
  /** null: never by itself. */
  delayMs: number | null;
}

/** When `ID` comes alone. */
export const DEFAULT_DEVICE_DELAY_MS = 100;

/** @throws Error naming what is wrong with `text` */
export function parseDeviceTiming(text: string): DeviceTiming {
  const at = text.lastIndexOf(':');
  const id = at < 0 ? text : text.slice(0, at);
  const delay = at < 0 ? undefined : text.slice(at + 1);
  if (!/^[A-Za-z][A-Za-z0-9._-]*$/.test(id)) {
    throw new Error(`'${id}' is not a device ID: it starts with a letter and has letters, digits, '.', '_' and '-' only`);
  }
  if (delay === undefined) return { id, delayMs: DEFAULT_DEVICE_DELAY_MS };
  if (delay === 'never') return { id, delayMs: null };
  if (!/^\d{1,9}$/.test(delay)) throw new Error(`'${delay}' after '${id}:' is neither a delay in ms nor 'never'`);
  return { id, delayMs: Number(delay) };
}
