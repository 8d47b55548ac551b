/**
 * The secondary's copy of the last completed checkpoint (QEMU's COLO RAM
 * cache), and the staging area where the next checkpoint's pages land.
 *
 * Between checkpoints the secondary guest runs and writes its own RAM; the
 * cache keeps the primary's state as of the last checkpoint. A checkpoint's
 * pages are staged first and only applied once all of them and the device
 * state are in (commit), so a checkpoint cut half-way leaves the cache
 * whole. Applying copies the staged pages into the cache, then every page
 * that either side changed (staged, or dirtied by the secondary guest)
 * from the cache into guest RAM. A failover goes back to the cache the
 * same way (rollback), with the secondary's own writes undone.
 */
import { forEachRun } from '../guest/bitmap.js';
import { PAGES_PER_SLAB, TARGET_PAGE_SIZE } from '../guest/constants.js';
import type { RamBlock } from '../guest/ram-block.js';
import type { PageSink } from '../../protocols/page-runs/types.js';

/** Staging grows in chunks of this many bytes. */
const STAGING_CHUNK = 4 << 20;

interface StagedRun {
  block: number;
  first: number;
  count: number;
  /** The pages' bytes; undefined for zero pages. */
  data: Uint8Array | undefined;
}

/** Where a checkpoint's pages land until it is complete (a PageSink for the stream decoder). */
export class CheckpointStaging implements PageSink {
  private runs: StagedRun[] = [];
  private readonly chunks: Uint8Array[] = [];
  private chunk = 0;
  private used = 0;

  /** Pages staged so far. */
  get pages(): number {
    return this.runs.reduce((n, r) => n + r.count, 0);
  }

  reset(): void {
    this.runs = [];
    this.chunk = 0;
    this.used = 0;
  }

  pageView(block: number, firstPage: number, count: number): Uint8Array {
    if (this.used === STAGING_CHUNK) {
      this.chunk++;
      this.used = 0;
    }
    const chunk = (this.chunks[this.chunk] ??= new Uint8Array(STAGING_CHUNK));
    const n = Math.min(count, (STAGING_CHUNK - this.used) / TARGET_PAGE_SIZE);
    const data = chunk.subarray(this.used, this.used + n * TARGET_PAGE_SIZE);
    this.used += data.length;
    this.runs.push({ block, first: firstPage, count: n, data });
    return data;
  }

  pagesLoaded(): void {
    // The runs were recorded as their views were handed out; a cut checkpoint is dropped whole.
  }

  zeroPages(block: number, firstPage: number, count: number): void {
    this.runs.push({ block, first: firstPage, count, data: undefined });
  }

  staged(): readonly StagedRun[] {
    return this.runs;
  }
}

export class ColoCache {
  /** Per block (stream order), per slab: the checkpoint's bytes. */
  private readonly copies: Uint8Array[][];
  readonly staging: CheckpointStaging;

  /** Takes the state the first migration loaded as checkpoint 0. */
  constructor(private readonly blocks: readonly RamBlock[]) {
    this.copies = blocks.map((b) => b.slabs.map((slab) => new Uint8Array(slab.length)));
    this.staging = new CheckpointStaging();
    blocks.forEach((b, i) => {
      forEachRun(b.touched.words, b.pageCount, (first, count) => this.copy(i, first, count, 'to-cache'));
      b.dirty.fill(false);
    });
  }

  /**
   * Applies the staged checkpoint: into the cache, then into guest RAM for
   * every page the checkpoint or the secondary guest changed. The guest
   * must be stopped. Returns the pages written into guest RAM.
   */
  commit(): number {
    const changed = this.blocks.map((b) => new Int32Array(b.dirty.words.length));
    for (const run of this.staging.staged()) {
      const block = this.blocks[run.block]!;
      const words = changed[run.block]!;
      for (let p = run.first; p < run.first + run.count; p++) words[p >>> 5]! |= 1 << (p & 31);
      if (run.data) this.write(run.block, run.first, run.data);
      else this.zero(run.block, run.first, run.count);
      block.touched.setRange(run.first, run.count);
    }
    this.staging.reset();
    return this.restore(changed);
  }

  /** Failover: guest RAM back to the last checkpoint (the secondary guest's own writes undone). Returns the pages restored. */
  rollback(): number {
    this.staging.reset();
    return this.restore(this.blocks.map((b) => new Int32Array(b.dirty.words.length)));
  }

  /** Copies from the cache into RAM every page set in `changed` or dirtied by the guest since the last checkpoint. */
  private restore(changed: Int32Array[]): number {
    let pages = 0;
    this.blocks.forEach((b, i) => {
      const dirty = new Int32Array(b.dirty.words.length);
      b.dirty.fetchAndClear(dirty);
      const words = changed[i]!;
      for (let w = 0; w < words.length; w++) words[w]! |= dirty[w]!;
      forEachRun(words, b.pageCount, (first, count) => {
        this.copy(i, first, count, 'to-ram');
        b.touched.setRange(first, count);
        pages += count;
      });
    });
    return pages;
  }

  private write(block: number, first: number, data: Uint8Array): void {
    const cache = this.copies[block]!;
    this.eachSlabPiece(block, first, data.length / TARGET_PAGE_SIZE, (slab, at, end, offset) => cache[slab]!.set(data.subarray(offset, offset + end - at), at));
  }

  private zero(block: number, first: number, count: number): void {
    const cache = this.copies[block]!;
    this.eachSlabPiece(block, first, count, (slab, at, end) => cache[slab]!.fill(0, at, end));
  }

  /** Copies a run of pages between guest RAM and the cache. */
  private copy(block: number, first: number, count: number, direction: 'to-cache' | 'to-ram'): void {
    const ram = this.blocks[block]!.slabs;
    const cache = this.copies[block]!;
    this.eachSlabPiece(block, first, count, (slab, at, end) => {
      if (direction === 'to-cache') cache[slab]!.set(ram[slab]!.subarray(at, end), at);
      else ram[slab]!.set(cache[slab]!.subarray(at, end), at);
    });
  }

  /** A run of pages, slab by slab: each piece's slab, its byte range there, and where it starts within the run. */
  private eachSlabPiece(block: number, first: number, count: number, fn: (slab: number, at: number, end: number, offset: number) => void): void {
    const b = this.blocks[block]!;
    for (let page = first; page < first + count; ) {
      const slab = b.slabIndex(page);
      const pages = Math.min(first + count - page, (slab + 1) * PAGES_PER_SLAB - page);
      const at = b.offsetInSlab(page);
      fn(slab, at, at + pages * TARGET_PAGE_SIZE, (page - first) * TARGET_PAGE_SIZE);
      page += pages;
    }
  }
}
