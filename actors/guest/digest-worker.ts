import { createHash } from 'node:crypto';
import { parentPort, workerData } from 'node:worker_threads';
import { RamBlock, type RamBlockShared } from './ram-block.js';
import type { BlockDigest } from './digest.js';

const result: BlockDigest[] = (workerData as RamBlockShared[]).map((block) => {
  const hash = createHash('sha256');
  for (const slab of new RamBlock(block).slabs) hash.update(slab);
  return { block: block.name, size: block.size, sha256: hash.digest('hex') };
});
parentPort!.postMessage(result);
