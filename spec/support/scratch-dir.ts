import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * Gives each test of the calling suite a fresh temporary directory (for
 * sockets, migration files, FIFOs). After each test, `stop` runs first (the
 * instances and proxies that may still hold files there), then the directory
 * goes. Returns the current test's directory.
 */
export function scratchDirPerTest(prefix: string, stop: () => Promise<unknown>): () => string {
  let dir: string | undefined;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), prefix));
  });
  afterEach(async () => {
    await stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
    dir = undefined;
  });
  return () => {
    if (!dir) throw new Error('the scratch directory exists only while a test runs');
    return dir;
  };
}
