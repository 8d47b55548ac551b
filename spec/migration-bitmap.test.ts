/**
 * The source's migration bitmap, shared by the migration thread and the
 * postcopy-preempt thread: a page is taken (and so sent) once, the count of
 * pages left follows every take, untake and dirty sync, and the request
 * hint moves the background once. Then the destination's side of the same
 * rule: of two sinks placing one page, only the one that claimed it writes.
 */
import { expect } from 'chai';
import { TARGET_PAGE_SIZE } from '../actors/guest/constants.js';
import { RamBlock } from '../actors/guest/ram-block.js';
import { GuestSink } from '../actors/ram/guest-sink.js';
import { MigrationBitmap } from '../actors/ram/migration-bitmap.js';
import { startTsWorker } from '../actors/threads/ts-worker.js';

describe('migration bitmap', () => {
  it('starts full, with no bit past a block end', () => {
    const bitmap = MigrationBitmap.full([40, 0, 64]);
    expect(bitmap.remaining).to.equal(104);
    expect(bitmap.words[0]![1]).to.equal(0xff);
    expect(bitmap.words[1]![0]).to.equal(0);
    expect(bitmap.words[2]![1]).to.equal(-1);
  });

  it('gives each page to one taker, counts dirty syncs, recounts from the bits', () => {
    const bitmap = MigrationBitmap.full([64]);
    expect(bitmap.take(0, 5)).to.equal(true);
    expect(bitmap.take(0, 5)).to.equal(false);
    expect(bitmap.remaining).to.equal(63);
    bitmap.recount();
    expect(bitmap.remaining).to.equal(63);
    for (let page = 0; page < 64; page++) bitmap.take(0, page);
    expect(bitmap.remaining).to.equal(0);
    // Pages 0, 1 and 33 dirtied; 1 twice over: counted once.
    expect(bitmap.merge(0, 0, 0b11)).to.equal(2);
    expect(bitmap.merge(0, 0, 0b10)).to.equal(0);
    expect(bitmap.merge(0, 1, 0b10)).to.equal(1);
    expect(bitmap.remaining).to.equal(3);
  });

  it('after a recovery, makes pending exactly the pages the destination lacks', () => {
    const bitmap = MigrationBitmap.full([40]);
    for (let page = 0; page < 40; page++) bitmap.take(0, page);
    // Received: pages 0-7 and 32; everything else (up to the block's 40 pages) goes again.
    bitmap.resendUnreceived(0, Uint8Array.from([0xff, 0, 0, 0, 0x01]), 40);
    bitmap.recount();
    expect(bitmap.remaining).to.equal(40 - 9);
    expect(bitmap.words[0]![0]).to.equal(~0xff);
    expect(bitmap.words[0]![1]).to.equal(0b11111110);
  });

  it('hands a request hint out once', () => {
    const bitmap = MigrationBitmap.full([64]);
    expect(bitmap.takeHint()).to.equal(undefined);
    bitmap.hint(0, 17);
    expect(bitmap.takeHint()).to.deep.equal({ block: 0, page: 17 });
    expect(bitmap.takeHint()).to.equal(undefined);
  });

  it('two threads taking every page at once take each exactly once', async () => {
    const pages = 1 << 20;
    const bitmap = MigrationBitmap.full([pages]);
    const counts = new Int32Array(new SharedArrayBuffer(pages * 4));
    const go = new Int32Array(new SharedArrayBuffer(4));
    const worker = startTsWorker(new URL('./support/bitmap-taker-worker.ts', import.meta.url), {
      workerData: { bitmap: bitmap.shared, counts: counts.buffer, pages, go: go.buffer },
    });
    await new Promise((resolve) => worker.once('message', resolve));
    const done = new Promise((resolve) => worker.once('message', resolve));
    Atomics.store(go, 0, 1);
    Atomics.notify(go, 0);
    // From the other end, so the two meet in the middle with every word contended around there.
    for (let page = pages - 1; page >= 0; page--) if (bitmap.take(0, page)) Atomics.add(counts, page, 1);
    await done;
    await worker.terminate();
    expect(counts.every((n) => n === 1)).to.equal(true);
    expect(bitmap.remaining).to.equal(0);
  });
});

describe('postcopy placement: one copy of a page lands', () => {
  function stagedPage(sink: GuestSink, page: number, byte: number): void {
    sink.pageView(0, page, 1).fill(byte);
    sink.pagesLoaded(0, page, 1);
  }

  it('a page another thread is placing is dropped here, and so is one already received', () => {
    const ram = RamBlock.allocate('pc.ram', 64 * TARGET_PAGE_SIZE);
    const sink = new GuestSink([ram]);
    sink.startPostcopy();
    ram.placing.set(3);
    stagedPage(sink, 3, 0xaa);
    expect(ram.received.test(3)).to.equal(false);
    expect(ram.pagesView(3, 1).every((b) => b === 0)).to.equal(true);

    stagedPage(sink, 4, 0xbb);
    expect(ram.received.test(4)).to.equal(true);
    // The guest writes the page; a second copy (from the other channel) must not undo it.
    ram.pagesView(4, 1)[0] = 0x11;
    const second = new GuestSink([ram]);
    second.startPostcopy();
    stagedPage(second, 4, 0xcc);
    expect(ram.pagesView(4, 1)[0]).to.equal(0x11);
  });
});
