import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { Worker, type WorkerOptions } from 'node:worker_threads';
import { BUNDLE_OPTIONS, storeBundle } from './bundle.js';
import { PREBUILT_WORKERS } from './prebuilt-workers.js';

const bundles = new Map<string, URL>();

/**
 * A worker thread's TypeScript entry point as one plain-JS module: built
 * ahead of time in a bundled program, else bundled with esbuild once per
 * process (a few tens of ms).
 *
 * Why: on Node 20 a worker thread cannot load a TypeScript entry through the
 * `--import tsx` of its process, and registering tsx inside each thread cost
 * ~0.4 s of CPU per thread here, which made every vCPU and multifd channel
 * slow to start.
 */
export function workerBundle(entry: URL): URL {
  let url = bundles.get(entry.href);
  if (!url) {
    const prebuilt = PREBUILT_WORKERS[entry.href];
    url = prebuilt ? new URL(prebuilt) : bundleNow(fileURLToPath(entry));
    bundles.set(entry.href, url);
  }
  return url;
}

/**
 * esbuild is loaded only when a thread has to be bundled: its module and the
 * service thread its synchronous API keeps cost a process ~20 MB of RSS
 * (measured here), too much to carry next to a guest for nothing.
 */
function bundleNow(source: string): URL {
  const { buildSync } = createRequire(import.meta.url)('esbuild') as typeof import('esbuild');
  const { outputFiles } = buildSync({ ...BUNDLE_OPTIONS, entryPoints: [source] });
  return storeBundle(source, outputFiles[0]!.contents);
}

let execArgv: string[] | undefined;

/**
 * The Node.js options worker threads inherit: the process's own, without its
 * TypeScript loader (a thread inherits `--import tsx` and loads tsx again,
 * ~50 ms per thread here, although a bundle needs no loader) and without
 * the options Node refuses for a thread (V8's and per-process ones, such as
 * `--max-old-space-size`: they hold for every thread anyway). Worked out
 * once per process.
 */
export function workerExecArgv(): string[] {
  execArgv ??= acceptedByWorkers(withoutTsLoader(process.execArgv));
  return execArgv;
}

function withoutTsLoader(argv: readonly string[]): string[] {
  const args: string[] = [];
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

/**
 * `args` less those Node would refuse in a thread. Node says which only by
 * refusing them, so one empty thread is tried (and ended at once) when
 * there are options at all.
 */
function acceptedByWorkers(args: string[]): string[] {
  if (args.length === 0) return args;
  try {
    const probe = new Worker('', { eval: true, execArgv: args });
    // An accepted --import or --require may still throw in the empty thread: not our concern here.
    probe.on('error', () => {});
    void probe.terminate();
    return args;
  } catch (err) {
    const { code, message } = err as NodeJS.ErrnoException;
    if (code !== 'ERR_WORKER_INVALID_EXEC_ARGV') throw err;
    // "Initiated Worker with invalid execArgv flags: --a, --b"
    const refused = new Set(message.slice(message.indexOf(': ') + 2).split(', '));
    return args.filter((arg) => !refused.has(arg));
  }
}

/** Starts a worker thread whose entry point is a TypeScript module. */
export function startTsWorker(entry: URL, options: WorkerOptions = {}): Worker {
  return new Worker(workerBundle(entry), { execArgv: workerExecArgv(), ...options });
}
