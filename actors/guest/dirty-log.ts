import type { RamBlock } from './ram-block.js';
import { forEachRun } from './bitmap.js';

/** What one dirty sync of a block returns. */
export interface DirtySync {
  /** A private snapshot of the dirty bitmap taken by the sync (one bit a page). */
  bitmap: Int32Array;
  /** Pages dirtied since the previous sync. */
  count: number;
}

/**
 * The migration side's view of a block's dirty log: each sync atomically
 * fetches and clears the bitmap the guest's writes set (KVM's
 * KVM_GET_DIRTY_LOG with clear). The migration's dirty-page rate is
 * measured over all blocks (actors/ram/dirty-rate-window.ts).
 */
export class DirtyLog {
  constructor(readonly block: RamBlock) {}

  sync(): DirtySync {
    const bitmap = new Int32Array(this.block.dirty.words.length);
    const count = this.block.dirty.fetchAndClear(bitmap);
    return { bitmap, count };
  }

  /** Forgets what was written so far, e.g. when dirty logging starts for a migration. */
  reset(): void {
    this.block.dirty.fill(false);
  }
}

/** The page numbers set in a sync's bitmap, in order. */
export function dirtyPages(sync: DirtySync, pageCount: number): Uint32Array {
  const pages = new Uint32Array(sync.count);
  let i = 0;
  forEachRun(sync.bitmap, pageCount, (first, count) => {
    for (let p = first; p < first + count; p++) pages[i++] = p;
  });
  return pages;
}
