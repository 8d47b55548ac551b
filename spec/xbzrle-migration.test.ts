/**
 * XBZRLE in real migrations: a guest that keeps re-dirtying a small range
 * (the ab workload) goes over several passes with and without the xbzrle
 * capability; with it, pages sent again go as deltas against the page
 * cache, far fewer bytes cross, and the destination's memory is still the
 * source's byte for byte. query-migrate's xbzrle-cache follows QEMU's
 * meanings and ram.transferred what went on the wire; the cache resized
 * mid-migration, or a switch to postcopy, still ends exact; the parameter's
 * misuse gets QEMU's answers. The page cache and the saver, each of QEMU's
 * cases one by one; and a destination given bad XBZRLE pages by a tampering
 * proxy refuses them, saying why, while the source guest runs on intact.
 */
import { expect } from 'chai';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Guest } from '../actors/guest/guest.js';
import { GuestSink } from '../actors/ram/guest-sink.js';
import type { PageBatch } from '../actors/ram/page-runs.js';
import { XbzrleSaver } from '../actors/ram/xbzrle-saver.js';
import { FrameType } from '../protocols/stream/constants.js';
import { StreamDecoder } from '../protocols/stream/decode.js';
import { encodePagesHeader } from '../protocols/stream/encode.js';
import { encode as encodeXbzrle } from '../protocols/xbzrle/encode.js';
import { runCli } from './support/cli.js';
import { FaultProxy } from './support/fault-proxy.js';
import { streamUnits } from './support/stream-units.js';
import { scratchDirPerTest } from './support/scratch-dir.js';
import { FakeGuest } from './stream-fake-guest.js';
import { startInstance, stopAllInstances, type TestInstance } from './support/instances.js';
import {
  abCheck, abCheckStopped, allDigests, boundTcpUri, memoryKeepsChanging, queryMigrate, runState, sleep, waitForMigration,
  type MigrateInfo,
} from './support/migration-driver.js';

const MiB = 1 << 20;
const GUEST = ['--ram', '32M', '--smp', '1'];
/** ab over 2 MiB (512 pages): every page is dirtied again many times a second, one byte at a time. */
const AB_START = 1 * MiB;
const AB_END = 3 * MiB;
const DIRTIER = ['--workload', 'ab', '--ab-start', '1M', '--ab-end', '3M'];
/**
 * 16 MB/s with no downtime allowed: precopy goes round while the guest
 * dirties pages, and completes once the test stops it.
 */
const SLOW_LINK = ['--param', 'max-bandwidth=16000000', '--param', 'downtime-limit=0'];
/** Passes before the guest is stopped: the cache fills in the second, the third on are deltas. */
const PASSES = 6;

interface XbzrleCache {
  'cache-size': number;
  bytes: number;
  pages: number;
  'cache-miss': number;
  'cache-miss-rate': number;
  'encoding-rate': number;
  overflow: number;
}
type XbzrleInfo = MigrateInfo & { 'xbzrle-cache'?: XbzrleCache };

/** A destination (listening, or deferred) and an ab source whose guest is seen dirtying its range. */
async function startPair(sourceArgs: string[], incoming = 'tcp:127.0.0.1:0', destinationArgs: string[] = []): Promise<[TestInstance, TestInstance]> {
  const pair = await Promise.all([
    startInstance([...GUEST, ...destinationArgs, '--incoming', incoming], { name: 'dst' }),
    startInstance([...GUEST, ...DIRTIER, ...SLOW_LINK, ...sourceArgs], { name: 'src' }),
  ]);
  // A guest not yet at work would let precopy converge after its first pass.
  expect(await memoryKeepsChanging(pair[1], AB_START, AB_END - AB_START)).to.equal(true);
  return pair;
}

/** Polls the source until `done` holds for its query-migrate (or it ends). */
async function waitUntil(source: TestInstance, done: (info: XbzrleInfo) => boolean, timeoutMs = 60_000): Promise<XbzrleInfo> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const info = (await queryMigrate(source.qmp)) as XbzrleInfo;
    if (done(info) || ['completed', 'failed', 'cancelled'].includes(info.status)) return info;
    if (Date.now() > deadline) throw new Error(`gave up waiting: ${JSON.stringify(info)}`);
    await sleep(20);
  }
}

