/**
 * Guest RAM that compresses like a real guest's, for benchmarks: random
 * bytes flatter no compressor and never-touched RAM is all zero pages, which
 * neither engine compresses. Each page's kind and contents follow from its
 * index alone (a seeded hash), so a guest filled here and the QEMU memory
 * file the bench writes with the same function hold the same bytes, run
 * after run.
 *
 * The mix, by page:
 * - 30 % text: words from a small vocabulary, numbers, punctuation, and
 *   log-like lines (heap strings, logs, the page cache of text files);
 * - 30 % mostly zero: a small header and a few small structures in an
 *   otherwise zeroed page (sparse heaps, page tables, bss), never all zero,
 *   so that zero-page detection flatters neither engine;
 * - 25 % repeated structures: arrays of small records, ids counting up,
 *   pointers sharing their high bytes, small flags;
 * - 15 % random: compressed files, crypto state, which no codec shrinks.
 *
 * Measured over 1 GiB, compressed 128 pages (a multifd packet) at a time:
 * zlib level 1 3.0×, zstd level 1 3.2× (3.2× too with two packets of a
 * channel in one zstd stream, as QEMU's stream keeps its window across
 * packets). By kind: text 4.2× / 4.5×, records 3.8× / 4.9×, mostly-zero
 * pages 23× / 27×.
 *
 * Text pages are copies of a pool of template pages made once, each copy
 * with numbers of its own written in, so that filling stays far from
 * per-byte JavaScript: 1 GiB in ~0.3 s of work plus the kernel's first
 * touch of each page (~0.7 s here; randomFillSync takes 3.7 s). The pool
 * is large against zstd's 512 KiB window at level 1 (a page rarely meets
 * an earlier copy of its template there), so the ratio comes from inside
 * pages, where zlib's 32 KiB window sees it too.
 */
import { TARGET_PAGE_SIZE } from './constants.js';

const PAGE_WORDS = TARGET_PAGE_SIZE / 4;
/** Any odd constant: changing it gives other bytes, the same mix. */
const SEED = 0x9e3779b9;
const TEXT_TEMPLATES = 2048;
/** The distinct lines log-like text pages are made of. */
const LOG_LINES = 32;

/** Which kind a page is, by its hash's low byte (out of 256). */
const RANDOM_BELOW = 38; // ~15 %
const TEXT_BELOW = RANDOM_BELOW + 77; // ~30 %
const SPARSE_BELOW = TEXT_BELOW + 77; // ~30 %, the rest (~25 %) records

