/**
 * Test doubles for the stream decoder: plain ArrayBuffers standing in for
 * guest RAM, and a page sink that splits views at an artificial slab
 * boundary, surrounds every block with guard bytes and records every call.
 */
import type { GuestLayout, PageRun, PageSink } from '../protocols/page-runs/types.js';
import type { XbzrleSink } from '../protocols/stream/decode.js';
import { encodePagesHeader } from '../protocols/stream/encode.js';
import { decode as decodeXbzrle } from '../protocols/xbzrle/decode.js';

export const PAGE = 4096;
const GUARD = 0xa5;

export type SinkEvent =
  | { call: 'pageView'; block: number; first: number; count: number; given: number }
  | { call: 'pagesLoaded'; block: number; first: number; count: number }
  | { call: 'zeroPages'; block: number; first: number; count: number };

export interface FakeGuestOptions {
  pageSize?: number;
  /** Views end at multiples of this many pages, like RAM split into slabs. */
  slabPages?: number;
  /** Guard bytes before and after each block. */
  guardBytes?: number;
  /** Initial content of every RAM byte. */
  fill?: number;
}

export class FakeGuest implements PageSink, XbzrleSink {
  readonly pageSize: number;
  readonly events: SinkEvent[] = [];
  /** The XBZRLE pages handed over (loadXbzrlePage), apart from the PageSink calls. */
  readonly xbzrlePages: { block: number; page: number; length: number }[] = [];
  /** Each block's RAM, a view between its guards. */
  readonly ram: Uint8Array[];
  private readonly whole: Uint8Array[];
  private readonly guard: number;
  private readonly slabPages: number;

  constructor(readonly pageCounts: readonly number[], options: FakeGuestOptions = {}) {
    this.pageSize = options.pageSize ?? PAGE;
    this.slabPages = options.slabPages ?? Infinity;
    this.guard = options.guardBytes ?? 64;
    this.whole = pageCounts.map((pages) => new Uint8Array(new ArrayBuffer(pages * this.pageSize + 2 * this.guard)));
    this.ram = this.whole.map((whole, i) => whole.subarray(this.guard, this.guard + (pageCounts[i] ?? 0) * this.pageSize));
    for (const whole of this.whole) whole.fill(GUARD);
    for (const ram of this.ram) ram.fill(options.fill ?? 0);
  }

  get layout(): GuestLayout {
    return { blocks: this.pageCounts.map((pageCount) => ({ pageCount })) };
  }

  pageView(block: number, first: number, count: number): Uint8Array {
    const pages = this.pageCounts[block];
    if (pages === undefined || count < 1 || first + count > pages) {
      throw new Error(`decoder asked for pages ${first}+${count} of block ${block} outside the guest`);
    }
    const slabEnd = Number.isFinite(this.slabPages) ? (Math.floor(first / this.slabPages) + 1) * this.slabPages : Infinity;
    const given = Math.min(count, slabEnd - first);
    this.events.push({ call: 'pageView', block, first, count, given });
    return this.page(block, first, given);
  }

  pagesLoaded(block: number, first: number, count: number): void {
    this.events.push({ call: 'pagesLoaded', block, first, count });
  }

  zeroPages(block: number, first: number, count: number): void {
    this.events.push({ call: 'zeroPages', block, first, count });
    this.page(block, first, count).fill(0);
  }

  /** Applies the delta to the page with the codec (its errors pass through, as a sink's do). */
  loadXbzrlePage(block: number, page: number, delta: Uint8Array): void {
    this.xbzrlePages.push({ block, page, length: delta.length });
    decodeXbzrle(delta, this.page(block, page));
  }

  page(block: number, first: number, count = 1): Uint8Array {
    return (this.ram[block] as Uint8Array).subarray(first * this.pageSize, (first + count) * this.pageSize);
  }

  guardsIntact(): boolean {
    return this.whole.every((whole, i) => {
      const end = this.guard + (this.pageCounts[i] ?? 0) * this.pageSize;
      for (let at = 0; at < this.guard; at++) if (whole[at] !== GUARD || whole[end + at] !== GUARD) return false;
      return true;
    });
  }
}

/** Guest RAM on the source side, with recognisable content per page. */
export function sourceRam(pageCounts: readonly number[], seed: number, pageSize = PAGE): Uint8Array[] {
  return pageCounts.map((pages, block) => {
    const ram = new Uint8Array(pages * pageSize);
    for (let i = 0; i < ram.length; i++) ram[i] = (i * 31 + block * 7 + seed + (i >>> 12)) & 0xff;
    return ram;
  });
}

/** A whole PAGES frame: header, then the source pages of each non-zero run. */
export function pagesFrame(ram: readonly Uint8Array[], block: number, runs: readonly PageRun[], pageSize = PAGE): Buffer {
  const parts: Uint8Array[] = [encodePagesHeader(block, runs, pageSize)];
  const source = ram[block] as Uint8Array;
  for (const run of runs) {
    if (!run.zero) parts.push(source.subarray(run.first * pageSize, (run.first + run.count) * pageSize));
  }
  return Buffer.concat(parts);
}

/**
 * What guest RAM must hold after `writes` landed: each run's pages from
 * `source` or zero, every other page still `before`.
 */
export function expectedRam(
  pageCounts: readonly number[],
  before: number,
  source: readonly Uint8Array[],
  writes: Iterable<{ block: number; runs: readonly PageRun[] }>,
): Uint8Array[] {
  const ram = pageCounts.map((pages) => new Uint8Array(pages * PAGE).fill(before));
  for (const { block, runs } of writes) {
    for (const { first, count, zero } of runs) {
      const target = (ram[block] as Uint8Array).subarray(first * PAGE, (first + count) * PAGE);
      if (zero) target.fill(0);
      else target.set((source[block] as Uint8Array).subarray(first * PAGE, (first + count) * PAGE));
    }
  }
  return ram;
}
