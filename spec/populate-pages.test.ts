/**
 * The pre-fault primitive on real guest RAM: populating a block's pages
 * makes them resident (the process's anonymous RSS grows by them) without
 * changing a byte, including bytes written there before.
 */
import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import { TARGET_PAGE_SIZE } from '../actors/guest/constants.js';
import { guestMemoryAddon } from '../actors/guest/guest-memory-addon.js';
import { populatePages } from '../actors/guest/populate-pages.js';
import { RamBlock } from '../actors/guest/ram-block.js';

/** This process's resident anonymous memory, bytes. */
function rssAnon(): number {
  const kb = /RssAnon:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'))?.[1];
  return Number(kb) * 1024;
}

describe('populate-pages (the guest-memory addon)', () => {
  it('faults a block in without changing its bytes', () => {
    const pages = 64 * 256; // 64 MiB
    const ram = RamBlock.allocate('pc.ram', pages * TARGET_PAGE_SIZE);
    ram.pagesView(100, 1).fill(0xab);
    ram.pagesView(pages - 1, 1).fill(0xcd);
    const before = rssAnon();
    expect(populatePages(ram.pagesView(0, pages))).to.equal(true);
    expect(rssAnon() - before).to.be.at.least((pages - 2) * TARGET_PAGE_SIZE * 0.95);
    expect(ram.pagesView(100, 1).every((b) => b === 0xab)).to.equal(true);
    expect(ram.pagesView(pages - 1, 1).every((b) => b === 0xcd)).to.equal(true);
    expect(ram.pagesView(0, 100).every((b) => b === 0)).to.equal(true);
  });

  it('refuses anything but a byte view, with a TypeError', () => {
    expect(() => guestMemoryAddon()!.populatePages(new Int32Array(4) as unknown as Uint8Array)).to.throw(TypeError, 'populatePages takes one Uint8Array');
  });
});
