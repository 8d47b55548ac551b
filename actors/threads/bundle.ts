import { createHash } from 'node:crypto';
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { BuildOptions } from 'esbuild';

/** Where bundles go: inside node_modules, so their package imports resolve. */
const BUNDLE_DIR = fileURLToPath(new URL('../../node_modules/.cache/livemig-bundles/', import.meta.url));

/** One plain-JS ES module for Node 20; packages stay external and load from node_modules. */
export const BUNDLE_OPTIONS = {
  bundle: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  packages: 'external',
  write: false,
  logLevel: 'silent',
} as const satisfies BuildOptions;

/**
 * Writes the bundle of `source` under a name that holds its content hash
 * (so processes running different versions never share one) and returns
 * its URL.
 */
export function storeBundle(source: string, code: Uint8Array): URL {
  const hash = createHash('sha256').update(code).digest('hex').slice(0, 16);
  const out = join(BUNDLE_DIR, `${source.split('/').pop()!.replace(/\.ts$/, '')}-${hash}.mjs`);
  mkdirSync(BUNDLE_DIR, { recursive: true });
  // Several processes may bundle at once: write aside, then rename into place.
  const scratch = `${out}.${process.pid}.tmp`;
  writeFileSync(scratch, code);
  renameSync(scratch, out);
  return pathToFileURL(out);
}
