import { expect } from 'chai';
import { createHash } from 'node:crypto';
import { deflateRawSync } from 'node:zlib';
import { compressiblePageKind, fillCompressible } from '../actors/guest/compressible-fill.js';
import { TARGET_PAGE_SIZE } from '../actors/guest/constants.js';

const PAGES = 8192; // 32 MiB
/** A multifd packet's worth of pages, what the codecs compress at a time. */
const PACKET = 128 * TARGET_PAGE_SIZE;

const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

describe('the compressible guest fill', () => {
  let ram: Uint8Array;
  before(() => {
    ram = new Uint8Array(PAGES * TARGET_PAGE_SIZE);
    fillCompressible(ram, 0);
  });

  it('gives the same bytes for the same page indices, wherever and however they are written', () => {
    const again = new Uint8Array(ram.length);
    // In pieces, out of order: each page follows from its index alone.
    for (const [first, count] of [[4096, 4096], [0, 1], [1, 4095]] as const) {
      fillCompressible(again.subarray(first * TARGET_PAGE_SIZE, (first + count) * TARGET_PAGE_SIZE), first);
    }
    expect(sha256(again)).to.equal(sha256(ram));
    const shifted = new Uint8Array(16 * TARGET_PAGE_SIZE);
    fillCompressible(shifted, 1000);
    expect(sha256(shifted)).to.equal(sha256(ram.subarray(1000 * TARGET_PAGE_SIZE, 1016 * TARGET_PAGE_SIZE)));
  });

  it('holds no all-zero page, and pages that differ', () => {
    const zero = Buffer.alloc(TARGET_PAGE_SIZE);
    const seen = new Set<string>();
    for (let p = 0; p < PAGES; p++) {
      const page = ram.subarray(p * TARGET_PAGE_SIZE, (p + 1) * TARGET_PAGE_SIZE);
      expect(zero.equals(page), `page ${p} is all zero`).to.equal(false);
      seen.add(sha256(page));
    }
    expect(seen.size, 'distinct pages').to.equal(PAGES);
  });

  it('mixes the kinds of pages as said (~15 % random)', () => {
    const counts = new Map<string, number>();
    for (let p = 0; p < PAGES; p++) {
      const kind = compressiblePageKind(p);
      counts.set(kind, (counts.get(kind) ?? 0) + 1);
    }
    const share = (kind: string) => (counts.get(kind) ?? 0) / PAGES;
    expect(share('random')).to.be.within(0.13, 0.17);
    expect(share('text')).to.be.within(0.27, 0.33);
    expect(share('sparse')).to.be.within(0.27, 0.33);
    expect(share('records')).to.be.within(0.22, 0.28);
  });

  it('compresses about 3× with zlib level 1, a packet at a time (random pages not at all)', () => {
    let compressed = 0;
    for (let at = 0; at < ram.length; at += PACKET) compressed += deflateRawSync(ram.subarray(at, at + PACKET), { level: 1 }).length;
    const ratio = ram.length / compressed;
    expect(ratio).to.be.within(2.6, 3.6);

    const random = [];
    for (let p = 0; random.length < 64; p++) if (compressiblePageKind(p) === 'random') random.push(ram.subarray(p * TARGET_PAGE_SIZE, (p + 1) * TARGET_PAGE_SIZE));
    const randomBytes = Buffer.concat(random);
    expect(deflateRawSync(randomBytes, { level: 1 }).length / randomBytes.length).to.be.above(0.99);
  });

  it('fills 64 MiB in well under a second', () => {
    const big = new Uint8Array(64 << 20);
    const started = performance.now();
    fillCompressible(big, PAGES);
    expect(performance.now() - started).to.be.below(1000);
  });

  it('refuses a range that is not whole pages', () => {
    expect(() => fillCompressible(new Uint8Array(100), 0)).to.throw(RangeError);
  });
});
