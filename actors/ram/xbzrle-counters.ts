/**
 * XBZRLE's counters (QEMU's xbzrle_counters), counted where pages are
 * encoded and shown by query-migrate as `xbzrle-cache`.
 */

/** Rates are worked out once a dirty sync ends a period longer than this (QEMU's migration_bitmap_sync). */
const RATE_PERIOD_MS = 1000;

export class XbzrleCounters {
  /** Bytes sent for pages that hit the cache: their deltas with their page headers, and overflowed pages whole. */
  bytes = 0;
  /** Pages that hit the cache (encoded, overflowed, or unchanged and not sent). */
  pages = 0;
  cacheMiss = 0;
  overflow = 0;
  /** Of the pages sent in the last period, the share that missed the cache. */
  cacheMissRate = 0;
  /** Of the last period's cache hits, their size over the bytes sent for them; 0 when none. */
  encodingRate = 0;
  /** Pages sent as deltas (with the pages sent whole, the page count the rates are per). */
  encoded = 0;

  private periodStart: number;
  private pagesSentBefore = 0;
  private cacheMissBefore = 0;
  private pagesBefore = 0;
  private bytesBefore = 0;

  constructor(now: number) {
    this.periodStart = now;
  }

  /**
   * A dirty sync (QEMU's migration_update_rates): past a period, the rates
   * of the pages sent in it. `pagesSentWhole` counts the normal and zero
   * pages sent so far.
   */
  onSync(now: number, pagesSentWhole: number, pageSize: number): void {
    if (now <= this.periodStart + RATE_PERIOD_MS) return;
    this.periodStart = now;
    const pagesSent = pagesSentWhole + this.encoded;
    const pageCount = pagesSent - this.pagesSentBefore;
    this.pagesSentBefore = pagesSent;
    if (pageCount === 0) return;
    this.cacheMissRate = (this.cacheMiss - this.cacheMissBefore) / pageCount;
    const encodedBytes = this.bytes - this.bytesBefore;
    const unencodedBytes = (this.pages - this.pagesBefore) * pageSize;
    this.encodingRate = this.pages === this.pagesBefore || encodedBytes === 0 ? 0 : unencodedBytes / encodedBytes;
    this.cacheMissBefore = this.cacheMiss;
    this.pagesBefore = this.pages;
    this.bytesBefore = this.bytes;
  }

  /** query-migrate's `xbzrle-cache`, in QEMU's member order. */
  toQmp(cacheSize: bigint): Record<string, number | bigint> {
    return {
      'cache-size': cacheSize,
      bytes: this.bytes,
      pages: this.pages,
      'cache-miss': this.cacheMiss,
      'cache-miss-rate': this.cacheMissRate,
      'encoding-rate': this.encodingRate,
      overflow: this.overflow,
    };
  }
}