const VOCABULARY = (
  'the of and to in is that for it with as was on be by this are or from at an not have which you all can but were had their ' +
  'page memory guest migration block device error request buffer value index count state return struct null size offset ' +
  'user time file data string list node next prev key name type status config info debug warn read write open close ' +
  'http GET POST json true false id uuid host port path query cache entry table row column select where order limit'
).split(' ');
/** Mostly spaces, as in prose. */
const PUNCTUATION = [' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ', ', '. ', ': ', '=', '/', '"'];
/** What a line starts with: logs and config files repeat theirs. */
const LINE_PREFIXES = ['\n', '\n', '\n  ', '\n    ', '\n2026-12-06 INFO ', '\n2026-12-06 DEBUG ', '\n<div class="row">', '\n# '];

/** lowbias32 (Chris Wellons' 32-bit integer hash): a page index to well-mixed bits. */
function hash32(x: number): number {
  x = (x ^ (x >>> 16)) >>> 0;
  x = Math.imul(x, 0x7feb352d);
  x = (x ^ (x >>> 15)) >>> 0;
  x = Math.imul(x, 0x846ca68b);
  return (x ^ (x >>> 16)) >>> 0;
}

/** xorshift32 on an int32 (never 0), which V8 keeps in a register: `>>> 0` it for an unsigned value. */
function next(state: number): number {
  state ^= state << 13;
  state ^= state >>> 17;
  return state ^ (state << 5);
}

let textPool: Uint8Array | undefined;

/**
 * The text template pages, made on first use (8 MiB, ~0.1 s): a third prose
 * (words, numbers, punctuation), the rest log-like (lines drawn from a few
 * dozen, each with numbers of its own), as a guest's page cache and heaps
 * hold both.
 */
function textTemplates(): Uint8Array {
  if (textPool) return textPool;
  const encoder = new TextEncoder();
  const words = VOCABULARY.map((w) => encoder.encode(w));
  const numbers = Array.from({ length: 1000 }, (_, n) => encoder.encode(String(n)));
  const marks = PUNCTUATION.map((p) => encoder.encode(p));
  const prefixes = LINE_PREFIXES.map((p) => encoder.encode(p));
  const pool = new Uint8Array(TEXT_TEMPLATES * TARGET_PAGE_SIZE);
  let s = hash32(SEED ^ 0x7e47) | 1;
  let at = 0;
  const put = (bytes: Uint8Array, end: number) => {
    for (let i = 0; i < bytes.length && at < end; i++) pool[at++] = bytes[i]!;
  };
  // Prose: `count` pieces, each a word (Zipf-like: the first words of the vocabulary far more often) or a number, then a mark.
  const prose = (count: number, end: number) => {
    for (let n = 0; n < count && at < end; n++) {
      s = next(s);
      put((s & 31) === 0 ? numbers[(s >>> 4) % 1000]! : words[Math.floor(words.length * ((s >>> 8) / 2 ** 24) ** 3)]!, end);
      s = next(s);
      put((s & 0xff) < 20 ? prefixes[(s >>> 8) & (prefixes.length - 1)]! : marks[(s >>> 8) & (marks.length - 1)]!, end);
    }
  };
  const logLines: Uint8Array[] = [];
  for (let l = 0; l < LOG_LINES; l++) {
    const start = at;
    prose(4 + (l % 7), Infinity);
    logLines.push(pool.slice(start, at));
    at = start;
  }
  for (let t = 0; t < TEXT_TEMPLATES; t++) {
    const end = (t + 1) * TARGET_PAGE_SIZE;
    if (t % 3 === 0) {
      prose(Infinity, end);
      continue;
    }
    while (at < end) {
      s = next(s);
      put(prefixes[4 + (s & 1)]!, end);
      put(numbers[(s >>> 8) % 1000]!, end);
      put(marks[0]!, end);
      put(logLines[(s >>> 20) % LOG_LINES]!, end);
    }
  }
  textPool = pool;
  return pool;
}

export type CompressiblePageKind = 'random' | 'text' | 'sparse' | 'records';

const pageHash = (index: number) => hash32((index ^ SEED) >>> 0);

function kindOf(h: number): CompressiblePageKind {
  const k = h & 0xff;
  return k < RANDOM_BELOW ? 'random' : k < TEXT_BELOW ? 'text' : k < SPARSE_BELOW ? 'sparse' : 'records';
}

/** The kind of page `index` holds (for tests and measurements of the mix). */
export function compressiblePageKind(index: number): CompressiblePageKind {
  return kindOf(pageHash(index));
}

/**
 * Fills `bytes` (whole pages, 4-byte aligned) with the compressible pages
 * whose indices start at `firstPage`: the same index gives the same page
 * wherever it is written.
 */
export function fillCompressible(bytes: Uint8Array, firstPage: number): void {
  if (bytes.length % TARGET_PAGE_SIZE !== 0 || bytes.byteOffset % 4 !== 0) {
    throw new RangeError('fillCompressible takes whole pages, 4-byte aligned');
  }
  const words = new Uint32Array(bytes.buffer, bytes.byteOffset, bytes.length / 4);
  const pages = bytes.length / TARGET_PAGE_SIZE;
  for (let p = 0; p < pages; p++) {
    const index = firstPage + p;
    const h = pageHash(index);
    const page = words.subarray(p * PAGE_WORDS, (p + 1) * PAGE_WORDS);
    switch (kindOf(h)) {
      case 'random': randomPage(page, h); break;
      case 'text': textPage(bytes.subarray(p * TARGET_PAGE_SIZE, (p + 1) * TARGET_PAGE_SIZE), h, index); break;
      case 'sparse': sparsePage(page, h, index); break;
      case 'records': recordPage(page, h, index); break;
    }
  }
}

function randomPage(page: Uint32Array, h: number): void {
  let s = h | 1;
  for (let i = 0; i < PAGE_WORDS; i++) page[i] = s = next(s);
}

/** A template page with a dozen numbers of this page's own written over it. */
function textPage(page: Uint8Array, h: number, index: number): void {
  const t = (h >>> 8) % TEXT_TEMPLATES;
  page.set(textTemplates().subarray(t * TARGET_PAGE_SIZE, (t + 1) * TARGET_PAGE_SIZE));
  let s = h | 1;
  for (let n = 0; n < 12; n++) {
    s = next(s);
    let at = s & (TARGET_PAGE_SIZE - 8);
    let v = (index * 31 + (s >>> 12)) % 10_000_000;
    for (let d = 0; d < 7; d++, v = Math.floor(v / 10)) page[at++] = 0x30 + (v % 10);
  }
}

/** Zeroes but for a header (a magic, the page's index and hash) and 2–6 small structures. */
function sparsePage(page: Uint32Array, h: number, index: number): void {
  page.fill(0);
  page[0] = 0x4c4d4947; // "GIML"
  page[1] = index;
  page[2] = h;
  let s = h | 1;
  const structs = 2 + (h >>> 8) % 5;
  for (let n = 0; n < structs; n++) {
    s = next(s);
    // 8–15 words at a 16-byte aligned place past the header.
    const len = 8 + (s & 7);
    const at = 4 + (((s >>> 4) % (PAGE_WORDS - 4 - 16)) & ~3);
    for (let i = 0; i < len; i++) {
      s = next(s);
      // Pointers (kernel-like high word), small ints, a few random words.
      page[at + i] = i % 4 === 1 ? 0xffff8880 + (s & 0xf) : i % 4 === 0 ? s & 0xfff : i % 4 === 2 ? s : s & 0xff;
    }
  }
}

/** Record sizes in words, by page. */
const RECORD_WORDS = [4, 6, 8, 16];

/**
 * An array of records: an id counting up, a type tag, a 64-bit pointer (a
 * low word striding through a heap, the high word the same in every
 * record), flags, a few bits of noise, a small counter, zero padding.
 */
function recordPage(page: Uint32Array, h: number, index: number): void {
  const recordWords = RECORD_WORDS[(h >>> 8) & 3]!;
  const stride = 16 << ((h >>> 10) & 3);
  const tag = 0x3b0 + (h >>> 28);
  const high = 0x00007f00 + ((h >>> 12) & 0xf);
  let pointer = (h & 0xfff0_0000) >>> 0;
  let id = (index * 97) >>> 0;
  let s = h | 1;
  for (let at = 0; at + recordWords <= PAGE_WORDS; at += recordWords) {
    s = next(s);
    pointer = (pointer + stride * (1 + (s & 1))) >>> 0;
    page[at] = id++;
    page[at + 1] = tag;
    page[at + 2] = pointer;
    page[at + 3] = high;
    for (let i = 4; i < recordWords; i++) {
      page[at + i] = i === 4 ? (s >>> 8) & 3 : i === 5 ? (s >>> 16) & 0xf : i === 6 ? (id * 3) & 0xffff : 0;
    }
  }
  page.fill(0, PAGE_WORDS - (PAGE_WORDS % recordWords));
}
