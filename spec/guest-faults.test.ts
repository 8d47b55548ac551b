import { expect } from 'chai';
import { Guest } from '../actors/guest/guest.js';
import { TARGET_PAGE_SIZE } from '../actors/guest/constants.js';
import { WRITE_PROTECT } from '../actors/guest/control.js';

const MiB = 1 << 20;

describe('guest: page faults', function () {
  let guest: Guest | undefined;
  afterEach(async () => {
    await guest?.destroy();
    guest = undefined;
  });

  it('postcopy: a vCPU blocks on a missing page until it is placed', async () => {
    guest = await Guest.create({
      ram: 4 * MiB, smp: 1, workload: { kind: 'ab', start: MiB, end: 2 * MiB }, runState: 'inmigrate',
    });
    const ram = guest.blocks[0]!;
    guest.setPostcopy(true);
    guest.setRunState('paused');
    guest.start();
    const placed: number[] = [];
    // Place the first 20 pages the vCPU asks for, each holding 42.
    while (placed.length < 20) {
      await guest.faults.wait(2000);
      for (const fault of guest.faults.drain()) {
        expect(fault.kind).to.equal('read');
        expect(fault.block).to.equal(0);
        const offset = ram.offsetInSlab(fault.page);
        ram.slabOf(fault.page).fill(42, offset, offset + TARGET_PAGE_SIZE);
        ram.received.set(fault.page); // bytes first, then the bit wakes the vCPU
        placed.push(fault.page);
      }
    }
    await guest.stop();
    expect(placed.slice(0, 5)).to.deep.equal([256, 257, 258, 259, 260]);
    // Every placed page but possibly the last was incremented exactly once.
    for (const page of placed.slice(0, -1)) expect(ram.slabOf(page)[ram.offsetInSlab(page)]).to.equal(43);
    // The vCPU is stuck on the next missing page: it got no further.
    expect(guest.registers(0)[0]).to.be.within(placed.length - 1, placed.length);
    expect(guest.faults.outstanding()).to.be.at.most(1);
  });

  it('write protect: a write waits until the page is saved and unprotected', async () => {
    guest = await Guest.create({
      ram: 4 * MiB, smp: 1, workload: { kind: 'ab', start: MiB, end: MiB + 16 * TARGET_PAGE_SIZE }, runState: 'prelaunch',
    });
    const ram = guest.blocks[0]!;
    const ctrl = (guest as unknown as { ctrl: Int32Array }).ctrl;
    ram.writeProtect.setRange(256, 16);
    Atomics.store(ctrl, WRITE_PROTECT, 1);
    guest.start();
    const saved = new Map<number, number>();
    while (saved.size < 16) {
      await guest.faults.wait(2000);
      for (const fault of guest.faults.drain()) {
        expect(fault.kind).to.equal('write-protect');
        saved.set(fault.page, ram.slabOf(fault.page)[ram.offsetInSlab(fault.page)]!);
        ram.writeProtect.clear(fault.page);
      }
    }
    await guest.stop();
    // The snapshot saw each page as it was before the guest's first write to it.
    expect([...saved.values()].every((v) => v === 0)).to.equal(true);
    expect(guest.checkAb().ok).to.equal(true);
    expect(ram.slabOf(256)[ram.offsetInSlab(256)]).to.be.greaterThan(0);
  });

  it('a stop parks a vCPU that is waiting on a fault', async () => {
    guest = await Guest.create({ ram: 4 * MiB, smp: 1, workload: { kind: 'ab', start: MiB, end: 2 * MiB }, runState: 'inmigrate' });
    guest.setPostcopy(true);
    guest.setRunState('paused');
    guest.start();
    await guest.faults.wait(2000);
    expect(guest.faults.drain()).to.have.length(1);
    await guest.stop();
    expect(guest.runState).to.equal('paused');
  });
});
