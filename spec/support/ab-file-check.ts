/**
 * The `ab` check over a pmemsave'd range of guest RAM, written independently
 * of the product's checker so a test does not judge the guest with the code
 * under test. One vCPU (--smp 1): the incrementer walks the range page after
 * page, so with the guest stopped every page's first byte is H up to one
 * boundary and H-1 (mod 256) from it on.
 */
import { readFileSync } from 'node:fs';

const PAGE = 4096;

export interface AbFileReport {
  /** The value before the boundary. */
  high: number;
  /** Index (in pages from the range's start) of the first page holding H-1; `pages` when there is none. */
  boundary: number;
  pages: number;
  /** Pages that hold neither H before the boundary nor H-1 after it. */
  badPages: number[];
  /** Whether any page of the range was ever written (an untouched range passes trivially). */
  touched: boolean;
}

/** Checks a file holding the guest range byte for byte (pmemsave of [start, end) into `path`). */
export function checkAbFile(path: string): AbFileReport {
  const bytes = readFileSync(path);
  if (bytes.length % PAGE !== 0) throw new Error(`${path}: ${bytes.length} bytes is not a whole number of pages`);
  const pages = bytes.length / PAGE;
  const first = (i: number) => bytes[i * PAGE]!;
  const high = pages > 0 ? first(0) : 0;
  let boundary = 0;
  while (boundary < pages && first(boundary) === high) boundary++;
  const low = (high + 255) & 0xff;
  const badPages: number[] = [];
  for (let i = boundary; i < pages; i++) if (first(i) !== low) badPages.push(i);
  let touched = false;
  for (let i = 0; i < pages && !touched; i++) touched = first(i) !== 0;
  return { high, boundary, pages, badPages, touched };
}
