/**
 * The source's RAM side (QEMU's ram.c): the migration bitmap of pages still
 * to send, dirty syncs that merge the guest's dirty log into it, and page
 * batches taken from it.
 *
 * Hot path: nextBatch runs once per ~4 MiB of pages. Per page it takes a bit
 * (one atomic: see MigrationBitmap) and, for a page the guest has written,
 * checks in place whether it is zero (ZeroPageCheck); it never copies page
 * bytes or allocates per page. Pages the guest never wrote are sent as zero
 * runs without being read at all.
 */
import { DirtyLog } from '../guest/dirty-log.js';
import type { RamBlock } from '../guest/ram-block.js';
import { DirtyRateWindow } from './dirty-rate-window.js';
import { MigrationBitmap } from './migration-bitmap.js';
import { MAX_DATA_PAGES, RunBuilder, ZeroPageCheck, type PageBatch } from './page-runs.js';
import { requestedBatches } from './requested-pages.js';

export class RamSaver {
  /** Pages still to send; in postcopy the preempt thread takes requested pages from it too. */
  readonly bitmap: MigrationBitmap;
  private readonly bitmaps: Int32Array[];
  private readonly logs: DirtyLog[];
  private readonly zero: ZeroPageCheck[];
  private readonly rateWindow = new DirtyRateWindow();
  private cursorBlock = 0;
  private cursorPage = 0;
  /** nextBatch has come back round to the first block: every page has been sent once (QEMU's complete_round). */
  completeRound = false;

  constructor(private readonly blocks: readonly RamBlock[]) {
    this.logs = blocks.map((b) => new DirtyLog(b));
    this.zero = blocks.map((b) => new ZeroPageCheck(b));
    this.bitmap = MigrationBitmap.full(blocks.map((b) => b.pageCount));
    this.bitmaps = this.bitmap.words;
  }

  /** Pages set in the migration bitmaps. */
  get remaining(): number {
    return this.bitmap.remaining;
  }

  /**
   * Of those, the pages that will carry data: ones the guest has written.
   * A page never written goes as a zero run, a few bytes, so a switchover
   * that weighed it as a whole page would expect a far longer downtime than
   * it has (a mostly untouched guest's last pages are those).
   */
  pendingDataPages(): number {
    return this.bitmap.countAnd(this.blocks.map((b) => b.touched));
  }

  /**
   * Starts dirty logging: from here on every guest write is caught; what was
   * written before is covered by the first, full pass.
   */
  startDirtyLogging(): void {
    for (const log of this.logs) log.reset();
    this.rateWindow.restart();
  }

  /**
   * QEMU's migration_bitmap_sync: fetch-and-clear every block's dirty log and
   * merge it into the migration bitmap. Returns the pages dirtied since the
   * last sync, and the dirty-page rate over at least the last second.
   */
  sync(): { rate: number; dirtied: number } {
    let dirtied = 0;
    for (let b = 0; b < this.blocks.length; b++) {
      const s = this.logs[b]!.sync();
      dirtied += s.count;
      if (s.count === 0) continue;
      for (let w = 0; w < s.bitmap.length; w++) {
        const dirty = s.bitmap[w]!;
        if (dirty !== 0) this.bitmap.merge(b, w, dirty);
      }
    }
    return { rate: this.rateWindow.sync(dirtied), dirtied };
  }

  /** The next batch of pages to send, going round the blocks; null when nothing is left. */
  nextBatch(maxDataPages = MAX_DATA_PAGES): PageBatch | null {
    if (this.remaining === 0) return null;
    this.followHint();
    for (let tried = 0; tried <= this.blocks.length; tried++) {
      const batch = this.takeFromBlock(this.cursorBlock, maxDataPages);
      if (batch) return batch;
      this.cursorBlock = (this.cursorBlock + 1) % this.blocks.length;
      this.cursorPage = 0;
      if (this.cursorBlock === 0) this.completeRound = true;
    }
    return null;
  }

