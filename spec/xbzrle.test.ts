/**
 * QEMU's XBZRLE page-delta codec (protocols/xbzrle/): hand-made deltas whose
 * bytes are worked out from QEMU's format, the encoder against the plainest
 * statement of QEMU's rules on many random page pairs, overflow exactly at
 * the limit, and every way a delta can be corrupt refused without a byte
 * written outside (or inside) the page.
 */
import { expect } from 'chai';
import { decode } from '../protocols/xbzrle/decode.js';
import { encode, XBZRLE_MAX_PAGE_SIZE, XBZRLE_OVERFLOW } from '../protocols/xbzrle/encode.js';
import { XbzrleError, type XbzrleErrorCode } from '../protocols/xbzrle/errors.js';
import {
  readUleb128Small,
  ULEB128_SMALL_MAX,
  ULEB128_TOO_LONG,
  ULEB128_TRUNCATED,
  uleb128Size,
  uleb128Value,
  writeUleb128Small,
} from '../protocols/xbzrle/uleb128.js';
import { fuzzIterations, fuzzSeed, SeededRandom } from './fuzz/seeded-random.js';

const PAGE = 4096;
const GUARD = 64;
const GUARD_BYTE = 0xee;

function hex(text: string): number[] {
  return text
    .split(/\s+/)
    .filter((b) => b !== '')
    .map((b) => parseInt(b, 16));
}

