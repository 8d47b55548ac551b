/**
 * release-ram's primitive: guest RAM given back to the OS, through the
 * project's small native addon (native/guest-memory.c beside this file, built by `npm ci`).
 * Freed memory reads as zero afterwards, in every thread.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

interface GuestMemoryAddon {
  releasePages(view: Uint8Array): number;
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

function load(): GuestMemoryAddon | undefined {
  if (addon || missing) return addon;
  try {
    addon = createRequire(import.meta.url)(addonPath()) as GuestMemoryAddon;
  } catch (err) {
    missing = `the guest-memory addon is not built (npm ci builds it with node-gyp): ${(err as Error).message.split('\n')[0]}`;
  }
  return addon;
}

/** Why release-ram cannot work here, or undefined when it can. */
export function releaseUnavailable(): string | undefined {
  load();
  return missing;
}

/** Frees the whole OS pages inside `view` (guest memory); returns the bytes given back. */
export function releasePages(view: Uint8Array): number {
  const memory = load();
  if (!memory) throw new Error(missing);
  return memory.releasePages(view);
}

/**
 * Where guest pages start in a slab of `bytes` bytes so that each lies on
 * whole OS pages (else releasing a page would free nothing): the slab,
 * allocated an OS page longer, and the offset into it. Without the addon
 * the slab is exactly `bytes` long, at offset 0 (release-ram is refused).
 */
export function pageAlignedSlab(bytes: number): { buffer: SharedArrayBuffer; offset: number } {
  const memory = load();
  if (!memory) return { buffer: new SharedArrayBuffer(bytes), offset: 0 };
  const buffer = new SharedArrayBuffer(bytes + memory.pageSize);
  return { buffer, offset: memory.pageOffset(new Uint8Array(buffer, 0, 1)) };
}
