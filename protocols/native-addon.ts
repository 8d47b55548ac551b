/**
 * The project's native addons (binding.gyp: C through N-API, built by
 * `npm ci` with node-gyp), loaded once each. An addon that was not built
 * (no compiler on the machine) is reported by why, so the feature that
 * needs it can refuse with a message a person can act on.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export type Loaded<T> = { addon: T; missing?: undefined } | { addon?: undefined; missing: string };

const loaded = new Map<string, Loaded<unknown>>();

/**
 * An addon sits in the package's build/Release. Its loader runs from its
 * source or inside a worker thread's bundle (under node_modules/.cache), so
 * it is looked for upwards from here.
 */
function addonPath(target: string): string {
  const relative = join('build', 'Release', `${target}.node`);
  for (let dir = dirname(fileURLToPath(import.meta.url)); ; dir = dirname(dir)) {
    if (existsSync(join(dir, relative))) return join(dir, relative);
    if (dirname(dir) === dir) return relative;
  }
}

/** binding.gyp's `target`, loaded once; `what` names it in the message when it is missing. */
export function nativeAddon<T>(target: string, what: string): Loaded<T> {
  let entry = loaded.get(target);
  if (entry === undefined) {
    try {
      entry = { addon: createRequire(import.meta.url)(addonPath(target)) as T };
    } catch (err) {
      entry = { missing: `the ${what} addon is not built (npm ci builds it with node-gyp, which needs python3, make and a C compiler): ${(err as Error).message.split('\n')[0]}` };
    }
    loaded.set(target, entry);
  }
  return entry as Loaded<T>;
}
