/**
 * Tells the pages a compressor would not shrink (encrypted or already
 * compressed data, random bytes) from those it would, before the
 * compressor is asked: multifd sends the former raw, saving both sides the
 * codec's time for nothing (zlib level 1 moves ~0.065 GB/s of random pages
 * here, for a ratio of 1.00). QEMU compresses every page.
 *
 * The test is the byte diversity of a sample: SPANS spans of SPAN_BYTES
 * consecutive bytes spread over the page, 64 bytes from 8 cache lines
 * (a byte every 32 touches all 64 of a page's lines: twice the cost, ~0.19 s
 * per GiB here). Random bytes show ~56 distinct values in 64 draws
 * (256 × (1 − (255/256)^64), σ ≈ 2.7); text, code, page tables,
 * zero-padded structures and mostly-zero pages show far fewer. A page is
 * incompressible above DISTINCT_LIMIT, three σ below random's mean, so a
 * random page is almost never compressed and a page half data, half zeros
 * (which shrinks about twofold) always is. A page repeating a long random
 * pattern would be sent raw too: a missed saving, never a wrong byte.
 *
 * Hot path: once per data page on a compressing channel: 64 reads, no
 * allocation. Inside a run of incompressible pages (encrypted or compressed
 * data lies in extents) only every RECHECK_EVERY-th page is looked at
 * (inRun): on a guest of random bytes the check cost the channels ~0.1 CPU
 * seconds per GiB, a fifth of what they spend. The price is at most
 * RECHECK_EVERY − 1 compressible pages sent raw after such a run: bytes
 * saved lost, never a byte wrong.
 */
import { TARGET_PAGE_SIZE } from '../guest/constants.js';
import type { RamBlock } from '../guest/ram-block.js';

const SPANS = 8;
const SPAN_BYTES = 8;
/** 512 + 12: successive spans start 12 bytes further into any 16- or 32-byte record, so a record's first field is not all they see. */
const SPAN_STRIDE = TARGET_PAGE_SIZE / SPANS + 12;
const DISTINCT_LIMIT = 48;
/** Incompressible pages in a row after which only every RECHECK_EVERY-th page is checked. */
const TRUSTED_RUN = 8;
const RECHECK_EVERY = 8;

export class IncompressiblePageCheck {
  /** A bit per byte value seen in the sample; set without a branch (a taken-or-not branch per byte mispredicted half the time on random data). */
  private readonly seen = new Int32Array(8);

  /** Incompressible pages found in a row up to `last`, the page looked at last. */
  private run = 0;
  private last = -2;

  constructor(private readonly ram: RamBlock) {}

  /**
   * Whether `page` would not shrink, taking it on trust inside a long run
   * of consecutive incompressible pages (all but every RECHECK_EVERY-th).
   */
  inRun(page: number): boolean {
    const follows = page === this.last + 1;
    this.last = page;
    if (follows && this.run >= TRUSTED_RUN && page % RECHECK_EVERY !== 0) return true;
    const incompressible = this.test(page);
    this.run = !incompressible ? 0 : follows ? this.run + 1 : 1;
    return incompressible;
  }

  test(page: number): boolean {
    const bytes = this.ram.slabOf(page);
    const at = this.ram.offsetInSlab(page);
    const seen = this.seen;
    for (let span = at, end = at + SPANS * SPAN_STRIDE; span < end; span += SPAN_STRIDE) {
      for (let i = span; i < span + SPAN_BYTES; i++) {
        const value = bytes[i]!;
        seen[value >> 5]! |= 1 << (value & 31);
      }
    }
    let distinct = 0;
    for (let w = 0; w < 8; w++) {
      distinct += bitCount(seen[w]!);
      seen[w] = 0;
    }
    return distinct > DISTINCT_LIMIT;
  }
}

function bitCount(word: number): number {
  let v = word - ((word >>> 1) & 0x55555555);
  v = (v & 0x33333333) + ((v >>> 2) & 0x33333333);
  return (((v + (v >>> 4)) & 0x0f0f0f0f) * 0x01010101) >>> 24;
}
