import { Worker, type WorkerOptions } from 'node:worker_threads';

/**
 * Starts a worker thread whose entry point is a TypeScript module.
 *
 * On Node 20 the `--import tsx` a process was started with does not take
 * effect inside worker threads (their `.ts` imports fail with
 * ERR_UNKNOWN_FILE_EXTENSION), so the worker first registers tsx's loader
 * itself, then imports the real entry point.
 */
export function startTsWorker(entry: URL, options: WorkerOptions = {}): Worker {
  const bootstrap =
    `import('tsx/esm/api').then((tsx) => { tsx.register(); return import(${JSON.stringify(entry.href)}); })` +
    `.catch((err) => { process.nextTick(() => { throw err; }); });`;
  return new Worker(bootstrap, { ...options, eval: true });
}
