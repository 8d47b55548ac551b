/**
 * The project's small native addon for guest memory (native/guest-memory.c
 * beside this file, built by `npm ci`): what Node cannot do to memory by
 * itself, giving pages back to the OS (release-pages.ts) and faulting them
 * in ahead of use (populate-pages.ts).
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export interface GuestMemoryAddon {
  releasePages(view: Uint8Array): number;
  populatePages(view: Uint8Array): boolean;
  pageOffset(view: Uint8Array): number;
  readonly pageSize: number;
}

let addon: GuestMemoryAddon | undefined;
let missing: string | undefined;

/**
 * The addon sits in the package's build/Release. This module runs from its
 * source (actors/guest/) or inside a worker thread's bundle (under
 * node_modules/.cache), so it is looked for upwards from here.
 */
function addonPath(): string {
  const relative = join('build', 'Release', 'guest_memory.node');
  for (let dir = dirname(fileURLToPath(import.meta.url)); ; dir = dirname(dir)) {
    if (existsSync(join(dir, relative))) return join(dir, relative);
    if (dirname(dir) === dir) return relative;
  }
}

/** The addon, loaded once; undefined where it was not built (addonMissing says why). */
export function guestMemoryAddon(): GuestMemoryAddon | undefined {
  if (addon || missing) return addon;
  try {
    addon = createRequire(import.meta.url)(addonPath()) as GuestMemoryAddon;
  } catch (err) {
    missing = `the guest-memory addon is not built (npm ci builds it with node-gyp): ${(err as Error).message.split('\n')[0]}`;
  }
  return addon;
}

/** Why the addon could not be loaded, or undefined when it was. */
export function addonMissing(): string | undefined {
  guestMemoryAddon();
  return missing;
}
