import { TARGET_PAGE_SIZE } from '../guest/constants.js';

/**
 * multifd with compression: the data pages that went through the
 * compressor and the bytes they took on the wire, and those sent raw as
 * incompressible (livemig's figures: QEMU counts none for multifd).
 */
export interface MultifdCompressionStats {
  compressedPages: number;
  compressedBytes: number;
  rawPages: number;
}

/** The dirty sync that ends the first pass: dirty-sync-count counts one at setup, one after each pass. */
export const FIRST_PASS_END_SYNC = 2;

/**
 * The source's RAM counters, incremented where the bytes move (DESIGN rule 6)
 * and shown by query-migrate as MigrationStats.
 */
export class RamStats {
  transferred = 0;
  /** Zero pages ("duplicate"): described, no data sent. */
  duplicate = 0;
  normal = 0;
  dirtySyncCount = 0;
  dirtyPagesRate = 0;
  precopyBytes = 0;
  downtimeBytes = 0;
  multifdBytes = 0;
  /** Set when the multifd channels compress. */
  multifdCompression: MultifdCompressionStats | undefined;
  remainingPages = 0;
  totalBytes = 0;
  /** Set while the guest is stopped for switchover: bytes then count as downtime bytes. */
  inDowntime = false;
  /** Set once the postcopy package is sent: bytes then count as postcopy bytes. */
  inPostcopy = false;
  postcopyBytes = 0;
  /** Page requests the destination made (postcopy). */
  postcopyRequests = 0;
  mbps = 0;
  pagesPerSecond = 0;

  countBytes(bytes: number): void {
    this.transferred += bytes;
    if (this.inDowntime) this.downtimeBytes += bytes;
    else if (this.inPostcopy) this.postcopyBytes += bytes;
    else this.precopyBytes += bytes;
  }

  /**
   * query-migrate's `ram` object. Once completed QEMU no longer fills
   * `remaining` and `dirty-pages-rate`, and as they are mandatory members
   * they show as 0.
   */
  toQmp(completed: boolean): Record<string, number> {
    const ram: Record<string, number> = {
      transferred: this.transferred,
      remaining: completed ? 0 : this.remainingPages * TARGET_PAGE_SIZE,
      total: this.totalBytes,
      duplicate: this.duplicate,
      skipped: 0,
      normal: this.normal,
      'normal-bytes': this.normal * TARGET_PAGE_SIZE,
      'dirty-pages-rate': completed ? 0 : Math.round(this.dirtyPagesRate),
      mbps: this.mbps,
      'dirty-sync-count': this.dirtySyncCount,
      'postcopy-requests': this.postcopyRequests,
      'page-size': TARGET_PAGE_SIZE,
      'multifd-bytes': this.multifdBytes,
      'pages-per-second': Math.round(this.pagesPerSecond),
      'precopy-bytes': this.precopyBytes,
      'downtime-bytes': this.downtimeBytes,
      'postcopy-bytes': this.postcopyBytes,
      'dirty-sync-missed-zero-copy': 0,
    };
    return ram;
  }
}
