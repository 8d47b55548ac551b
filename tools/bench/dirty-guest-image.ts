/**
 * The boot image of QEMU's dirtying guest, assembled from
 * qemu-dirty-guest/dirty.asm with nasm (which qemu-setup.ts installs) into
 * the bench's cache, once per version of the source.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const SOURCE = fileURLToPath(new URL('./qemu-dirty-guest/dirty.asm', import.meta.url));
const CACHE = fileURLToPath(new URL('../../node_modules/.cache/livemig-bench/', import.meta.url));
const BOOT_SECTOR_BYTES = 512;

/** The image's path, assembling it first when the cache lacks this version. */
export function dirtyGuestImage(): string {
  const version = createHash('sha256').update(readFileSync(SOURCE)).digest('hex').slice(0, 16);
  const image = join(CACHE, `dirty-guest-${version}.img`);
  if (existsSync(image)) return image;
  mkdirSync(CACHE, { recursive: true });
  const partial = `${image}.${process.pid}`;
  const r = spawnSync('nasm', ['-f', 'bin', '-o', partial, SOURCE], { encoding: 'utf8', timeout: 30_000 });
  if (r.error) throw new Error(`could not run nasm to build the dirtying guest: ${r.error.message}`);
  if (r.status !== 0) throw new Error(`nasm could not assemble ${SOURCE}: ${r.stderr.trim()}`);
  const size = readFileSync(partial).length;
  if (size !== BOOT_SECTOR_BYTES) throw new Error(`nasm built a ${size}-byte image from ${SOURCE}; a boot sector is ${BOOT_SECTOR_BYTES}`);
  renameSync(partial, image);
  return image;
}
