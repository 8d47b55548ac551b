import { AtomicBitmap } from './bitmap.js';
import { PAGES_PER_SLAB, SLAB_SIZE, TARGET_PAGE_BITS, TARGET_PAGE_SIZE } from './constants.js';
import { pageAlignedSlab } from './release-pages.js';

/** Everything a RAM block is made of, in a form that can be posted to a worker. */
export interface RamBlockShared {
  name: string;
  size: number;
  slabs: SharedArrayBuffer[];
  /** Where the guest's bytes start in each slab (laid on OS pages, for release-ram). */
  slabOffsets: number[];
  dirty: SharedArrayBuffer;
  received: SharedArrayBuffer;
  writeProtect: SharedArrayBuffer;
  touched: SharedArrayBuffer;
  placing: SharedArrayBuffer;
  dirtyRate: SharedArrayBuffer;
}

/**
 * A named region of guest RAM (QEMU's RAMBlock). Its bytes live in slabs of
 * SharedArrayBuffer so vCPU workers, the migration and multifd workers all see
 * the same memory; a page never straddles two slabs.
 *
 * Bitmaps, one bit a page, Atomics only:
 * - dirty: set by every guest write, after the data (DESIGN rule 1);
 * - received: destination side, set once a page's bytes are in place;
 * - writeProtect: background snapshot, a write waits until it is cleared;
 * - touched: set on the first write, so never-written pages need no scan;
 * - placing: destination side in postcopy, where two threads place pages
 *   (the main channel's and the preempt channel's): a page is copied in by
 *   whichever sets its bit first, and only once;
 * - dirtyRate: set by guest writes while a dirty-rate measurement logs
 *   (dirty-rate-log.ts), apart from `dirty`, so measuring never takes a
 *   page from a migration's dirty sync.
 */
export class RamBlock {
  readonly pageCount: number;
  readonly slabs: Uint8Array[];
  readonly dirty: AtomicBitmap;
  readonly received: AtomicBitmap;
  readonly writeProtect: AtomicBitmap;
  readonly touched: AtomicBitmap;
  readonly placing: AtomicBitmap;
  readonly dirtyRate: AtomicBitmap;

  constructor(readonly shared: RamBlockShared) {
    if (shared.size % TARGET_PAGE_SIZE !== 0) {
      throw new RangeError(`RAM block '${shared.name}' size ${shared.size} is not a multiple of the page size`);
    }
    this.pageCount = shared.size / TARGET_PAGE_SIZE;
    this.slabs = shared.slabs.map((sab, i) => new Uint8Array(sab, shared.slabOffsets[i], Math.min(shared.size - i * SLAB_SIZE, SLAB_SIZE)));
    this.dirty = new AtomicBitmap(this.pageCount, shared.dirty);
    this.received = new AtomicBitmap(this.pageCount, shared.received);
    this.writeProtect = new AtomicBitmap(this.pageCount, shared.writeProtect);
    this.touched = new AtomicBitmap(this.pageCount, shared.touched);
    this.placing = new AtomicBitmap(this.pageCount, shared.placing);
    this.dirtyRate = new AtomicBitmap(this.pageCount, shared.dirtyRate);
  }

  /** Allocates a zeroed block. The kernel commits memory only when a page is first touched. */
  static allocate(name: string, size: number): RamBlock {
    if (!Number.isSafeInteger(size) || size <= 0) throw new RangeError(`RAM block '${name}' needs a positive size`);
    const pages = Math.ceil(size / TARGET_PAGE_SIZE);
    const slabs: SharedArrayBuffer[] = [];
    const slabOffsets: number[] = [];
    for (let left = pages * TARGET_PAGE_SIZE; left > 0; left -= SLAB_SIZE) {
      const slab = pageAlignedSlab(Math.min(left, SLAB_SIZE));
      slabs.push(slab.buffer);
      slabOffsets.push(slab.offset);
    }
    const bitmap = () => new AtomicBitmap(pages).buffer;
    return new RamBlock({
      name,
      size: pages * TARGET_PAGE_SIZE,
      slabs,
      slabOffsets,
      dirty: bitmap(),
      received: bitmap(),
      writeProtect: bitmap(),
      touched: bitmap(),
      placing: bitmap(),
      dirtyRate: bitmap(),
    });
  }

  get name(): string {
    return this.shared.name;
  }

  get size(): number {
    return this.shared.size;
  }

  /** The slab holding `page`, its index, and the byte offset of the page inside it. */
  slabOf(page: number): Uint8Array {
    return this.slabs[this.slabIndex(page)]!;
  }

  slabIndex(page: number): number {
    return Math.floor(page / PAGES_PER_SLAB);
  }

  offsetInSlab(page: number): number {
    return (page % PAGES_PER_SLAB) << TARGET_PAGE_BITS;
  }

  /**
   * A view over up to `count` pages from `page`, cut at the slab boundary.
   * For the migration's page batches: a view, never a copy.
   */
  pagesView(page: number, count: number): Uint8Array {
    const inSlab = PAGES_PER_SLAB - (page % PAGES_PER_SLAB);
    const n = Math.min(count, inSlab, this.pageCount - page);
    const start = this.offsetInSlab(page);
    return this.slabOf(page).subarray(start, start + n * TARGET_PAGE_SIZE);
  }

  /** Copies `length` bytes from guest offset `offset` into `out` (may span slabs). */
  readInto(offset: number, out: Uint8Array): void {
    let done = 0;
    while (done < out.length) {
      const at = offset + done;
      const slab = this.slabs[Math.floor(at / SLAB_SIZE)]!;
      const inSlab = at % SLAB_SIZE;
      const n = Math.min(out.length - done, SLAB_SIZE - inSlab);
      out.set(slab.subarray(inSlab, inSlab + n), done);
      done += n;
    }
  }
}
