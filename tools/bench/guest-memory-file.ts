/**
 * The memory files a stopped QEMU source guest's RAM is mapped from, one per
 * size and fill, made once per bench run (unless released after a run): a
 * guest started with -S never writes its RAM, so every run can reuse its
 * file. `random` comes from
 * /dev/urandom; `compressible` is what livemig's `--fill compressible`
 * writes (compressible-fill.ts), page for page, so both engines migrate the
 * same bytes.
 */
import { createReadStream, createWriteStream, rmSync } from 'node:fs';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { fillCompressible } from '../../actors/guest/compressible-fill.js';
import { TARGET_PAGE_SIZE } from '../../actors/guest/constants.js';
import type { GuestFill } from '../../actors/guest/guest.js';
import { onTeardown } from './teardown.js';

export const SHM = '/dev/shm';
/** What is generated and written at a time. */
const CHUNK = 16 << 20;

const files = new Map<string, Promise<string>>();

const keyOf = (size: number, fill: GuestFill) => `${fill}-${size}`;
const pathOf = (key: string) => join(SHM, `livemig-bench-${process.pid}-${key}.mem`);

export function guestMemoryFile(size: number, fill: GuestFill): Promise<string> {
  const key = keyOf(size, fill);
  let file = files.get(key);
  if (!file) {
    const path = pathOf(key);
    onTeardown(() => rmSync(path, { force: true }));
    file = (fill === 'random' ? writeRandom(path, size) : writeCompressible(path, size)).then(
      () => path,
      (err: unknown) => {
        files.delete(key);
        throw err;
      },
    );
    files.set(key, file);
  }
  return file;
}

/**
 * Removes the file now rather than at teardown, once its run is over: a
 * file of a big guest would otherwise hold its RAM while the next pair
 * runs. The next run of that size and fill makes it afresh.
 */
export function releaseGuestMemoryFile(size: number, fill: GuestFill): void {
  const key = keyOf(size, fill);
  if (files.delete(key)) rmSync(pathOf(key), { force: true });
}

function writeRandom(path: string, size: number): Promise<void> {
  return pipeline(createReadStream('/dev/urandom', { start: 0, end: size - 1, highWaterMark: 4 << 20 }), createWriteStream(path));
}

function writeCompressible(path: string, size: number): Promise<void> {
  return pipeline(function* () {
    for (let at = 0; at < size; at += CHUNK) {
      const chunk = new Uint8Array(Math.min(CHUNK, size - at));
      fillCompressible(chunk, at / TARGET_PAGE_SIZE);
      yield chunk;
    }
  }, createWriteStream(path));
}