/**
 * Migrates the ab guest over PASSES passes (`midway` runs half-way), then
 * stops it so precopy converges; checks both guests hold the same bytes.
 * Returns the source's last query-migrate, what it showed while active,
 * and, with `capture`, every byte that went to the destination.
 */
async function migrateSeveralPasses(
  sourceArgs: string[],
  options: { midway?: (source: TestInstance) => Promise<void>; capture?: boolean } = {},
): Promise<{ done: XbzrleInfo; active: XbzrleInfo; captured: Buffer | undefined }> {
  const { midway, capture } = options;
  const [destination, source] = await startPair(sourceArgs);
  // Autostart off: the destination's guest stays as it arrived, to be compared with the source's.
  await destination.qmp.execute('stop');
  const target = await boundTcpUri(destination.qmp);
  const proxy = capture ? await FaultProxy.start(hostPort(target), { capture: true }) : undefined;
  try {
    await source.qmp.execute('migrate', { uri: proxy?.uri ?? target });
    return { ...(await severalPasses(source, destination, midway)), captured: proxy?.captured() };
  } finally {
    await proxy?.close();
  }
}

function hostPort(uri: string): { host: string; port: number } {
  const { hostname, port } = new URL(uri.replace(/^tcp:/, 'tcp://'));
  return { host: hostname, port: Number(port) };
}

async function severalPasses(
  source: TestInstance,
  destination: TestInstance,
  midway: ((source: TestInstance) => Promise<void>) | undefined,
): Promise<{ done: XbzrleInfo; active: XbzrleInfo }> {
  if (midway) {
    await waitUntil(source, (info) => (info.ram?.['dirty-sync-count'] ?? 0) >= PASSES / 2);
    await midway(source);
  }
  const active = await waitUntil(source, (info) => (info.ram?.['dirty-sync-count'] ?? 0) >= PASSES);
  expect(active.status, active['error-desc']).to.be.oneOf(['active', 'completed']);
  // A guest the busy host left unscheduled between two quick passes dirtied nothing: precopy converged by itself, as QEMU's would.
  if (active.status === 'active') await source.qmp.execute('stop');
  const done = (await waitForMigration(source.qmp, ['completed', 'failed'], 60_000)) as XbzrleInfo;
  expect(done.status, done['error-desc']).to.equal('completed');
  expect((await waitForMigration(destination.qmp, ['completed', 'failed'])).status).to.equal('completed');
  expect(await runState(destination.qmp)).to.equal('paused');
  expect(await allDigests(destination.qmp)).to.deep.equal(await allDigests(source.qmp));
  expect((await abCheck(destination, AB_START, AB_END)).badPages).to.deep.equal([]);
  return { done, active };
}

