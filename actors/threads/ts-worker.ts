import { fileURLToPath } from 'node:url';
import { Worker, type WorkerOptions } from 'node:worker_threads';
import { buildSync } from 'esbuild';
import { BUNDLE_OPTIONS, storeBundle } from './bundle.js';

const bundles = new Map<string, URL>();

/**
 * A worker thread's TypeScript entry point as one plain-JS module, bundled
 * with esbuild once per process (a few tens of ms).
 *
 * Why: on Node 20 a worker thread cannot load a TypeScript entry through the
 * `--import tsx` of its process, and registering tsx inside each thread cost
 * ~0.4 s of CPU per thread here, which made every vCPU and multifd channel
 * slow to start.
 */
export function workerBundle(entry: URL): URL {
  const cached = bundles.get(entry.href);
  if (cached) return cached;
  const source = fileURLToPath(entry);
  const { outputFiles } = buildSync({ ...BUNDLE_OPTIONS, entryPoints: [source] });
  const url = storeBundle(source, outputFiles[0]!.contents);
  bundles.set(entry.href, url);
  return url;
}

/**
 * The Node.js options worker threads inherit: the process's own, without its
 * TypeScript loader. A thread inherits `--import tsx` and loads tsx again
 * (~50 ms per thread here) although a bundle needs no loader.
 */
export function workerExecArgv(): string[] {
  const args: string[] = [];
  const argv = process.execArgv;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (/^--(import|loader|experimental-loader|require)=.*tsx/.test(arg)) continue;
    if (/^(--import|--loader|--experimental-loader|--require|-r)$/.test(arg) && /tsx/.test(argv[i + 1] ?? '')) {
      i++;
      continue;
    }
    args.push(arg);
  }
  return args;
}

/** Starts a worker thread whose entry point is a TypeScript module. */
export function startTsWorker(entry: URL, options: WorkerOptions = {}): Worker {
  return new Worker(workerBundle(entry), { execArgv: workerExecArgv(), ...options });
}
