import { expect } from 'chai';
import { checkAb } from '../actors/guest/ab-check.js';
import { TARGET_PAGE_SIZE } from '../actors/guest/constants.js';
import { RamBlock } from '../actors/guest/ram-block.js';

const PAGES = 64;

/** A block whose ab range (pages 0..63) holds H before `boundary` and H-1 from it. */
function consistent(high: number, boundary: number): RamBlock {
  const ram = RamBlock.allocate('pc.ram', PAGES * TARGET_PAGE_SIZE);
  for (let p = 0; p < PAGES; p++) ram.slabs[0]![p * TARGET_PAGE_SIZE] = p < boundary ? high : (high + 255) & 0xff;
  return ram;
}

function setPage(ram: RamBlock, page: number, value: number): void {
  ram.slabs[0]![page * TARGET_PAGE_SIZE] = value;
}

const check = (ram: RamBlock) => checkAb(ram, 0, PAGES * TARGET_PAGE_SIZE, 1);

describe('guest: the ab checker', () => {
  it('passes consistent stops, with the boundary anywhere and across the 255→0 wrap', () => {
    for (const [high, boundary] of [[5, 0], [5, 17], [5, PAGES], [0, 30], [1, 63], [255, 1]] as const) {
      expect(check(consistent(high, boundary)).ok, `H=${high} boundary=${boundary}`).to.equal(true);
    }
  });

  it('catches a stale page', () => {
    const ram = consistent(9, 40);
    setPage(ram, 10, 8); // should be 9: an old copy
    expect(check(ram)).to.include({ ok: false }).and.to.have.property('badPages').that.deep.equals([10]);
  });

  it('catches a zeroed page', () => {
    const ram = consistent(9, 40);
    setPage(ram, 50, 0);
    expect(check(ram).badPages).to.deep.equal([50]);
  });

  it('catches a page from the future', () => {
    const ram = consistent(9, 40);
    setPage(ram, 55, 9); // past the boundary it should still be 8
    expect(check(ram).badPages).to.deep.equal([55]);
    const ram2 = consistent(9, 40);
    setPage(ram2, 3, 10); // two ahead of its neighbours
    expect(check(ram2).badPages).to.deep.equal([3]);
  });

  it('catches a second boundary', () => {
    const ram = consistent(9, 20);
    for (let p = 40; p < PAGES; p++) setPage(ram, p, 7);
    const report = check(ram);
    expect(report.ok).to.equal(false);
    expect(report.badPages).to.have.length(20); // pages 0..19: the fit is H=8 with 7 after page 40
  });

  it('checks each vCPU slice on its own', () => {
    const ram = RamBlock.allocate('pc.ram', PAGES * TARGET_PAGE_SIZE);
    for (let p = 0; p < 32; p++) setPage(ram, p, p < 10 ? 4 : 3);
    for (let p = 32; p < 64; p++) setPage(ram, p, p < 50 ? 200 : 199);
    expect(checkAb(ram, 0, PAGES * TARGET_PAGE_SIZE, 2).ok).to.equal(true);
    expect(checkAb(ram, 0, PAGES * TARGET_PAGE_SIZE, 1).ok).to.equal(false);
  });
});