function bytes(...parts: ArrayLike<number>[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

function toHex(data: Uint8Array): string {
  return Buffer.from(data.buffer, data.byteOffset, data.length).toString('hex');
}

/** `old` with the bytes at `positions` changed (XOR with a non-zero value, so they surely differ). */
function changed(old: Uint8Array, positions: Iterable<number>, random?: SeededRandom): Uint8Array {
  const out = old.slice();
  for (const at of positions) out[at] = (out[at] as number) ^ (random ? random.int(1, 255) : 0x5a);
  return out;
}

function range(from: number, to: number): number[] {
  return Array.from({ length: to - from }, (_, k) => from + k);
}

/** Encodes with room for any delta and returns exactly the bytes written (or the -1/0 answer). */
function encodeAll(oldPage: Uint8Array, newPage: Uint8Array): Uint8Array | number {
  const out = new Uint8Array(2 * oldPage.length + 16);
  const n = encode(oldPage, newPage, out);
  return n > 0 ? out.slice(0, n) : n;
}

/** A page inside guard bytes, so a test can prove nothing around it was written. */
function guardedPage(content: Uint8Array): { memory: Uint8Array; page: Uint8Array } {
  const memory = new Uint8Array(GUARD + content.length + GUARD).fill(GUARD_BYTE);
  const page = memory.subarray(GUARD, GUARD + content.length);
  page.set(content);
  return { memory, page };
}

function expectGuardsIntact(memory: Uint8Array): void {
  const size = memory.length - 2 * GUARD;
  for (let k = 0; k < GUARD; k++) {
    if (memory[k] !== GUARD_BYTE || memory[GUARD + size + k] !== GUARD_BYTE) {
      expect.fail(`a byte next to the page was written (guard offset ${k})`);
    }
  }
}

/**
 * QEMU's encoder rules put as plainly as possible: one byte at a time,
 * the same places to give up (two free bytes before each run length, a
 * literal run must fit whole), equal pages → 0, final zero run left out.
 */
function referenceEncode(oldPage: Uint8Array, newPage: Uint8Array, out: Uint8Array, limit: number): number {
  const size = oldPage.length;
  let i = 0;
  let d = 0;
  while (i < size) {
    if (d + 2 > limit) return -1;
    let zero = 0;
    while (i < size && oldPage[i] === newPage[i]) {
      i++;
      zero++;
    }
    if (zero === size) return 0;
    if (i === size) return d;
    d += writeUleb128Small(out, d, zero);
    if (d + 2 > limit) return -1;
    const start = i;
    while (i < size && oldPage[i] !== newPage[i]) i++;
    const literal = i - start;
    d += writeUleb128Small(out, d, literal);
    if (d + literal > limit) return -1;
    for (let k = 0; k < literal; k++) out[d + k] = newPage[start + k] as number;
    d += literal;
  }
  return d;
}

/**
 * QEMU's decoder rules put as plainly as possible: -1 for a refused delta,
 * else the page bytes covered. Like QEMU it writes as it goes, so a refused
 * delta may leave `page` half-patched (decode must not).
 */
function referenceDecode(delta: Uint8Array, page: Uint8Array): number {
  const readLength = (at: number): { value: number; size: number } | null => {
    const first = delta[at] as number;
    if (first < 0x80) return { value: first, size: 1 };
    const second = delta[at + 1] as number;
    if (second >= 0x80) return null;
    return { value: (first & 0x7f) | (second << 7), size: 2 };
  };
  let i = 0;
  let d = 0;
  while (i < delta.length) {
    if (delta.length - i < 2) return -1;
    const zero = readLength(i);
    if (zero === null || (i > 0 && zero.value === 0)) return -1;
    i += zero.size;
    d += zero.value;
    if (d > page.length) return -1;
    if (delta.length - i < 2) return -1;
    const literal = readLength(i);
    if (literal === null || literal.value === 0) return -1;
    i += literal.size;
    if (d + literal.value > page.length || i + literal.value > delta.length) return -1;
    page.set(delta.subarray(i, i + literal.value), d);
    d += literal.value;
    i += literal.value;
  }
  return d;
}

describe('XBZRLE page deltas', () => {
  describe('run lengths: ULEB128 of at most two bytes', () => {
    it('writes and reads back every length from 0 to 0x3fff, in one byte below 128 and two from 128', () => {
      const buf = new Uint8Array(2);
      for (let n = 0; n <= ULEB128_SMALL_MAX; n++) {
        const written = writeUleb128Small(buf, 0, n);
        if (written !== (n < 128 ? 1 : 2)) expect.fail(`${n} took ${written} bytes`);
        const packed = readUleb128Small(buf, 0, 2);
        if (uleb128Value(packed) !== n || uleb128Size(packed) !== written) expect.fail(`${n} read back as ${uleb128Value(packed)}`);
      }
    });

    it('puts the low seven bits first, with the top bit saying another byte follows', () => {
      const cases: [number, string][] = [
        [0, '00'],
        [127, '7f'],
        [128, '8001'],
        [300, 'ac02'],
        [1001, 'e907'],
        [4095, 'ff1f'],
        [4096, '8020'],
        [0x3fff, 'ff7f'],
      ];
      for (const [n, expected] of cases) {
        const buf = new Uint8Array(2);
        const size = writeUleb128Small(buf, 0, n);
        expect(toHex(buf.subarray(0, size)), String(n)).to.equal(expected);
      }
    });

    it('refuses a second byte that says "more follows" (over 14 bits), and a length cut off by the end', () => {
      expect(readUleb128Small(new Uint8Array(hex('80 80')), 0, 2)).to.equal(ULEB128_TOO_LONG);
      expect(readUleb128Small(new Uint8Array(hex('ff ff 01')), 0, 3)).to.equal(ULEB128_TOO_LONG);
      expect(readUleb128Small(new Uint8Array(hex('85')), 0, 1)).to.equal(ULEB128_TRUNCATED);
      expect(readUleb128Small(new Uint8Array(hex('85 01')), 0, 1), 'the end given, not the array length').to.equal(ULEB128_TRUNCATED);
    });

    it('reads a two-byte form of a small value, as QEMU does (81 00 is 1)', () => {
      const packed = readUleb128Small(new Uint8Array(hex('81 00')), 0, 2);
      expect([uleb128Value(packed), uleb128Size(packed)]).to.deep.equal([1, 2]);
    });
  });

  describe('hand-made deltas: the encoder writes exactly these bytes, the decoder turns the old page into the new', () => {
    const random = new SeededRandom(0x19);
    const base = random.bytes(PAGE);

    interface Vector {
      name: string;
      old: Uint8Array;
      new: Uint8Array;
      delta: Uint8Array;
    }

    // QEMU's docs/devel/migration/xbzrle.rst example, bytes as printed there.
    const docOld = new Uint8Array(PAGE);
    docOld.set(hex('05 06 07 08 09 0a 0b 0c 0d 0e 0f 10 11 12 13 68 00 00 6b 00 6d'), 1001);
    const docNew = new Uint8Array(PAGE);
    docNew.set(hex('01 02 03 04 05 06 07 08 09 0a 0b 0c 0d 0e 0f 68 00 00 67 00 69'), 1001);

    // The shape of QEMU's tests/unit/test-xbzrle.c encode_decode_range, with diff_len 5.
    const rangeOld = new Uint8Array(PAGE);
    const rangeNew = new Uint8Array(PAGE);
    for (let i = 1; i <= 5; i++) {
      rangeNew[1000 + i] = i;
      rangeOld[1000 + i] = i + 4;
    }
    rangeNew[1008] = 103;
    rangeOld[1008] = 107;
    rangeNew[1010] = 105;
    rangeOld[1010] = 109;

    const lastByte = changed(base, [PAGE - 1]);
    const firstByte = changed(base, [0]);
    const run128 = changed(base, range(127, 255));
    const twoRuns = changed(base, [...range(0, 3), ...range(303, 503)]);
    const inOneWord = changed(base, [8, 9, 11]);
    const toTheEnd = changed(base, range(128, PAGE));
    const everything = changed(base, range(0, PAGE));
    const bigOld = random.bytes(XBZRLE_MAX_PAGE_SIZE);
    const bigLast = changed(bigOld, [XBZRLE_MAX_PAGE_SIZE - 1]);
    const bigAll = changed(bigOld, range(0, XBZRLE_MAX_PAGE_SIZE));

    const vectors: Vector[] = [
      {
        name: "QEMU's documented example: zero run 1001 (e9 07), literal 15, zero 3, literal 1, zero 1, literal 1; the final 3074 equal bytes left out",
        old: docOld,
        new: docNew,
        delta: new Uint8Array(hex('e9 07 0f 01 02 03 04 05 06 07 08 09 0a 0b 0c 0d 0e 0f 03 01 67 01 01 69')),
      },
      {
        name: "QEMU's unit-test range pattern: zero 1001, literal 5, zero 2, literal 1 (103), zero 1, literal 1 (105)",
        old: rangeOld,
        new: rangeNew,
        delta: new Uint8Array(hex('e9 07 05 01 02 03 04 05 02 01 67 01 01 69')),
      },
      {
        name: 'the last byte changed: zero run 4095 (ff 1f), literal 1 — four bytes, as QEMU\'s 1-byte test expects',
        old: base,
        new: lastByte,
        delta: bytes(hex('ff 1f 01'), [lastByte[PAGE - 1] as number]),
      },
      {
        name: 'the first byte changed: an empty first zero run (00), literal 1',
        old: base,
        new: firstByte,
        delta: bytes(hex('00 01'), [firstByte[0] as number]),
      },
      {
        name: 'a literal run of 128 from offset 127: zero 127 (7f), literal 128 (80 01)',
        old: base,
        new: run128,
        delta: bytes(hex('7f 80 01'), run128.subarray(127, 255)),
      },
      {
        name: 'two literal runs: literal 3 at 0, zero 300 (ac 02), literal 200 (c8 01)',
        old: base,
        new: twoRuns,
        delta: bytes(hex('00 03'), twoRuns.subarray(0, 3), hex('ac 02 c8 01'), twoRuns.subarray(303, 503)),
      },
      {
        name: 'runs that start and end inside one word: zero 8, literal 2, zero 1, literal 1',
        old: base,
        new: inOneWord,
        delta: bytes(hex('08 02'), inOneWord.subarray(8, 10), hex('01 01'), inOneWord.subarray(11, 12)),
      },
      {
        name: 'a literal run to the very end: zero 128 (80 01), literal 3968 (80 1f)',
        old: base,
        new: toTheEnd,
        delta: bytes(hex('80 01 80 1f'), toTheEnd.subarray(128)),
      },
      {
        name: 'every byte changed: zero 0, literal 4096 (80 20) — 4099 bytes, more than a page',
        old: base,
        new: everything,
        delta: bytes(hex('00 80 20'), everything),
      },
      {
        name: 'the largest page (16383 bytes), last byte changed: zero 16382 (fe 7f), literal 1',
        old: bigOld,
        new: bigLast,
        delta: bytes(hex('fe 7f 01'), bigLast.subarray(XBZRLE_MAX_PAGE_SIZE - 1)),
      },
      {
        name: 'the largest page, every byte changed: zero 0, literal 16383 (ff 7f)',
        old: bigOld,
        new: bigAll,
        delta: bytes(hex('00 ff 7f'), bigAll),
      },
    ];

    for (const v of vectors) {
      it(v.name, () => {
        const got = encodeAll(v.old, v.new);
        expect(got).to.be.instanceOf(Uint8Array);
        expect(toHex(got as Uint8Array)).to.equal(toHex(v.delta));
        const page = v.old.slice();
        decode(v.delta, page);
        expect(toHex(page) === toHex(v.new), 'decoded page equals the new page').to.equal(true);
      });
    }

    it('equal pages encode to nothing (0), and an empty delta changes nothing', () => {
      expect(encode(base, base.slice(), new Uint8Array(PAGE))).to.equal(0);
      expect(encode(new Uint8Array(0), new Uint8Array(0), new Uint8Array(0))).to.equal(0);
      const page = base.slice();
      decode(new Uint8Array(0), page);
      expect(toHex(page)).to.equal(toHex(base));
    });

    it('decodes deltas QEMU accepts that its encoder would not write: two-byte small lengths, a literal run of unchanged bytes', () => {
      const page = base.slice();
      // zero run 1 as 81 00, literal 2 as 82 00; then a zero run 80 00 would be refused, so zero 2 as 02.
      decode(new Uint8Array(hex('81 00 82 00 aa bb 02 01 cc')), page);
      const expected = base.slice();
      expected.set([0xaa, 0xbb], 1);
      expected[5] = 0xcc;
      expect(toHex(page)).to.equal(toHex(expected));
      // An empty first zero run written as 80 00, and a literal run that repeats the old bytes.
      const same = base.slice();
      decode(bytes(hex('80 00 04'), base.subarray(0, 4)), same);
      expect(toHex(same)).to.equal(toHex(base));
    });
  });

  describe('against the plainest statement of QEMU\'s rules, on random page pairs', () => {
    type Density = 'identical' | 'one byte' | 'scattered' | 'runs' | 'dense' | 'everything' | 'every other byte';
    const DENSITIES: Density[] = ['identical', 'one byte', 'scattered', 'runs', 'dense', 'everything', 'every other byte'];

    function dirty(old: Uint8Array, density: Density, random: SeededRandom): Uint8Array {
      const size = old.length;
      switch (density) {
        case 'identical':
          return old.slice();
        case 'one byte':
          return changed(old, [random.int(0, size - 1)], random);
        case 'scattered':
          return changed(old, Array.from({ length: random.int(2, 64) }, () => random.int(0, size - 1)), random);
        case 'runs': {
          const positions: number[] = [];
          for (let r = random.int(1, 8); r > 0; r--) {
            const start = random.int(0, size - 1);
            positions.push(...range(start, Math.min(size, start + random.int(1, 600))));
          }
          return changed(old, new Set(positions), random);
        }
        case 'dense': {
          const p = random.pick([0.1, 0.3, 0.5, 0.9]);
          return changed(old, range(0, size).filter(() => random.next() < p), random);
        }
        case 'everything':
          return changed(old, range(0, size), random);
        case 'every other byte':
          return changed(old, range(0, size).filter((i) => i % 2 === 0 && i < size - 2), random);
      }
    }

    /** Copies `page` into a fresh buffer at `offset`, so the same bytes sit word-aligned or not. */
    function placed(page: Uint8Array, offset: number, tail: number): Uint8Array {
      const memory = new Uint8Array(offset + page.length + tail);
      memory.set(page, offset);
      return memory.subarray(offset, offset + page.length);
    }

    const seed = fuzzSeed(0x19);
    const cases = fuzzIterations(700);

    it(`writes the same bytes and gives up at the same limits, on ${cases} pairs of every change density and placement (seed ${seed})`, () => {
      const random = new SeededRandom(seed);
      const seen = new Set<string>();
      for (let c = 0; c < cases; c++) {
        const size = random.next() < 0.8 ? PAGE : random.pick([1, 3, 8, 63, 100, 4095, 8192, XBZRLE_MAX_PAGE_SIZE]);
        const density = DENSITIES[c % DENSITIES.length] as Density;
        const oldBytes = random.bytes(size);
        const newBytes = dirty(oldBytes, density, random);
        // Both word-aligned (the word path), or not (bytes only); buffers of odd lengths too.
        const [oldOffset, newOffset] = random.pick([[0, 0], [4, 8], [1, 1], [0, 3], [2, 6]]) as [number, number];
        const oldPage = placed(oldBytes, oldOffset, random.int(0, 3));
        const newPage = placed(newBytes, newOffset, random.int(0, 3));
        const outOffset = random.int(0, 3);
        const outMemory = new Uint8Array(outOffset + 2 * size + 16 + random.int(0, 3));
        const out = outMemory.subarray(outOffset);
        const expected = new Uint8Array(out.length);
        const where = `case ${c}: ${density}, ${size}-byte page at offsets ${oldOffset}/${newOffset}, out at ${outOffset}`;

        const full = referenceEncode(oldBytes, newBytes, expected, expected.length);
        const n = encode(oldPage, newPage, out);
        if (n !== full) expect.fail(`${where}: encode gave ${n}, the rules ${full}`);
        if (n > 0 && toHex(out.subarray(0, n)) !== toHex(expected.subarray(0, n))) expect.fail(`${where}: different bytes`);
        if (n === 0 && toHex(oldBytes) !== toHex(newBytes)) expect.fail(`${where}: 0 for different pages`);
        seen.add(n === 0 ? 'equal' : 'delta');

        if (n > 0) {
          const page = placed(oldBytes, random.int(0, 3), 0);
          decode(out.subarray(0, n), page);
          if (toHex(page) !== toHex(newBytes)) expect.fail(`${where}: decoding does not give the new page`);
        }

        // The page-size limit QEMU uses, and limits around the delta's own length.
        for (const limit of [size, Math.max(0, full - 1), full, full + 1, full + 2, random.int(0, Math.max(0, full + 3))]) {
          if (limit > out.length) continue;
          out.fill(0xa5);
          const want = referenceEncode(oldBytes, newBytes, expected, limit);
          const got = encode(oldPage, newPage, out, limit);
          if (got !== want) expect.fail(`${where}, limit ${limit}: encode gave ${got}, the rules ${want}`);
          if (got === XBZRLE_OVERFLOW) seen.add('overflow');
          for (let k = limit; k < out.length; k++) {
            if (out[k] !== 0xa5) expect.fail(`${where}, limit ${limit}: byte ${k} written, past the limit`);
          }
        }
      }
      expect([...seen].sort()).to.deep.equal(['delta', 'equal', 'overflow']);
    });

    it(`decode accepts exactly what QEMU's rules accept, and a refused delta leaves the page and its surroundings untouched (seed ${seed})`, () => {
      const random = new SeededRandom(seed + 1);
      const rounds = fuzzIterations(3000);
      const tally = { accepted: 0, refused: 0 };
      const codes = new Set<XbzrleErrorCode>();
      for (let c = 0; c < rounds; c++) {
        const size = random.next() < 0.7 ? PAGE : random.int(1, 300);
        const oldBytes = random.bytes(size);
        const valid = encodeAll(oldBytes, dirty(oldBytes, random.pick(DENSITIES.slice(1, 5)), random));
        let delta = valid instanceof Uint8Array ? valid : new Uint8Array(0);
        // Damage it: change, drop, add or cut bytes, most often near the run lengths at the start.
        const edits = random.int(1, 3);
        for (let e = 0; e < edits; e++) {
          const at = delta.length === 0 ? 0 : random.next() < 0.5 ? random.int(0, Math.min(8, delta.length - 1)) : random.int(0, delta.length - 1);
          const kind = random.int(0, 4);
          if (kind === 0 && delta.length > 0) delta[at] = random.int(0, 255);
          else if (kind === 1) delta = delta.subarray(0, random.int(0, delta.length));
          else if (kind === 2) delta = bytes(delta.subarray(0, at), [random.pick([0, 1, 0x7f, 0x80, 0x81, 0xff, random.int(0, 255)])], delta.subarray(at));
          else if (kind === 3) delta = bytes(delta.subarray(0, at), delta.subarray(at + 1));
          else delta = bytes(delta, random.bytes(random.int(1, 4)));
        }
        const qemuPage = oldBytes.slice();
        const qemu = referenceDecode(delta, qemuPage);
        const { memory, page } = guardedPage(oldBytes);
        let error: unknown = null;
        try {
          decode(delta, page);
        } catch (e) {
          error = e;
        }
        expectGuardsIntact(memory);
        const where = `case ${c}: delta ${toHex(delta.subarray(0, 24))}${delta.length > 24 ? '…' : ''} (${delta.length} bytes), page ${size}`;
        if (qemu === -1) {
          if (!(error instanceof XbzrleError)) expect.fail(`${where}: QEMU refuses it, decode ${error === null ? 'accepted it' : `threw ${String(error)}`}`);
          codes.add(error.code);
          if (toHex(page) !== toHex(oldBytes)) expect.fail(`${where}: refused, but the page was changed`);
          tally.refused++;
        } else {
          if (error !== null) expect.fail(`${where}: QEMU accepts it, decode threw ${String(error)}`);
          if (toHex(page) !== toHex(qemuPage)) expect.fail(`${where}: a different page than QEMU's`);
          tally.accepted++;
        }
      }
      expect(tally.accepted, 'some damaged deltas are still valid').to.be.greaterThan(rounds / 50);
      expect(tally.refused).to.be.greaterThan(rounds / 4);
      expect([...codes].sort()).to.deep.equal(['EMPTY_RUN', 'LENGTH_TOO_LONG', 'LITERAL_PAST_INPUT', 'RUN_PAST_PAGE', 'TRUNCATED_LENGTH', 'TRUNCATED_PAIR']);
    });
  });

  describe('overflow: -1 exactly where QEMU gives up, nothing written past the limit', () => {
    const random = new SeededRandom(0x0f);
    const base = random.bytes(PAGE);

    function expectAt(oldPage: Uint8Array, newPage: Uint8Array, limit: number, expected: number): void {
      const out = new Uint8Array(limit + 8).fill(0xa5);
      expect(encode(oldPage, newPage, out, limit), `limit ${limit}`).to.equal(expected);
      expect(toHex(out.subarray(limit)), `nothing past limit ${limit}`).to.equal('a5'.repeat(8));
    }

    it('a delta ending with a literal run at the page end fits a limit of exactly its length', () => {
      const newPage = changed(base, range(PAGE - 10, PAGE));
      // zero 4086 (f6 1f), literal 10 (0a), 10 bytes: 13.
      expect(toHex(encodeAll(base, newPage) as Uint8Array).slice(0, 6)).to.equal('f61f0a');
      expectAt(base, newPage, 13, 13);
      expectAt(base, newPage, 12, XBZRLE_OVERFLOW);
    });

    it('a delta followed by unchanged bytes needs two more: QEMU wants room for a run length before it finds the last zero run', () => {
      const newPage = changed(base, range(0, 10));
      // zero 0, literal 10, 10 bytes: 12; the 4086 equal bytes after are left out.
      expect((encodeAll(base, newPage) as Uint8Array).length).to.equal(12);
      expectAt(base, newPage, 14, 12);
      expectAt(base, newPage, 13, XBZRLE_OVERFLOW);
      expectAt(base, newPage, 12, XBZRLE_OVERFLOW);
    });

    it('equal pages are -1 below two bytes of room, and 0 from two', () => {
      expectAt(base, base.slice(), 0, XBZRLE_OVERFLOW);
      expectAt(base, base.slice(), 1, XBZRLE_OVERFLOW);
      expectAt(base, base.slice(), 2, 0);
    });

    it('a two-byte zero-run length that leaves no room for the literal length gives up before it', () => {
      const newPage = changed(base, [PAGE - 1]);
      expectAt(base, newPage, 4, 4);
      expectAt(base, newPage, 3, XBZRLE_OVERFLOW);
      expectAt(base, newPage, 2, XBZRLE_OVERFLOW);
    });

    it('a two-byte literal length: 203 bytes for 200 changed at the start, 205 of room with the equal tail', () => {
      const newPage = changed(base, range(0, 200));
      expectAt(base, newPage, 205, 203);
      expectAt(base, newPage, 204, XBZRLE_OVERFLOW);
      expectAt(base, newPage, 203, XBZRLE_OVERFLOW);
    });

    it('every byte changed needs 4099 bytes: over a page, so -1 at the page-size limit QEMU uses', () => {
      const newPage = changed(base, range(0, PAGE));
      expectAt(base, newPage, 4099, 4099);
      expectAt(base, newPage, 4098, XBZRLE_OVERFLOW);
      expectAt(base, newPage, PAGE, XBZRLE_OVERFLOW);
    });

    it("QEMU's overflow test: every other byte changed is -1 within a page", () => {
      const oldPage = new Uint8Array(PAGE);
      const newPage = new Uint8Array(PAGE);
      for (let i = 0; i < PAGE / 2 - 1; i++) newPage[i * 2] = 1;
      expectAt(oldPage, newPage, PAGE, XBZRLE_OVERFLOW);
    });
  });

  describe('corrupt deltas: refused with the rule and the byte, the page untouched, nothing written around it', () => {
    const random = new SeededRandom(0xbad);
    const base = random.bytes(PAGE);

    const cases: { name: string; delta: number[]; code: XbzrleErrorCode; offset: number; message: RegExp }[] = [
      { name: 'a zero run far past the page (16383)', delta: hex('ff 7f 01 aa'), code: 'RUN_PAST_PAGE', offset: 0, message: /zero run of 16383 bytes from page offset 0 goes past the 4096-byte page/ },
      { name: 'a zero run one byte past the page (4097)', delta: hex('81 20 01 aa'), code: 'RUN_PAST_PAGE', offset: 0, message: /zero run of 4097 bytes/ },
      { name: 'a literal run one byte past the page', delta: hex('ff 1f 02 aa bb'), code: 'RUN_PAST_PAGE', offset: 2, message: /literal run of 2 bytes from page offset 4095 goes past/ },
      { name: 'a literal run starting at the page end', delta: hex('80 20 01 aa'), code: 'RUN_PAST_PAGE', offset: 2, message: /literal run of 1 bytes from page offset 4096/ },
      { name: 'a bad pair after good ones (QEMU would have written the first)', delta: hex('00 01 aa ff 1f 01 bb'), code: 'RUN_PAST_PAGE', offset: 5, message: /from page offset 4096/ },
      { name: 'a zero-run length cut off by the end', delta: hex('85'), code: 'TRUNCATED_LENGTH', offset: 0, message: /ends inside a zero-run length/ },
      { name: 'a later zero-run length cut off', delta: hex('00 01 aa 90'), code: 'TRUNCATED_LENGTH', offset: 3, message: /ends inside a zero-run length/ },
      { name: 'a literal-run length cut off', delta: hex('05 81'), code: 'TRUNCATED_LENGTH', offset: 1, message: /ends inside a literal-run length/ },
      { name: "QEMU's invalid length 80 80", delta: hex('80 80 01 01 aa'), code: 'LENGTH_TOO_LONG', offset: 0, message: /zero-run length of more than 2 bytes/ },
      { name: 'a three-byte literal length', delta: hex('05 ff ff 01 aa'), code: 'LENGTH_TOO_LONG', offset: 1, message: /literal-run length of more than 2 bytes/ },
      { name: 'a literal run longer than the rest of the delta', delta: hex('05 04 aa bb'), code: 'LITERAL_PAST_INPUT', offset: 1, message: /literal run of 4 bytes, but only 2 are left in the 4-byte delta/ },
      { name: 'a literal run with none of its bytes', delta: hex('05 01'), code: 'LITERAL_PAST_INPUT', offset: 1, message: /only 0 are left/ },
      { name: 'a 128-byte literal run with 127 bytes', delta: [...hex('00 80 01'), ...new Array<number>(127).fill(7)], code: 'LITERAL_PAST_INPUT', offset: 1, message: /literal run of 128 bytes, but only 127/ },
      { name: 'an empty literal run', delta: hex('05 00 aa'), code: 'EMPTY_RUN', offset: 1, message: /literal run of 0 bytes/ },
      { name: 'an empty literal run in the first pair', delta: hex('00 00'), code: 'EMPTY_RUN', offset: 1, message: /literal run of 0 bytes/ },
      { name: 'an empty zero run after the first pair', delta: hex('00 01 aa 00 01 bb'), code: 'EMPTY_RUN', offset: 3, message: /zero run of 0 bytes after the first pair/ },
      { name: 'an empty zero run written in two bytes after the first pair', delta: hex('00 01 aa 80 00 01 bb'), code: 'EMPTY_RUN', offset: 3, message: /zero run of 0 bytes/ },
      { name: 'a delta that is only a zero run', delta: hex('05'), code: 'TRUNCATED_PAIR', offset: 1, message: /ends after a zero run, without its literal run/ },
      { name: 'a delta ending after a later zero run', delta: hex('00 01 aa 05'), code: 'TRUNCATED_PAIR', offset: 4, message: /without its literal run/ },
      { name: 'a delta ending after a two-byte zero run', delta: hex('81 01'), code: 'TRUNCATED_PAIR', offset: 2, message: /without its literal run/ },
    ];

    for (const c of cases) {
      it(`${c.name}: ${c.code} at byte ${c.offset}`, () => {
        const delta = new Uint8Array(c.delta);
        expect(referenceDecode(delta, base.slice()), 'QEMU refuses it too').to.equal(-1);
        const { memory, page } = guardedPage(base);
        let error: unknown = null;
        try {
          decode(delta, page);
        } catch (e) {
          error = e;
        }
        expect(error).to.be.instanceOf(XbzrleError);
        const e = error as XbzrleError;
        expect({ code: e.code, offset: e.offset }).to.deep.equal({ code: c.code, offset: c.offset });
        expect(e.message).to.match(new RegExp(`^XBZRLE delta, byte ${c.offset}: `));
        expect(e.message).to.match(c.message);
        expectGuardsIntact(memory);
        expect(toHex(page) === toHex(base), 'the page is as it was').to.equal(true);
      });
    }

    it('a valid delta decoded into a guarded page writes its runs and nothing around them', () => {
      const newPage = changed(base, [0, 1, PAGE - 2, PAGE - 1]);
      const delta = encodeAll(base, newPage) as Uint8Array;
      const { memory, page } = guardedPage(base);
      decode(delta, page);
      expectGuardsIntact(memory);
      expect(toHex(page) === toHex(newPage)).to.equal(true);
    });
  });

  describe('misuse', () => {
    it('refuses pages of different sizes, pages over 16383 bytes, and a limit outside the output', () => {
      const page = new Uint8Array(PAGE);
      expect(() => encode(page, new Uint8Array(PAGE - 1), new Uint8Array(PAGE))).to.throw(RangeError, /4096 bytes, the new page 4095/);
      const big = new Uint8Array(XBZRLE_MAX_PAGE_SIZE + 1);
      expect(() => encode(big, big.slice(), new Uint8Array(PAGE))).to.throw(RangeError, /16384 bytes is over the 16383/);
      expect(() => encode(page, page, new Uint8Array(10), 11)).to.throw(RangeError, /limit 11/);
      expect(() => encode(page, page, new Uint8Array(10), -1)).to.throw(RangeError, /limit -1/);
      expect(() => encode(page, page, new Uint8Array(10), 2.5)).to.throw(RangeError, /limit 2.5/);
    });
  });
});
