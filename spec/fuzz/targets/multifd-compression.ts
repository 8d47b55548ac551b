/**
 * A multifd packet's compressed data (protocols/multifd/compression.ts
 * decompressInto): it must inflate to exactly the runs' page bytes, and
 * never to more than the buffer that holds them.
 */
import { expect } from 'chai';
import * as fc from 'fast-check';
import { compressPages, decompressInto, type Compressor } from '../../../protocols/multifd/compression.js';
import { MultifdError } from '../../../protocols/multifd/errors.js';
import { PAGE } from '../../stream-fake-guest.js';
import { withinBounds } from '../bounds.js';
import { whole } from '../chunking.js';
import type { FuzzTarget } from '../fuzz-target.js';
import { hostileBytes } from '../mutation.js';
import { acceptsOrRejects } from '../rejection.js';

const METHODS: readonly Compressor[] = ['zlib', 'zstd'];
const MAX_PAGES = 8;

/** Page bytes that compress somewhat: runs of repeated bytes among random ones. */
const pagesArbitrary = fc
  .record({ pages: fc.integer({ min: 1, max: MAX_PAGES }), seed: fc.uint8Array({ minLength: 64, maxLength: 64 }), runs: fc.nat({ max: 64 }) })
  .map(({ pages, seed, runs }) => {
    const data = new Uint8Array(pages * PAGE);
    for (let i = 0; i < data.length; i++) data[i] = (i >> 6) % 64 < runs ? (seed[(i >> 6) % 64] as number) : (seed[i % 64] as number) ^ (i >> 8);
    return data;
  });

const compressedArbitrary = fc.record({ method: fc.constantFrom(...METHODS), level: fc.nat({ max: 3 }), pages: pagesArbitrary });

/** The input's first byte picks the method, its second the expected page count; the rest is the data. */
const inputBytes = hostileBytes(
  compressedArbitrary.map(({ method, level, pages }) =>
    Buffer.concat([Uint8Array.of(METHODS.indexOf(method), pages.length / PAGE), compressPages(method, level, [pages])]),
  ),
);

export const multifdCompressionTarget: FuzzTarget = {
  name: 'multifd-compression',
  input: whole(inputBytes),
  check({ bytes }) {
    const method = METHODS[(bytes[0] ?? 0) % METHODS.length] as Compressor;
    const out = new Uint8Array(PAGE * (1 + ((bytes[1] ?? 0) % MAX_PAGES)));
    withinBounds(bytes.length, () => acceptsOrRejects(() => decompressInto(method, bytes.subarray(2), out), [MultifdError]));
  },
  roundTrip: fc.property(compressedArbitrary, ({ method, level, pages }) => {
    const out = new Uint8Array(pages.length);
    decompressInto(method, compressPages(method, level, [pages]), out);
    expect(Buffer.compare(out, pages)).to.equal(0);
  }),
};
