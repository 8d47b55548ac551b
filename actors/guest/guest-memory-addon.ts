/**
 * The project's small native addon for guest memory (native/guest-memory.c
 * beside this file, built by `npm ci`): what Node cannot do to memory by
 * itself, giving pages back to the OS (release-pages.ts) and faulting them
 * in ahead of use (populate-pages.ts).
 */
import { nativeAddon } from '../../protocols/native-addon.js';

export interface GuestMemoryAddon {
  releasePages(view: Uint8Array): number;
  populatePages(view: Uint8Array): boolean;
  pageOffset(view: Uint8Array): number;
  readonly pageSize: number;
}

/** The addon, loaded once; undefined where it was not built (addonMissing says why). */
export function guestMemoryAddon(): GuestMemoryAddon | undefined {
  return nativeAddon<GuestMemoryAddon>('guest_memory', 'guest-memory').addon;
}

/** Why the addon could not be loaded, or undefined when it was. */
export function addonMissing(): string | undefined {
  return nativeAddon<GuestMemoryAddon>('guest_memory', 'guest-memory').missing;
}