describe('xbzrle in migrations', function () {
  this.timeout(120_000);
  const scratch = scratchDirPerTest('livemig-xbzrle-', stopAllInstances);

  it('sends a guest re-dirtying a small range in clearly fewer bytes, and the destination ends exact', async () => {
    const plain = await migrateSeveralPasses([]);
    await stopAllInstances();
    const xbzrle = await migrateSeveralPasses(['--cap', 'xbzrle']);

    const figures = (info: XbzrleInfo) => {
      const ram = info.ram!;
      return `${ram.transferred} bytes in ${ram['dirty-sync-count']} dirty syncs (${Math.round(ram.transferred! / ram['dirty-sync-count']!)} per sync), ${ram.normal} pages whole`;
    };
    console.log(`      without xbzrle: ${figures(plain.done)}`);
    console.log(`      with xbzrle:    ${figures(xbzrle.done)}; xbzrle-cache ${JSON.stringify(xbzrle.done['xbzrle-cache'])}`);

    expect(plain.done, 'no xbzrle-cache without the capability').not.to.have.property('xbzrle-cache');
    expect(xbzrle.done.ram!.transferred, 'bytes on the wire').to.be.below(plain.done.ram!.transferred! / 2);
    expect(xbzrle.done.ram!.normal, 'pages sent whole').to.be.below(plain.done.ram!.normal!);
  });

  it("shows QEMU's xbzrle-cache figures, consistent with what was sent", async () => {
    const { done, active, captured } = await migrateSeveralPasses(['--cap', 'xbzrle', '--param', 'xbzrle-cache-size=1M'], { capture: true });
    expect(done.ram!['dirty-sync-count'], 'passes enough for the cache to be hit').to.be.at.least(3);
    for (const info of [active, done]) {
      expect(info['xbzrle-cache']).to.have.all.keys(['cache-size', 'bytes', 'pages', 'cache-miss', 'cache-miss-rate', 'encoding-rate', 'overflow']);
      expect(info['xbzrle-cache']!['cache-size']).to.equal(MiB);
    }
    const cache = done['xbzrle-cache']!;
    const ram = done.ram!;
    // The second pass misses (nothing cached yet) and fills the cache; the later ones hit it.
    expect(cache['cache-miss'], 'cache misses').to.be.at.least(1);
    expect(cache.pages, 'pages that hit the cache').to.be.at.least(1);
    // ab changes one byte of a page: a delta of a few bytes, never an overflow.
    expect(cache.overflow).to.equal(0);
    expect(cache.bytes, 'bytes sent for hits').to.be.above(0).and.below(cache.pages * 64);
    expect(cache.bytes, 'within what went on the wire').to.be.below(ram.transferred!);
    expect(ram['precopy-bytes']! + ram['downtime-bytes']!).to.equal(ram.transferred);
    expect(cache['cache-miss-rate']).to.be.within(0, 1);
    expect(cache['encoding-rate']).to.be.at.least(0);

    // What went on the wire: ram.transferred counts it all, and `livemig analyze` finds the XBZRLE pages in it.
    expect(captured!.length, 'bytes on the wire').to.equal(ram.transferred);
    const path = join(scratch(), 'capture.bin');
    writeFileSync(path, captured!);
    const { code, stdout } = await runCli('analyze', ['--file', path, '--json'], 30_000);
    expect(code).to.equal(0);
    const pages = (JSON.parse(stdout) as { pages: { normal: number; zero: number; compressed: number } }).pages;
    expect(pages).to.deep.include({ normal: ram.normal, zero: ram.duplicate });
    expect(pages.compressed, 'pages sent as deltas').to.be.above(0).and.at.most(cache.pages);
  });

  it('resizes the cache live (migrate-set-parameters mid-migration), the old contents dropped, and still ends exact', async () => {
    let before: XbzrleInfo | undefined;
    // Larger than the guest's 32 MiB to begin with, as QEMU allows.
    const { done } = await migrateSeveralPasses(['--cap', 'xbzrle', '--param', 'xbzrle-cache-size=1G'], {
      midway: async (source) => {
        before = (await queryMigrate(source.qmp)) as XbzrleInfo;
        await source.qmp.execute('migrate-set-parameters', { 'xbzrle-cache-size': 256 * 1024 });
      },
    });
    expect(before!['xbzrle-cache']!['cache-size']).to.equal(1024 * MiB);
    expect(done['xbzrle-cache']!['cache-size']).to.equal(256 * 1024);
    // That the new cache starts empty is the saver's unit test's: here it is that the destination still ends exact.
    expect(done['xbzrle-cache']!['cache-miss']).to.be.at.least(before!['xbzrle-cache']!['cache-miss']);
  });

  it('switched to postcopy after XBZRLE passes (pages go whole from then on), ends exact on the destination running the guest', async () => {
    const postcopy = ['--cap', 'postcopy-ram'];
    const [destination, source] = await startPair(['--cap', 'xbzrle', ...postcopy], 'tcp:127.0.0.1:0', postcopy);
    await source.qmp.execute('migrate', { uri: await boundTcpUri(destination.qmp) });
    const before = await waitUntil(source, (info) => (info.ram?.['dirty-sync-count'] ?? 0) >= PASSES);
    if (before.status === 'active') await source.qmp.execute('migrate-start-postcopy');
    const done = (await waitForMigration(source.qmp, ['completed', 'failed'], 60_000)) as XbzrleInfo;
    expect(done.status, done['error-desc']).to.equal('completed');
    expect((await waitForMigration(destination.qmp, ['completed', 'failed'])).status).to.equal('completed');
    expect(await runState(destination.qmp)).to.equal('running');
    expect((await abCheckStopped(destination, AB_START, AB_END)).badPages).to.deep.equal([]);
    expect(done['xbzrle-cache']!.pages, 'deltas before the switch').to.be.above(0);
  });

  it("answers xbzrle-cache-size misuse with QEMU's errors; a cache larger than guest RAM is taken, as QEMU takes it", async () => {
    const vm = await startInstance(GUEST, { name: 'vm' });
    const refusal = async (value: number) => {
      try {
        await vm.qmp.execute('migrate-set-parameters', { 'xbzrle-cache-size': value });
      } catch (error) {
        return (error as { desc?: string }).desc;
      }
      return 'accepted';
    };
    const qemuError = "Parameter 'xbzrle_cache_size' expects a power of two no less than the target page size";
    expect(await refusal(2048)).to.equal(qemuError);
    expect(await refusal(3 * 4096)).to.equal(qemuError);
    expect(await refusal(0)).to.equal(qemuError);
    expect(await refusal(1024 * MiB)).to.equal('accepted');
    const params = await vm.qmp.execute<Record<string, number>>('query-migrate-parameters');
    expect(params['xbzrle-cache-size']).to.equal(1024 * MiB);
    // The capability with multifd: QEMU's rule.
    await vm.qmp.execute('migrate-set-capabilities', { capabilities: [{ capability: 'xbzrle', state: true }] });
    let desc: string | undefined;
    await vm.qmp.execute('migrate-set-capabilities', { capabilities: [{ capability: 'multifd', state: true }] }).catch((e: { desc?: string }) => (desc = e.desc));
    expect(desc).to.equal('Multifd is not compatible with xbzrle');
  });
});

