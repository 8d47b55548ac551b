/** A second thread taking every page of a shared migration bitmap (spec/migration-bitmap.test.ts), counting those it got. */
import { parentPort, workerData } from 'node:worker_threads';
import { MigrationBitmap, type MigrationBitmapShared } from '../../actors/ram/migration-bitmap.js';

const { bitmap, counts, pages, go } = workerData as { bitmap: MigrationBitmapShared; counts: SharedArrayBuffer; pages: number; go: SharedArrayBuffer };
const taken = new Int32Array(counts);
const shared = new MigrationBitmap(bitmap);
// Both threads start together: ready, then wait for the go.
const start = new Int32Array(go);
parentPort!.postMessage('ready');
Atomics.wait(start, 0, 0);
for (let page = 0; page < pages; page++) if (shared.take(0, page)) Atomics.add(taken, page, 1);
parentPort!.postMessage('done');
