import { createHash } from 'node:crypto';
import { startTsWorker } from '../threads/ts-worker.js';
import type { RamBlock } from './ram-block.js';

export interface BlockDigest {
  block: string;
  size: number;
  sha256: string;
}

/**
 * SHA-256 of every RAM block, computed in a worker thread so the monitor keeps
 * answering while gigabytes are hashed (≈1.7 GB/s here). Both sides of a
 * migration compute the same digest over the same bytes.
 */
export function digestBlocks(blocks: readonly RamBlock[]): Promise<BlockDigest[]> {
  return new Promise((resolve, reject) => {
    const worker = startTsWorker(new URL('./digest-worker.ts', import.meta.url), {
      workerData: blocks.map((b) => b.shared),
    });
    worker.once('message', (result: BlockDigest[]) => resolve(result));
    worker.once('error', reject);
    worker.once('exit', (code) => {
      if (code !== 0) reject(new Error(`digest worker exited with code ${code}`));
    });
  });
}

/**
 * The same digests, worked out on the calling thread: for a guest that is
 * stopped anyway, where starting a worker would cost more than hashing
 * (a COLO checkpoint with --colo-digests).
 */
export function digestBlocksHere(blocks: readonly RamBlock[]): BlockDigest[] {
  return blocks.map((block) => {
    const hash = createHash('sha256');
    for (const slab of block.slabs) hash.update(slab);
    return { block: block.name, size: block.size, sha256: hash.digest('hex') };
  });
}

/** Every block's digest in one string, `name:sha256` joined by commas: two guests with equal RAM have equal texts. */
export function digestText(digests: readonly BlockDigest[]): string {
  return digests.map((d) => `${d.block}:${d.sha256}`).join(',');
}
