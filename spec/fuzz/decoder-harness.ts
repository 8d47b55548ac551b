/**
 * What the fuzz targets of the page decoders (main stream, multifd) share:
 * the fake guest they land pages in, random page runs, and the check that
 * no page was written that no run named.
 */
import { expect } from 'chai';
import * as fc from 'fast-check';
import type { PageRun } from '../../protocols/page-runs/types.js';
import { FakeGuest, PAGE } from '../stream-fake-guest.js';

/** Pages per RAM block of the fuzzed guest: one large block and two small ones, so runs hit block ends often. */
export const PAGE_COUNTS = [64, 8, 3];
/** What every guest page holds before the input arrives. */
export const FILL = 0x5a;
const FILLED_PAGE = new Uint8Array(PAGE).fill(FILL);

const SLAB_PAGES = [1, 2, 5, Infinity];

/**
 * A fresh guest whose views end at slab boundaries, as real RAM split into
 * slabs does. The slab size follows from `variant` (e.g. the input's
 * length), so a corpus entry replays exactly.
 */
export function guestFor(variant: number): FakeGuest {
  return new FakeGuest(PAGE_COUNTS, { fill: FILL, slabPages: SLAB_PAGES[variant % SLAB_PAGES.length] as number });
}

/** Up to six ascending, non-overlapping runs within a block of `pageCount` pages (at least one). */
export function runsArbitrary(pageCount: number): fc.Arbitrary<PageRun[]> {
  return fc
    .array(fc.record({ gap: fc.nat({ max: 4 }), count: fc.integer({ min: 1, max: 5 }), zero: fc.boolean() }), { minLength: 1, maxLength: 6 })
    .map((steps) => {
      const runs: PageRun[] = [];
      let at = 0;
      for (const { gap, count, zero } of steps) {
        const first = at + gap;
        if (first >= pageCount) break;
        const fitted = Math.min(count, pageCount - first);
        runs.push({ first, count: fitted, zero });
        at = first + fitted;
      }
      return runs.length > 0 ? runs : [{ first: 0, count: 1, zero: false }];
    });
}

/** A block index with runs inside it. */
export const blockRunsArbitrary: fc.Arbitrary<{ block: number; runs: PageRun[] }> = fc
  .nat({ max: PAGE_COUNTS.length - 1 })
  .chain((block) => runsArbitrary(PAGE_COUNTS[block] as number).map((runs) => ({ block, runs })));

/** Every page whose bytes changed must have been handed out by pageView, named by a zero run, or patched by an XBZRLE delta. */
export function checkWrites(guest: FakeGuest): void {
  expect(guest.guardsIntact(), 'guard bytes around guest RAM').to.equal(true);
  const allowed = PAGE_COUNTS.map((pages) => new Uint8Array(pages));
  for (const event of guest.events) {
    const count = event.call === 'pageView' ? event.given : event.count;
    for (let p = event.first; p < event.first + count; p++) (allowed[event.block] as Uint8Array)[p] = 1;
  }
  for (const { block, page } of guest.xbzrlePages) (allowed[block] as Uint8Array)[page] = 1;
  for (let block = 0; block < PAGE_COUNTS.length; block++) {
    for (let page = 0; page < (PAGE_COUNTS[block] as number); page++) {
      if ((allowed[block] as Uint8Array)[page]) continue;
      if (Buffer.compare(guest.page(block, page), FILLED_PAGE) !== 0) {
        throw new Error(`page ${page} of block ${block} was written without a run naming it`);
      }
    }
  }
}