  /**
   * For multifd: the next dirty ranges of one block, up to `maxPages`, of
   * which at most `maxDataPages` the guest has written (the rest are zero
   * and cost no wire bytes), taken from the bitmap without reading a byte
   * (channel workers read, detect zero pages and send). Flat pairs: first,
   * count, first, count, …
   */
  nextRanges(maxPages: number, maxDataPages = maxPages): { block: number; ranges: Uint32Array; pages: number; dataPages: number } | null {
    if (this.remaining === 0) return null;
    for (let tried = 0; tried <= this.blocks.length; tried++) {
      const b = this.cursorBlock;
      const bmap = this.bitmaps[b]!;
      const pageCount = this.blocks[b]!.pageCount;
      let page = findNextSet(bmap, this.cursorPage, pageCount);
      if (page >= 0) {
        const pairs: number[] = [];
        const touched = this.blocks[b]!.touched;
        let taken = 0;
        let data = 0;
        while (page >= 0 && taken < maxPages && data < maxDataPages) {
          let count = 0;
          while (page + count < pageCount && taken + count < maxPages && data < maxDataPages && this.bitmap.take(b, page + count)) {
            if (touched.test(page + count)) data++;
            count++;
          }
          if (count > 0) pairs.push(page, count);
          taken += count;
          page = findNextSet(bmap, page + count, pageCount);
        }
        this.cursorPage = page < 0 ? pageCount : page;
        return { block: b, ranges: Uint32Array.from(pairs), pages: taken, dataPages: data };
      }
      this.cursorBlock = (b + 1) % this.blocks.length;
      this.cursorPage = 0;
    }
    return null;
  }

  /** Postcopy: the pages a request names, taken out of the bitmap (see requestedBatches). */
  requestedBatches(block: number, firstPage: number, count: number, resend: boolean): PageBatch[] {
    return requestedBatches(this.bitmap, this.blocks[block]!, this.zero[block]!, { block, firstPage, pages: count }, resend);
  }

  /**
   * The pages still to send, per block, as bitmaps of 32-bit words (bit i of
   * word w is page 32w+i): at the switch to postcopy, the pages the
   * destination must drop what it holds of (DESIGN rule 3's discard list).
   */
  pendingBitmaps(): readonly Int32Array[] {
    return this.bitmaps;
  }

  /** The background goes on from just past the last page request (requestedBatches sets the hint). */
  private followHint(): void {
    const hint = this.bitmap.takeHint();
    if (!hint || hint.block >= this.blocks.length) return;
    this.cursorBlock = hint.block;
    this.cursorPage = Math.min(hint.page, this.blocks[hint.block]!.pageCount);
  }

  private takeFromBlock(b: number, maxDataPages: number): PageBatch | null {
    const bmap = this.bitmaps[b]!;
    const ram = this.blocks[b]!;
    const zero = this.zero[b]!;
    let page = findNextSet(bmap, this.cursorPage, ram.pageCount);
    if (page < 0) return null;
    const builder = new RunBuilder(ram, maxDataPages);
    while (page >= 0) {
      // Only a page that fits is taken (one taken and given back could be missed by a preempt thread
      // that asked for it just then); the preempt thread may have taken it meanwhile: it is on its way.
      const isZero = zero.isZero(page);
      if (!builder.fits(page, isZero)) break;
      if (this.bitmap.take(b, page)) builder.add(page, isZero);
      page = findNextSet(bmap, page + 1, ram.pageCount);
    }
    this.cursorPage = page < 0 ? ram.pageCount : page;
    if (builder.empty) return null;
    return { block: b, runs: builder.runs, data: builder.dataViews(), normalPages: builder.dataPages, zeroPages: builder.zeroPages };
  }
}

/** The first set bit at or after `from`, below `limit`; -1 if none. */
export function findNextSet(words: Int32Array, from: number, limit: number): number {
  let w = from >>> 5;
  if (w >= words.length) return -1;
  let v = words[w]! & (~0 << (from & 31));
  while (v === 0) {
    if (++w >= words.length) return -1;
    v = words[w]!;
  }
  const bit = (w << 5) + (31 - Math.clz32(v & -v));
  return bit < limit ? bit : -1;
}
