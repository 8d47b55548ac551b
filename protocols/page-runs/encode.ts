/**
 * Writing run descriptors (constants.ts has the format), for the main
 * stream's PAGES frames and multifd packets. The reading side is decode.ts.
 *
 * Hot path: once per page batch; it never looks at page bytes.
 */
import { RUN_COUNT_MASK, RUN_DESCRIPTOR_SIZE, ZERO_RUN_FLAG } from './constants.js';
import type { PageRun } from './types.js';

/** What a batch of runs covers: all its pages, and those that carry bytes. */
export interface RunTotals {
  pages: number;
  dataPages: number;
}

/**
 * Writes one descriptor per run into `out` from `at` on, checking that each
 * run fits the format; `badRun` turns the reason into the protocol's error.
 *
 * @example const { pages, dataPages } = writeRunDescriptors(out, 16, runs, 0, (m) => new StreamError('BAD_PAGES', m));
 */
export function writeRunDescriptors(
  out: Buffer,
  at: number,
  runs: readonly PageRun[],
  block: number,
  badRun: (message: string) => Error,
): RunTotals {
  let pages = 0;
  let dataPages = 0;
  for (const { first, count, zero } of runs) {
    if (!isUint(first, 0xffffffff) || !isUint(count, RUN_COUNT_MASK) || count < 1) {
      throw badRun(`Bad page run: first ${first}, count ${count} of block ${block}`);
    }
    pages += count;
    if (!zero) dataPages += count;
    out.writeUInt32BE(first, at);
    out.writeUInt32BE(zero ? (count | ZERO_RUN_FLAG) >>> 0 : count, at + 4);
    at += RUN_DESCRIPTOR_SIZE;
  }
  return { pages, dataPages };
}

function isUint(value: number, max: number): boolean {
  return Number.isInteger(value) && value >= 0 && value <= max;
}
