import { createHash } from 'node:crypto';
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Worker, type WorkerOptions } from 'node:worker_threads';
import { buildSync } from 'esbuild';

/** Where worker bundles go: inside node_modules, so their package imports resolve. */
const BUNDLE_DIR = fileURLToPath(new URL('../../node_modules/.cache/livemig-workers/', import.meta.url));
const bundles = new Map<string, URL>();

/**
 * A worker thread's TypeScript entry point as one plain-JS module, bundled
 * with esbuild once per process (a few tens of ms).
 *
 * Why: on Node 20 the `--import tsx` a process runs with does not reach its
 * worker threads, and registering tsx inside each thread cost ~0.4 s of CPU
 * per thread here, which made every vCPU and multifd channel slow to start.
 * Packages stay external and load from node_modules as usual.
 */
export function workerBundle(entry: URL): URL {
  const cached = bundles.get(entry.href);
  if (cached) return cached;
  const source = fileURLToPath(entry);
  const { outputFiles } = buildSync({
    entryPoints: [source],
    bundle: true,
    format: 'esm',
    platform: 'node',
    target: 'node20',
    packages: 'external',
    write: false,
    logLevel: 'silent',
  });
  const code = outputFiles[0]!.contents;
  const name = `${source.split('/').pop()!.replace(/\.ts$/, '')}-${createHash('sha256').update(code).digest('hex').slice(0, 16)}.mjs`;
  const out = join(BUNDLE_DIR, name);
  mkdirSync(BUNDLE_DIR, { recursive: true });
  // Several instances may bundle at once: write aside, then rename into place.
  const scratch = `${out}.${process.pid}.tmp`;
  writeFileSync(scratch, code);
  renameSync(scratch, out);
  const url = pathToFileURL(out);
  bundles.set(entry.href, url);
  return url;
}

/** Starts a worker thread whose entry point is a TypeScript module. */
export function startTsWorker(entry: URL, options: WorkerOptions = {}): Worker {
  return new Worker(workerBundle(entry), options);
}
