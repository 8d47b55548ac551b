/**
 * How the source's RAM side cuts the migration bitmap into multifd batches:
 * at most `maxPages` pages, of which at most `maxDataPages` the guest wrote
 * (under max-bandwidth, one rate window's worth: zero pages cost no wire
 * bytes, so they do not count against it). Real guest memory, no mocks.
 */
import { expect } from 'chai';
import { RamBlock } from '../actors/guest/ram-block.js';
import { RamSaver } from '../actors/ram/ram-saver.js';

const PAGE = 4096;

/** A 16 MiB block whose pages [from, to) the guest has written. */
function blockWritten(from: number, to: number): RamBlock {
  const ram = RamBlock.allocate('pc.ram', 16 << 20);
  for (let page = from; page < to; page++) {
    ram.slabs[0]![page * PAGE] = 1;
    ram.touched.set(page);
  }
  return ram;
}

/** Pages in flat (first, count) pairs. */
function pagesOf(ranges: Uint32Array): number[] {
  const pages: number[] = [];
  for (let i = 0; i < ranges.length; i += 2) for (let p = ranges[i]!; p < ranges[i]! + ranges[i + 1]!; p++) pages.push(p);
  return pages;
}

describe('RamSaver.nextRanges', () => {
  it('without a data cap, takes maxPages pages in order', () => {
    const saver = new RamSaver([blockWritten(0, 4096)]);
    const batch = saver.nextRanges(1024)!;
    expect(batch.pages).to.equal(1024);
    expect(pagesOf(batch.ranges)).to.deep.equal(Array.from({ length: 1024 }, (_, i) => i));
    expect(saver.remaining).to.equal(4096 - 1024);
  });

  it('stops at maxDataPages written pages, while never-written pages do not count', () => {
    // Pages 0-99 never written, 100-199 written.
    const ram = blockWritten(100, 200);
    const saver = new RamSaver([ram]);
    const batch = saver.nextRanges(1024, 30)!;
    const pages = pagesOf(batch.ranges);
    expect(pages.filter((p) => ram.touched.test(p)), 'written pages').to.have.length(30);
    expect(pages, 'the never-written pages before them ride along').to.have.length(130);
    // The next batch goes on from there.
    expect(pagesOf(saver.nextRanges(1024, 30)!.ranges)[0]).to.equal(130);
  });

  it('a batch of never-written pages only is still bounded by maxPages', () => {
    const saver = new RamSaver([blockWritten(0, 0)]);
    expect(saver.nextRanges(1024, 1)!.pages).to.equal(1024);
  });
});

describe('RamSaver.pendingDataPages: what the switchover weighs', () => {
  it('counts the pages still to send that the guest wrote, not the never-written ones, in every block', () => {
    const ram = blockWritten(100, 300);
    const other = RamBlock.allocate('extra', 1 << 20);
    other.touched.set(5);
    const saver = new RamSaver([ram, other]);
    expect(saver.remaining).to.equal(4096 + 256);
    expect(saver.pendingDataPages()).to.equal(200 + 1);
    // A batch sends pages 0-1023: the 200 written ones among them are no longer pending.
    saver.nextRanges(1024);
    expect(saver.pendingDataPages()).to.equal(1);
  });
});
