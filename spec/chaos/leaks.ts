/**
 * What a run may not leave behind in a process that lives on: threads,
 * sockets and descriptors beyond what it held before the migration (a small
 * margin for descriptors, as the multifd failure tests allow), and files in
 * its directory other than its monitor socket and the harness's own RAM
 * dumps.
 */
import { readdirSync } from 'node:fs';
import { basename } from 'node:path';
import type { TestInstance } from '../support/instances.js';
import { settledHoldings, type ProcessHoldings } from '../support/multifd-pair.js';

/** Descriptors a process may hold beyond its baseline (the same margin as expectNothingLeftBehind). */
const FD_MARGIN = 2;
/** How long a process gets to let go of what the migration used. */
const SETTLE_MS = 5_000;

/** One line per leak found in `instance`, against `baseline`; none when it holds no more than before. */
export async function leaksOf(instance: TestInstance, baseline: ProcessHoldings): Promise<string[]> {
  const now = await settledHoldings(instance.process.pid!, baseline, SETTLE_MS);
  const leaks: string[] = [];
  if (now.threads > baseline.threads) leaks.push(`${instance.name}: ${now.threads} threads, ${baseline.threads} before the migration`);
  if (now.sockets > baseline.sockets) leaks.push(`${instance.name}: ${now.sockets} sockets, ${baseline.sockets} before the migration`);
  if (now.fds > baseline.fds + FD_MARGIN) leaks.push(`${instance.name}: ${now.fds} descriptors, ${baseline.fds} before the migration`);
  return [...leaks, ...leftoverFiles(instance).map((file) => `${instance.name}: left ${file} in its directory`)];
}

/** Files in the instance's directory that neither its monitor socket nor the harness's pmemsave dumps explain. */
function leftoverFiles(instance: TestInstance): string[] {
  const expected = (name: string) => name === basename(instance.socket) || /^ab-\d+\.bin$/.test(name) || name === 'window.bin';
  return readdirSync(instance.dir).filter((name) => !expected(name));
}
