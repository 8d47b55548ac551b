import { expect } from 'chai';
import { Guest, defaultAb } from '../actors/guest/guest.js';
import { DirtyLog, dirtyPages } from '../actors/guest/dirty-log.js';
import { forEachRun } from '../actors/guest/bitmap.js';
import { TARGET_PAGE_SIZE } from '../actors/guest/constants.js';
import type { RamBlock } from '../actors/guest/ram-block.js';

const MiB = 1 << 20;

/** Copies every page named in a sync's bitmap from guest memory into a shadow. */
function copyDirty(block: RamBlock, bitmap: Int32Array, shadow: Uint8Array): void {
  forEachRun(bitmap, block.pageCount, (first, count) => {
    for (let p = first; p < first + count; ) {
      const view = block.pagesView(p, first + count - p);
      shadow.set(view, p * TARGET_PAGE_SIZE);
      p += view.length / TARGET_PAGE_SIZE;
    }
  });
}

function memoryOf(block: RamBlock): Uint8Array {
  const out = new Uint8Array(block.size);
  block.readInto(0, out);
  return out;
}

describe('guest: dirty sync', function () {
  let guest: Guest | undefined;
  afterEach(async () => {
    await guest?.destroy();
    guest = undefined;
  });

  for (const workload of ['random', 'ab'] as const) {
    it(`never loses a write racing with repeated syncs (${workload}, 2 vCPUs)`, async () => {
      const ram = 32 * MiB;
      guest = await Guest.create({
        ram,
        smp: 2,
        workload:
          workload === 'ab'
            ? defaultAb(ram)
            : { kind: 'random', rate: 400_000, start: 0, workingSet: 8 * MiB, seed: 7 },
        runState: 'running',
      });
      const block = guest.blocks[0]!;
      const log = new DirtyLog(block);
      // A first full pass, as migration's first iteration sends everything.
      const shadow = memoryOf(block);
      let synced = 0;
      const until = performance.now() + 600;
      while (performance.now() < until) {
        const sync = log.sync();
        synced += sync.count;
        copyDirty(block, sync.bitmap, shadow);
        await new Promise((r) => setImmediate(r));
      }
      await guest.stop();
      copyDirty(block, log.sync().bitmap, shadow);
      expect(synced, 'the workload dirtied pages during the race').to.be.greaterThan(1000);
      expect(Buffer.compare(shadow, memoryOf(block)), 'shadow copy equals guest memory').to.equal(0);
    });
  }

  it('reports the dirty pages and their count', async () => {
    guest = await Guest.create({ ram: 8 * MiB, smp: 1, workload: { kind: 'ab', start: MiB, end: 2 * MiB }, runState: 'running' });
    const block = guest.blocks[0]!;
    const log = new DirtyLog(block);
    await new Promise((r) => setTimeout(r, 50));
    await guest.stop();
    const sync = log.sync();
    const pages = dirtyPages(sync, block.pageCount);
    expect(sync.count).to.equal(256); // the whole 1 MiB range, many times over
    expect(pages[0]).to.equal(256);
    expect(pages[255]).to.equal(511);
    expect(log.sync().count, 'a second sync of a stopped guest finds nothing').to.equal(0);
  });
});
