import { workerData } from 'node:worker_threads';
import { TARGET_PAGE_SIZE } from './constants.js';

for (const slabs of workerData as SharedArrayBuffer[][]) {
  for (const slab of slabs) {
    const words = new Int32Array(slab);
    for (let at = 0; at < words.length; at += TARGET_PAGE_SIZE / 4) Atomics.add(words, at, 0);
  }
}
