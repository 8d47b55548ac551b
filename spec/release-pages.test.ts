/**
 * release-ram's primitive on real guest RAM: a block's pages lie on whole
 * OS pages, so releasing one page's view frees exactly that page (it reads
 * zero from then on) and leaves its neighbours' bytes alone.
 */
import { expect } from 'chai';
import { TARGET_PAGE_SIZE } from '../actors/guest/constants.js';
import { RamBlock } from '../actors/guest/ram-block.js';
import { releasePages, releaseUnavailable } from '../actors/guest/release-pages.js';

describe('release-pages (the guest-memory addon)', () => {
  it('is built by the install step', () => {
    expect(releaseUnavailable()).to.equal(undefined);
  });

  it('frees one guest page exactly: it reads zero, the pages beside it keep their bytes', () => {
    const ram = RamBlock.allocate('pc.ram', 16 * TARGET_PAGE_SIZE);
    for (let page = 0; page < 16; page++) ram.pagesView(page, 1).fill(page + 1);
    expect(releasePages(ram.pagesView(5, 1))).to.equal(TARGET_PAGE_SIZE);
    expect(releasePages(ram.pagesView(9, 3))).to.equal(3 * TARGET_PAGE_SIZE);
    for (let page = 0; page < 16; page++) {
      const freed = page === 5 || (page >= 9 && page < 12);
      const bytes = ram.pagesView(page, 1);
      expect(bytes.every((b) => b === (freed ? 0 : page + 1)), `page ${page}`).to.equal(true);
    }
  });

  it('refuses anything but a byte view, with a TypeError', () => {
    expect(() => releasePages(new Int32Array(4) as unknown as Uint8Array)).to.throw(TypeError, 'releasePages takes one Uint8Array');
  });
});
