/**
 * Postcopy: the pages a page request names, as batches ready to send. Used
 * by the migration thread (requests on the return path) and by the
 * postcopy-preempt thread (requests on its own connection) alike.
 */
import type { RamBlock } from '../guest/ram-block.js';
import type { MigrationBitmap } from './migration-bitmap.js';
import { RunBuilder, type PageBatch, type ZeroPageCheck } from './page-runs.js';

/**
 * Takes the requested pages out of the migration bitmap where they still
 * are. With `resend`, pages that went before are sent again (the request
 * may have overtaken them): the destination places a page only once, so a
 * second copy is dropped there. Without it (release-ram: their memory may
 * be gone) they are not. The background goes on from just past the
 * request, as QEMU's does: a guest that touched this page is likely to
 * touch the next ones.
 */
export function requestedBatches(
  bitmap: MigrationBitmap,
  ram: RamBlock,
  zero: ZeroPageCheck,
  request: { block: number; firstPage: number; pages: number },
  resend: boolean,
): PageBatch[] {
  const { block, firstPage, pages } = request;
  bitmap.hint(block, firstPage + pages);
  const batches: PageBatch[] = [];
  let builder = new RunBuilder(ram);
  const flush = () => {
    batches.push({ block, runs: builder.runs, data: builder.dataViews(), normalPages: builder.dataPages, zeroPages: builder.zeroPages });
    builder = new RunBuilder(ram);
  };
  for (let page = firstPage; page < firstPage + pages; page++) {
    if (!bitmap.take(block, page) && !resend) continue;
    const isZero = zero.isZero(page);
    if (!builder.add(page, isZero)) {
      flush();
      builder.add(page, isZero);
    }
  }
  if (!builder.empty) flush();
  return batches;
}