describe("the source's page cache and XBZRLE saver, the destination's sink", () => {
  const PAGE = 4096;
  const PAGES = 8;
  let guest: Guest;
  let ram: Uint8Array;
  let cacheSize: bigint;
  let saver: XbzrleSaver;
  let destination: FakeGuest;
  let decoder: StreamDecoder;

  beforeEach(async () => {
    guest = await Guest.create({ ram: PAGES * PAGE, smp: 1, workload: { kind: 'idle' }, runState: 'paused' });
    ram = guest.blocks[0]!.slabs[0]!;
    cacheSize = 64n * BigInt(MiB);
    saver = new XbzrleSaver(guest.blocks, () => cacheSize, 0);
    destination = new FakeGuest([PAGES]);
    decoder = new StreamDecoder({ sink: destination, onMessage: () => {}, expectHello: false });
    decoder.setLayout(destination.layout);
    decoder.setXbzrle(destination);
  });
  afterEach(() => guest.destroy());

  /** Saves `page` (zero: as a zero page) in dirty sync `age`, feeds the frames to the destination, and returns their kinds. */
  const send = (page: number, age: number, zero = false): string[] => {
    const batch: PageBatch = { block: 0, runs: [{ first: page, count: 1, zero }], data: [], normalPages: zero ? 0 : 1, zeroPages: zero ? 1 : 0 };
    return saver.save(batch, age).map((frame) => {
      if (frame instanceof Uint8Array) {
        decoder.push(frame);
        return 'xbzrle';
      }
      decoder.push(encodePagesHeader(frame.block, frame.runs));
      for (const view of frame.data) decoder.push(view);
      return frame.zeroPages > 0 ? 'zero' : 'whole';
    });
  };
  const exact = (page: number) => Buffer.from(destination.page(0, page)).equals(ram.subarray(page * PAGE, (page + 1) * PAGE));
  const counters = () => {
    const { cacheMiss, pages, overflow, bytes } = saver.counters;
    return { cacheMiss, pages, overflow, bytes };
  };

  it('a miss is cached and sent whole, a hit as a delta, an unchanged page not at all, an overflow whole; the destination follows', () => {
    ram.fill(7, 3 * PAGE, 4 * PAGE);
    expect(send(3, 2)).to.deep.equal(['whole']);
    expect(exact(3)).to.equal(true);
    ram[3 * PAGE + 100] = 8;
    expect(send(3, 3)).to.deep.equal(['xbzrle']);
    expect(exact(3)).to.equal(true);
    expect(send(3, 4), 'unchanged').to.deep.equal([]);
    for (let i = 0; i < PAGE; i += 2) ram[3 * PAGE + i] = i & 0xff;
    expect(send(3, 5), 'every other byte changed').to.deep.equal(['whole']);
    expect(exact(3)).to.equal(true);
    // QEMU's bytes: the delta (a zero run, a literal run, one byte) with its page header, and a page for the overflow.
    expect(counters()).to.deep.equal({ cacheMiss: 1, pages: 3, overflow: 1, bytes: 6 + 3 + PAGE });
    ram[3 * PAGE + 1] = 1;
    expect(send(3, 6), 'the cache holds what the overflow sent').to.deep.equal(['xbzrle']);
    expect(exact(3)).to.equal(true);
  });

  it('a page that became zero updates its cached copy, so the next delta is against zeros', () => {
    ram.fill(9, 0, PAGE);
    send(0, 2);
    ram.fill(0, 0, PAGE);
    expect(send(0, 3, true)).to.deep.equal(['zero']);
    ram[5] = 1;
    expect(send(0, 4)).to.deep.equal(['xbzrle']);
    expect(exact(0)).to.equal(true);
  });

  it('keeps a slot a page used within two dirty syncs from another page, as QEMU does', () => {
    cacheSize = BigInt(PAGE); // one slot
    ram.fill(1, 0, PAGE);
    ram.fill(2, PAGE, 2 * PAGE);
    send(0, 2);
    expect(send(1, 3), 'refused the slot: sent from the guest, not cached').to.deep.equal(['whole']);
    ram[7] = 3;
    expect(send(0, 3), 'page 0 still hits').to.deep.equal(['xbzrle']);
    expect(send(1, 5), 'the slot is page 1\'s once page 0 is two syncs old').to.deep.equal(['whole']);
    ram[PAGE + 7] = 4;
    expect(send(1, 6)).to.deep.equal(['xbzrle']);
    expect([exact(0), exact(1)]).to.deep.equal([true, true]);
  });

  it('in the last stage, a miss is not cached and a hit does not update the cache', () => {
    ram.fill(1, 0, PAGE);
    send(0, 2);
    saver.lastStage = true;
    ram[9] = 2;
    expect(send(0, 3)).to.deep.equal(['xbzrle']);
    ram.fill(5, PAGE, 2 * PAGE);
    expect(send(1, 3)).to.deep.equal(['whole']);
    expect(send(1, 4), 'still a miss').to.deep.equal(['whole']);
    expect([exact(0), exact(1)]).to.deep.equal([true, true]);
  });

  it('a new xbzrle-cache-size starts an empty cache of that size', () => {
    ram.fill(1, 0, PAGE);
    send(0, 2);
    cacheSize = 2n * BigInt(PAGE);
    ram[1] = 2;
    expect(send(0, 3), 'the old contents are gone').to.deep.equal(['whole']);
    ram[2] = 3;
    expect(send(0, 4)).to.deep.equal(['xbzrle']);
    expect(exact(0)).to.equal(true);
  });

  it("the destination's guest sink patches a page in place in precopy, and refuses once postcopy places pages whole", () => {
    const sink = new GuestSink(guest.blocks);
    ram.fill(3, 0, PAGE);
    const next = Uint8Array.from(ram.subarray(0, PAGE));
    next[42] = 9;
    const delta = new Uint8Array(PAGE);
    const length = encodeXbzrle(ram.subarray(0, PAGE), next, delta);
    sink.loadXbzrlePage(0, 0, delta.subarray(0, length));
    expect(Buffer.from(ram.subarray(0, PAGE)).equals(next)).to.equal(true);
    expect([guest.blocks[0]!.received.test(0), guest.blocks[0]!.touched.test(0)]).to.deep.equal([true, true]);
    expect(() => sink.loadXbzrlePage(0, 1, Uint8Array.of(0x80))).to.throw(/^Failed to load XBZRLE page - decode error! \(page 1 of RAM block 'pc.ram': XBZRLE delta, byte 0: /);
    sink.startPostcopy();
    expect(() => sink.loadXbzrlePage(0, 0, delta.subarray(0, length))).to.throw('Failed to load XBZRLE page - page 0 of block 0 came in postcopy, where pages come whole');
  });

  it("works its rates out per sync period of over a second, as QEMU's migration_update_rates", () => {
    ram.fill(1, 0, 2 * PAGE);
    send(0, 2);
    send(1, 2);
    ram[3] = 2;
    send(0, 3);
    saver.onSync(500, 3);
    expect(saver.counters.cacheMissRate, 'within the first second: not yet').to.equal(0);
    // 4 pages sent (2 whole, 1 delta, counted with the normal ones given), 2 misses, 1 hit of 6 + 3 bytes.
    saver.onSync(1500, 3);
    expect(saver.counters.cacheMissRate).to.equal(2 / 4);
    expect(saver.counters.encodingRate).to.equal(PAGE / saver.counters.bytes);
    saver.onSync(2600, 3);
    expect([saver.counters.cacheMissRate, saver.counters.encodingRate], 'nothing sent in the period: kept').to.deep.equal([2 / 4, PAGE / saver.counters.bytes]);
  });
});

/** Offsets in an XBZRLE frame of its first page's index, delta length and delta. */
const FIRST_PAGE = 16;
const FIRST_LENGTH = 20;
const FIRST_DELTA = 22;

describe('a destination refusing bad XBZRLE pages', function () {
  this.timeout(60_000);
  afterEach(stopAllInstances);

  /** Changes the first XBZRLE frame (or, for `header`, the stream header) on its way. */
  const cases: [string, 'xbzrle' | 'header', (frame: Buffer) => void, RegExp][] = [
    ['a corrupt delta', 'xbzrle', (frame) => frame.fill(0xff, FIRST_DELTA, FIRST_DELTA + frame.readUInt16BE(FIRST_LENGTH)),
      /^Failed to load XBZRLE page - decode error! \(page \d+ of RAM block 'pc.ram': XBZRLE delta, byte 0: /],
    ['a page out of its block', 'xbzrle', (frame) => frame.writeUInt32BE(0x7fffffff, FIRST_PAGE),
      /^Failed to load XBZRLE page - page 2147483647 is outside block \d+ \(it has \d+ pages\)$/],
    ['a delta longer than a page', 'xbzrle', (frame) => frame.writeUInt16BE(4097, FIRST_LENGTH),
      /^Failed to load XBZRLE page - len overflow! \(a delta of 4097 bytes for page \d+ of block \d+, pages are 4096\)$/],
    // Same length in msgpack: the header now says `events` where it said `xbzrle`.
    ['an XBZRLE frame in a stream without the capability', 'header', (frame) => frame.set(Buffer.from('events'), frame.indexOf('xbzrle')),
      /^Failed to load XBZRLE page - an XBZRLE frame, but the stream header did not turn the xbzrle capability on$/],
  ];
  for (const [what, target, tamper, reason] of cases) {
    it(`refuses ${what}: the destination fails saying why and stays up, the source guest runs on intact`, async () => {
      const [destination, source] = await startPair(['--cap', 'xbzrle'], 'defer');
      await destination.qmp.execute('migrate-incoming', { uri: 'tcp:127.0.0.1:0', 'exit-on-error': false });
      let units = 0;
      let tampered = false;
      const proxy = await FaultProxy.start(hostPort(await boundTcpUri(destination.qmp)), {
        tamperTowardsDestination: {
          frames: streamUnits(),
          tamper: (unit) => {
            // The first unit is the channel hello; then frames, told apart by their type.
            if (units++ === 0 || tampered) return unit;
            const wanted = target === 'xbzrle' ? unit[0] === FrameType.XBZRLE : unit[0] === FrameType.CONTROL && unit.includes('xbzrle');
            if (wanted) {
              tampered = true;
              tamper(unit);
            }
            return unit;
          },
        },
      });
      try {
        await source.qmp.execute('migrate', { uri: proxy.uri });
        const failed = await waitForMigration(destination.qmp, ['failed', 'completed'], 30_000);
        expect(tampered, `the frame was there to tamper with: ${JSON.stringify(failed)}`).to.equal(true);
        expect(failed.status).to.equal('failed');
        expect(failed['error-desc']).to.match(/^load of migration failed: /);
        expect(failed['error-desc']!.replace(/^load of migration failed: /, '')).to.match(reason);
        expect(await runState(destination.qmp), 'the destination is up').to.equal('inmigrate');

        const sourceInfo = await waitForMigration(source.qmp, ['failed', 'completed'], 30_000);
        expect(sourceInfo.status).to.equal('failed');
        expect(await runState(source.qmp)).to.equal('running');
        expect((await abCheckStopped(source, AB_START, AB_END)).badPages).to.deep.equal([]);
      } finally {
        await proxy.close();
      }
    });
  }
});
