/**
 * `livemig` as one plain-JS module, for the instances the demo, the bench
 * and the integration tests start: run by plain `node`, without tsx, whose
 * loader costs every process ~48 MB of RSS and a thread of its own (measured
 * here) — too much next to a guest's RAM. Built with esbuild once per
 * process.
 */
import { readFile } from 'node:fs/promises';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { build, type Plugin } from 'esbuild';
import { BUNDLE_OPTIONS, storeBundle } from '../actors/threads/bundle.js';

const ENTRY = fileURLToPath(new URL('./livemig.ts', import.meta.url));

/**
 * Each module keeps its own `import.meta.url` (its source file's), so the
 * `new URL('./vcpu-worker.ts', import.meta.url)` of a bundled module still
 * names its worker's source.
 */
const moduleUrls: Plugin = {
  name: 'module-urls',
  setup(b) {
    b.onLoad({ filter: /\.ts$/ }, async (args) => ({
      contents: (await readFile(args.path, 'utf8')).replaceAll('import.meta.url', JSON.stringify(pathToFileURL(args.path).href)),
      loader: 'ts',
    }));
  },
};

let program: Promise<string> | undefined;

/** The path of the bundled `tools/livemig.ts`, to run as `node PATH run …`. */
export function livemigProgram(): Promise<string> {
  program ??= build({ ...BUNDLE_OPTIONS, entryPoints: [ENTRY], plugins: [moduleUrls] }).then(
    ({ outputFiles }) => fileURLToPath(storeBundle(ENTRY, outputFiles[0]!.contents)),
  );
  return program;
}
