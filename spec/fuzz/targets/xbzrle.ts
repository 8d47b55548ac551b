/**
 * XBZRLE deltas (protocols/xbzrle), applied to the page the destination
 * holds. A refused delta must leave the page as it was.
 */
import { expect } from 'chai';
import * as fc from 'fast-check';
import { decode } from '../../../protocols/xbzrle/decode.js';
import { encode } from '../../../protocols/xbzrle/encode.js';
import { XbzrleError } from '../../../protocols/xbzrle/errors.js';
import { withinBounds } from '../bounds.js';
import { whole } from '../chunking.js';
import type { FuzzTarget } from '../fuzz-target.js';
import { hostileBytes } from '../mutation.js';
import { acceptsOrRejects } from '../rejection.js';

/** Page sizes: the target page, and small ones so runs reach the page's end often. */
const PAGE_SIZES = [4096, 256, 17];

/** An old page and a new one that differs from it in a few ranges. */
const pagePairArbitrary = fc
  .record({
    size: fc.constantFrom(...PAGE_SIZES),
    old: fc.uint8Array({ minLength: 4096, maxLength: 4096 }),
    changes: fc.array(fc.record({ at: fc.nat(), length: fc.nat({ max: 300 }), value: fc.nat({ max: 255 }) }), { maxLength: 6 }),
  })
  .map(({ size, old, changes }) => {
    const oldPage = old.subarray(0, size);
    const newPage = Uint8Array.from(oldPage);
    for (const { at, length, value } of changes) newPage.fill(value, at % size, (at % size) + length);
    return { oldPage, newPage };
  });

function deltaOf({ oldPage, newPage }: { oldPage: Uint8Array; newPage: Uint8Array }): Uint8Array | undefined {
  const out = new Uint8Array(2 * newPage.length + 16);
  const n = encode(oldPage, newPage, out);
  return n < 0 ? undefined : out.subarray(0, n);
}

/** The page size is the input's first byte's pick, so a corpus entry is plain bytes. */
const inputBytes = fc
  .nat({ max: PAGE_SIZES.length - 1 })
  .chain((index) =>
    hostileBytes(pagePairArbitrary.map((pair) => deltaOf(pair) ?? new Uint8Array(0))).map((delta) => Buffer.concat([Uint8Array.of(index), delta])),
  );

export const xbzrleTarget: FuzzTarget = {
  name: 'xbzrle',
  input: whole(inputBytes),
  check({ bytes }) {
    const page = new Uint8Array(PAGE_SIZES[(bytes[0] ?? 0) % PAGE_SIZES.length] as number).fill(0x5a);
    const delta = bytes.subarray(1);
    const accepted = withinBounds(bytes.length, () => acceptsOrRejects(() => decode(delta, page), [XbzrleError]));
    if (!accepted) expect(page.every((b) => b === 0x5a), 'a refused delta left the page changed').to.equal(true);
  },
  roundTrip: fc.property(pagePairArbitrary, (pair) => {
    const delta = deltaOf(pair);
    fc.pre(delta !== undefined);
    const page = Uint8Array.from(pair.oldPage);
    decode(delta as Uint8Array, page);
    expect(Buffer.compare(page, pair.newPage)).to.equal(0);
  }),
};
