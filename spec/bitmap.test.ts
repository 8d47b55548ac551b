import { expect } from 'chai';
import { AtomicBitmap, forEachRun, popcount } from '../actors/guest/bitmap.js';
import { parseSize } from '../protocols/size.js';

describe('atomic page bitmaps', () => {
  it('sets, clears and counts bits, by one and by range', () => {
    const b = new AtomicBitmap(100);
    b.set(0);
    b.set(99);
    b.setRange(30, 40);
    expect(b.count()).to.equal(42);
    b.clearRange(31, 38);
    expect(b.count()).to.equal(4);
    expect([0, 30, 69, 99].every((i) => b.test(i))).to.equal(true);
    b.fill(true);
    expect(b.count(), 'bits past the end stay clear').to.equal(100);
  });

  it('fetch-and-clear returns what was set and leaves the bitmap clear', () => {
    const b = new AtomicBitmap(70);
    b.setRange(5, 10);
    b.set(69);
    const snap = new Int32Array(b.words.length);
    expect(b.fetchAndClear(snap)).to.equal(11);
    expect(b.count()).to.equal(0);
    const runs: [number, number][] = [];
    forEachRun(snap, 70, (first, count) => runs.push([first, count]));
    expect(runs).to.deep.equal([[5, 10], [69, 1]]);
  });

  it('finds runs that cross whole words', () => {
    const b = new AtomicBitmap(200);
    b.setRange(10, 150);
    const runs: [number, number][] = [];
    forEachRun(b.words, 200, (first, count) => runs.push([first, count]));
    expect(runs).to.deep.equal([[10, 150]]);
    expect(popcount(-1)).to.equal(32);
  });

  it('parses sizes with binary suffixes', () => {
    expect(parseSize('256M')).to.equal(256n << 20n);
    expect(parseSize('6G')).to.equal(6n << 30n);
    expect(parseSize('4096')).to.equal(4096n);
    expect(parseSize('18446744073709551615')).to.equal((1n << 64n) - 1n);
    expect(() => parseSize('12Q')).to.throw("'12Q' is not a size");
    expect(() => parseSize('16E')).to.throw('larger than 2^64-1');
  });
});
