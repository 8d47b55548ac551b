import { createHash } from 'node:crypto';
import { expect } from 'chai';
import { Guest } from '../actors/guest/guest.js';
import { SLAB_SIZE } from '../actors/guest/constants.js';

const GiB = 2 ** 30;
const MiB = 2 ** 20;

describe('guest: RAM larger than one typed-array view', function () {
  this.timeout(120_000);
  let guest: Guest | undefined;
  after(async () => guest?.destroy());

  it('starts a 6 GiB guest whose workload crosses the 4 GiB mark, and passes its digest', async () => {
    const start = 4 * GiB - MiB;
    const end = 4 * GiB + MiB;
    guest = await Guest.create({ ram: 6 * GiB, smp: 1, workload: { kind: 'ab', start, end }, runState: 'running' });
    const ram = guest.blocks[0]!;
    expect(ram.slabs).to.have.length(6 * GiB / SLAB_SIZE);
    await new Promise((r) => setTimeout(r, 100));
    await guest.stop();
    expect(guest.checkAb().ok).to.equal(true);

    // The expected digest, computed independently: zeros except the ab range.
    const zeros = new Uint8Array(64 * MiB);
    const hash = createHash('sha256');
    const range = new Uint8Array(end - start);
    ram.readInto(start, range);
    expect(range.some((b) => b !== 0), 'the workload wrote across the boundary').to.equal(true);
    for (let at = 0; at < start; at += zeros.length) hash.update(zeros.subarray(0, Math.min(zeros.length, start - at)));
    hash.update(range);
    for (let at = end; at < 6 * GiB; at += zeros.length) hash.update(zeros.subarray(0, Math.min(zeros.length, 6 * GiB - at)));
    const [digest] = await guest.digest();
    expect(digest).to.deep.equal({ block: 'pc.ram', size: 6 * GiB, sha256: hash.digest('hex') });
  });
});
