/**
 * Worker bundles built ahead of time, by worker entry URL: empty here (run
 * from source, threads are bundled when first started); the bundled program
 * (tools/program-bundle.ts) replaces this module with the bundles it built,
 * so a bundled instance never loads esbuild.
 */
export const PREBUILT_WORKERS: Readonly<Record<string, string>> = {};
