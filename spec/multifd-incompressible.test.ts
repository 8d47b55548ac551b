/**
 * Pages a compressor would not shrink are sent raw on a compressing multifd
 * channel: the page check itself on kinds of memory (each kind it calls
 * compressible really shrinks), and migrations between real processes of
 * a guest full of random bytes and of the `ab` guest, judged by the
 * destination's memory and by the channels' own counts.
 */
import { expect } from 'chai';
import { deflateSync } from 'node:zlib';
import { TARGET_PAGE_SIZE } from '../actors/guest/constants.js';
import { RamBlock } from '../actors/guest/ram-block.js';
import { IncompressiblePageCheck } from '../actors/ram/incompressible-page.js';
import type { CompressionMethod } from '../protocols/multifd/constants.js';
import { SeededRandom } from './fuzz/seeded-random.js';
import { startInstance, stopAllInstances } from './support/instances.js';
import { UNLIMITED, allDigests, boundTcpUri, waitForMigration } from './support/migration-driver.js';
import { multifdArgs } from './support/multifd-pair.js';
import { scratchDirPerTest } from './support/scratch-dir.js';

const PAGES = 512;

/** A block of PAGES pages, each written by `fill(page bytes, page index)`. */
function blockOf(fill: (page: Uint8Array, index: number) => void): RamBlock {
  const ram = RamBlock.allocate('pc.ram', PAGES * TARGET_PAGE_SIZE);
  for (let page = 0; page < PAGES; page++) {
    const at = ram.offsetInSlab(page);
    fill(ram.slabOf(page).subarray(at, at + TARGET_PAGE_SIZE), page);
  }
  return ram;
}

const WORDS = 'the dirty bitmap of each ram block is synced before a pass and the threshold is bandwidth times downtime limit 4096 0x7f3a'.split(' ');

const KINDS: [string, (page: Uint8Array, index: number, random: SeededRandom) => void][] = [
  ['text', (page, index) => {
    for (let at = 0, w = index; at < page.length; w++) {
      for (const c of `${WORDS[(w * 7) % WORDS.length]} `) if (at < page.length) page[at++] = c.charCodeAt(0);
    }
  }],
  ['mostly zero, a few small structures', (page, index, random) => {
    for (let s = 0; s < 6; s++) page.set(random.bytes(24), random.int(0, 4000));
    page[0] = index;
  }],
  ['32-byte records, each starting with an 8-byte hash', (page, index, random) => {
    for (let r = 0; r < page.length / 32; r++) {
      page.set(random.bytes(8), r * 32);
      page[r * 32 + 8] = r;
      page[r * 32 + 16] = index & 0xff;
    }
  }],
  ['half random bytes, half zeros', (page, _index, random) => page.set(random.bytes(page.length / 2))],
];

describe('the incompressible-page check', () => {
  it('finds random pages incompressible', () => {
    const random = new SeededRandom(5);
    const check = new IncompressiblePageCheck(blockOf((page) => page.set(random.bytes(page.length))));
    let raw = 0;
    for (let page = 0; page < PAGES; page++) if (check.test(page)) raw++;
    expect(raw).to.be.at.least(PAGES * 0.99);
  });

  it('inside a run of incompressible pages looks at every 8th page only, and after a compressible one at every page again', () => {
    const random = new SeededRandom(6);
    const text = KINDS[0]![1];
    const compressible = new Set([20, 24, 25, 30]);
    const ram = blockOf((page, index) => (compressible.has(index) ? text(page, index, random) : page.set(random.bytes(page.length))));
    const check = new IncompressiblePageCheck(ram);
    const found = Array.from({ length: 40 }, (_, page) => check.inRun(page));
    // Page 20 lies in a trusted run (8 random pages before it, 20 not a multiple of 8): taken as raw. 24 is looked at.
    expect(found[20]).to.equal(true);
    expect([24, 25, 30].map((p) => found[p])).to.deep.equal([false, false, false]);
    expect(found.filter((raw) => !raw).length).to.equal(3);
    // A page out of sequence starts afresh: looked at.
    expect(check.inRun(20)).to.equal(false);
  });

  for (const [kind, fill] of KINDS) {
    it(`finds ${kind} compressible, and such a page does shrink under zlib level 1`, () => {
      const random = new SeededRandom(9);
      const ram = blockOf((page, index) => fill(page, index, random));
      const check = new IncompressiblePageCheck(ram);
      for (let page = 0; page < PAGES; page++) expect(check.test(page), `page ${page}`).to.equal(false);
      const at = ram.offsetInSlab(7);
      const ratio = TARGET_PAGE_SIZE / deflateSync(ram.slabOf(7).subarray(at, at + TARGET_PAGE_SIZE), { level: 1 }).length;
      expect(ratio).to.be.above(1.5);
    });
  }
});

interface CompressionFigures {
  'compressed-pages': number;
  'compressed-bytes': number;
  'compression-rate': number;
  'raw-pages': number;
}

describe('a compressing multifd migration sends incompressible pages raw', function () {
  this.timeout(60_000);
  scratchDirPerTest('livemig-incompressible-', stopAllInstances);
  const GUEST = ['--ram', '32M', '--smp', '1'];

  for (const compression of ['zlib', 'zstd'] as CompressionMethod[]) {
    it(`${compression}: a guest of random bytes arrives exact, its pages sent raw, as many bytes as the pages`, async () => {
      const setup = multifdArgs({ channels: 2, compression });
      const [destination, source] = await Promise.all([
        startInstance([...GUEST, ...setup, '--paused', '--incoming', 'tcp:127.0.0.1:0'], { name: 'dst' }),
        startInstance([...GUEST, ...setup, ...UNLIMITED, '--fill', 'random', '--paused'], { name: 'src' }),
      ]);
      await source.qmp.execute('migrate', { uri: await boundTcpUri(destination.qmp) });
      const info = await waitForMigration(source.qmp, ['completed', 'failed'], 45_000);
      expect(info.status, String(info['error-desc'])).to.equal('completed');
      expect((await waitForMigration(destination.qmp, ['completed', 'failed'])).status).to.equal('completed');
      expect(await allDigests(destination.qmp)).to.deep.equal(await allDigests(source.qmp));

      const ram = info.ram!;
      const figures = (info as unknown as Record<string, CompressionFigures>)['__org.livemig_multifd-compression']!;
      expect(figures['raw-pages'] + figures['compressed-pages']).to.equal(ram.normal);
      expect(figures['raw-pages']).to.be.at.least(ram.normal! * 0.99);
      // Headers and descriptors only beyond the pages themselves.
      expect(ram['multifd-bytes']).to.be.within(ram['normal-bytes']!, ram['normal-bytes']! * 1.01 + 64 * 1024);
    });
  }
});
