import { createHash } from 'node:crypto';
import { parentPort, workerData } from 'node:worker_threads';
import type { RamBlockShared } from './ram-block.js';
import type { BlockDigest } from './digest.js';

const result: BlockDigest[] = (workerData as RamBlockShared[]).map((block) => {
  const hash = createHash('sha256');
  for (const slab of block.slabs) hash.update(new Uint8Array(slab));
  return { block: block.name, size: block.size, sha256: hash.digest('hex') };
});
parentPort!.postMessage(result);
