/**
 * The source's cache of pages already sent, for XBZRLE (QEMU's
 * migration/page_cache.c): direct-mapped by page address, each slot holding
 * a copy of one page, its address, and the dirty-sync count ("age") it was
 * inserted or last looked up at. A page sent again is encoded against its
 * copy here, which is also what the destination holds.
 *
 * Hot path: looked up once per page sent after the first pass. Nothing here
 * allocates per page but a slot's view, made once per slot.
 */
import { copyBytes } from '../../protocols/xbzrle/word-access.js';

/** A slot whose page was used within this many dirty syncs is not given to another page (QEMU's rule). */
const CACHED_PAGE_LIFETIME = 2;

const EMPTY = -1;

export class PageCache {
  /** Slots, a power of two: an address's slot is its low bits. */
  readonly slots: number;
  private readonly data: Uint8Array;
  private readonly addresses: Int32Array;
  private readonly ages: Float64Array;
  private readonly views: (Uint8Array | undefined)[];

  /**
   * A cache of `sizeBytes` (a power of two, at least a page: the parameter
   * check has seen to it) for a guest of `guestPages` pages. Slots no page
   * address can reach (a cache larger than the guest, which QEMU accepts)
   * are not allocated: QEMU allocates a slot's page only when first used.
   *
   * @throws Error "Failed to allocate page cache" (QEMU's) when memory runs short
   */
  constructor(sizeBytes: bigint, guestPages: number, private readonly pageSize: number) {
    const reachable = 2 ** Math.ceil(Math.log2(Math.max(guestPages, 1)));
    const asked = sizeBytes / BigInt(pageSize);
    this.slots = asked < BigInt(reachable) ? Number(asked) : reachable;
    try {
      this.data = new Uint8Array(this.slots * pageSize);
    } catch {
      throw new Error('Failed to allocate page cache');
    }
    this.addresses = new Int32Array(this.slots).fill(EMPTY);
    this.ages = new Float64Array(this.slots);
    this.views = new Array<Uint8Array | undefined>(this.slots);
  }

  /** Whether the page at `address` (a page number over all blocks) is cached; a hit renews its age. */
  isCached(address: number, age: number): boolean {
    const slot = address & (this.slots - 1);
    if (this.addresses[slot] !== address) return false;
    this.ages[slot] = age;
    return true;
  }

  /**
   * Caches a copy of the page at `source[from, from + page size)` for
   * `address`. False when its slot holds another page still fresh.
   */
  insert(address: number, source: Uint8Array, from: number, age: number): boolean {
    const slot = address & (this.slots - 1);
    const owner = this.addresses[slot]!;
    if (owner !== EMPTY && owner !== address && this.ages[slot]! + CACHED_PAGE_LIFETIME > age) return false;
    copyBytes(source, from, this.data, slot * this.pageSize, this.pageSize);
    this.addresses[slot] = address;
    this.ages[slot] = age;
    return true;
  }

  /** The copy held for `address`, which isCached has just found. */
  cached(address: number): Uint8Array {
    const slot = address & (this.slots - 1);
    const at = slot * this.pageSize;
    return (this.views[slot] ??= this.data.subarray(at, at + this.pageSize));
  }
}
