/**
 * release-ram's primitive: guest RAM given back to the OS, through the
 * guest-memory addon (guest-memory-addon.ts). Freed memory reads as zero
 * afterwards, in every thread.
 */
import { addonMissing, guestMemoryAddon } from './guest-memory-addon.js';

/** Why release-ram cannot work here, or undefined when it can. */
export function releaseUnavailable(): string | undefined {
  return addonMissing();
}

/** Frees the whole OS pages inside `view` (guest memory); returns the bytes given back. */
export function releasePages(view: Uint8Array): number {
  const memory = guestMemoryAddon();
  if (!memory) throw new Error(addonMissing());
  return memory.releasePages(view);
}

/**
 * Where guest pages start in a slab of `bytes` bytes so that each lies on
 * whole OS pages (else releasing a page would free nothing): the slab,
 * allocated an OS page longer, and the offset into it. Without the addon
 * the slab is exactly `bytes` long, at offset 0 (release-ram is refused).
 */
export function pageAlignedSlab(bytes: number): { buffer: SharedArrayBuffer; offset: number } {
  const memory = guestMemoryAddon();
  if (!memory) return { buffer: new SharedArrayBuffer(bytes), offset: 0 };
  const buffer = new SharedArrayBuffer(bytes + memory.pageSize);
  return { buffer, offset: memory.pageOffset(new Uint8Array(buffer, 0, 1)) };
}
