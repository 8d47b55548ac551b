/**
 * `livemig` as one plain-JS module, for the instances the demo, the bench
 * and the integration tests start: run by plain `node`, without tsx, whose
 * loader costs every process ~48 MB of RSS and a thread of its own (measured
 * here) — too much next to a guest's RAM. Built with esbuild once per
 * process, with every worker thread's bundle built beside it, so the
 * program never loads esbuild itself (~20 MB more: actors/threads/ts-worker.ts).
 */
import { readFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { build, type Plugin } from 'esbuild';
import { BUNDLE_OPTIONS, storeBundle } from '../actors/threads/bundle.js';

const ENTRY = fileURLToPath(new URL('./livemig.ts', import.meta.url));
const TOOLS_DIR = fileURLToPath(new URL('./', import.meta.url));
const PREBUILT_MODULE = fileURLToPath(new URL('../actors/threads/prebuilt-workers.ts', import.meta.url));
/**
 * How a module names a worker thread's entry point: `new URL('./x-worker.ts',
 * import.meta.url)`. Worker bundles are not searched in turn: a thread that
 * started threads of its own would bundle them at run time (the footprint
 * test would see esbuild run).
 */
const WORKER_ENTRY = /new URL\((['"])(\.{1,2}\/[^'"]+\.ts)\1, import\.meta\.url\)/g;

/**
 * Each module keeps its own `import.meta.url` (its source file's), so the
 * `new URL('./vcpu-worker.ts', import.meta.url)` of a bundled module still
 * names its worker's source; the worker entries met on the way are added to
 * `workers`, and the prebuilt-workers module becomes `prebuilt`.
 */
function programModules(workers: Set<string>, prebuilt: Record<string, string>): Plugin {
  return {
    name: 'livemig-program-modules',
    setup(b) {
      b.onLoad({ filter: /\.ts$/ }, async (args) => {
        if (args.path === PREBUILT_MODULE) {
          return { contents: `export const PREBUILT_WORKERS = ${JSON.stringify(prebuilt)};`, loader: 'ts' };
        }
        const contents = await readFile(args.path, 'utf8');
        for (const m of contents.matchAll(WORKER_ENTRY)) workers.add(resolve(dirname(args.path), m[2]!));
        return { contents: contents.replaceAll('import.meta.url', JSON.stringify(pathToFileURL(args.path).href)), loader: 'ts' };
      });
    },
  };
}

/**
 * The bundle is for instances (`livemig run`). The other commands import
 * their heavy parts when they run (the viz server with Graphviz, the
 * progress bar, the bench): those imports stay out of the bundle, naming
 * their source, which tsx runs. Bundled, they would load at every
 * instance's start (esbuild hoists a bundled module's package imports to
 * the top), and the bench would bring this file in, esbuild with it.
 */
const commandsImportedWhenRun: Plugin = {
  name: 'livemig-commands-imported-when-run',
  setup(b) {
    b.onResolve({ filter: /^\./ }, (args) => {
      // Only the commands' own lazy imports: anything an instance itself loads must stay in the bundle.
      if (args.kind !== 'dynamic-import' || !args.importer.startsWith(TOOLS_DIR)) return undefined;
      return { path: pathToFileURL(resolve(args.resolveDir, args.path.replace(/\.js$/, '.ts'))).href, external: true };
    });
  },
};

/** Bundles the program (to find its worker entries), then each worker, then the program again, knowing the workers' bundles. */
async function bundleProgram(): Promise<string> {
  const workers = new Set<string>();
  await build({ ...BUNDLE_OPTIONS, entryPoints: [ENTRY], plugins: [commandsImportedWhenRun, programModules(workers, {})] });
  const prebuilt: Record<string, string> = {};
  await Promise.all([...workers].map(async (source) => {
    const { outputFiles } = await build({ ...BUNDLE_OPTIONS, entryPoints: [source] });
    prebuilt[pathToFileURL(source).href] = storeBundle(source, outputFiles[0]!.contents).href;
  }));
  const { outputFiles } = await build({ ...BUNDLE_OPTIONS, entryPoints: [ENTRY], plugins: [commandsImportedWhenRun, programModules(new Set(), prebuilt)] });
  return fileURLToPath(storeBundle(ENTRY, outputFiles[0]!.contents));
}

let program: Promise<string> | undefined;

/** The path of the bundled `tools/livemig.ts`, to run as `node PATH run …`. */
export function livemigProgram(): Promise<string> {
  program ??= bundleProgram();
  return program;
}
