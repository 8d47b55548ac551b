/**
 * A destination's pre-fault primitive: guest RAM faulted in, writable,
 * without a byte changing, through the guest-memory addon
 * (guest-memory-addon.ts).
 */
import { guestMemoryAddon } from './guest-memory-addon.js';

/**
 * Faults in the whole OS pages inside `view`; false where that cannot be
 * done here (the addon not built, a kernel before 5.14), and then the
 * caller touches the pages itself.
 */
export function populatePages(view: Uint8Array): boolean {
  const memory = guestMemoryAddon();
  return memory !== undefined && memory.populatePages(view);
}
