/** A run of consecutive pages of one block. */
export interface PageRun {
  first: number;
  count: number;
  /** All zero pages: described, but no bytes travel. */
  zero: boolean;
}

/** What a decoder needs to know of the destination guest to check page runs. */
export interface GuestLayout {
  /** One entry per RAM block, in the stream header's order. */
  blocks: readonly { pageCount: number }[];
}

/**
 * Where decoded pages go: guest memory. The decoder asks for a view before
 * reading a run's bytes, so the bytes land in place (with `net.Socket`'s
 * `onread`, the kernel copies a long run straight into guest RAM; short
 * ones are read ahead together and copied in: pull-decoder.ts).
 */
export interface PageSink {
  /**
   * A view over guest memory for up to `count` pages starting at `firstPage`
   * of `block`. It may cover fewer whole pages (e.g. up to a slab boundary),
   * never zero; the decoder then asks again for the rest.
   */
  pageView(block: number, firstPage: number, count: number): Uint8Array;
  /** All bytes of a run are in place. */
  pagesLoaded(block: number, firstPage: number, count: number): void;
  /** A run of zero pages, which carries no bytes. */
  zeroPages(block: number, firstPage: number, count: number): void;
}
