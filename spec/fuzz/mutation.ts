/**
 * Mutations of valid encodings, the inputs that reach deep into a format:
 * flipped bytes, truncations, insertions, deletions, splices and boundary
 * values (huge lengths included) written over any 1, 2 or 4 bytes. Each
 * mutation is a small record, so fast-check shrinks a failing input towards
 * the valid encoding and the fewest, simplest mutations.
 */
import * as fc from 'fast-check';

/** Values that sit on the edges of the formats' fields: 0, 1, signed and unsigned limits, 4 GiB - 1. */
export const BOUNDARY_WORDS = [0, 1, 2, 3, 0xff, 0x100, 0x7fff, 0x8000, 0xffff, 0x10000, 0x1000000, 0x7fffffff, 0x80000000, 0xffffffff];

type Mutation =
  | { kind: 'flip'; at: number; xor: number }
  | { kind: 'truncate'; at: number }
  | { kind: 'insert'; at: number; bytes: Uint8Array }
  | { kind: 'delete'; at: number; length: number }
  | { kind: 'splice'; at: number; from: number }
  | { kind: 'word'; at: number; width: 1 | 2 | 4; value: number };

const position = fc.nat({ max: 1 << 20 });

const mutationArbitrary: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ kind: fc.constant('flip' as const), at: position, xor: fc.integer({ min: 1, max: 255 }) }),
  fc.record({ kind: fc.constant('truncate' as const), at: position }),
  fc.record({ kind: fc.constant('insert' as const), at: position, bytes: fc.uint8Array({ minLength: 1, maxLength: 16 }) }),
  fc.record({ kind: fc.constant('delete' as const), at: position, length: fc.integer({ min: 1, max: 64 }) }),
  fc.record({ kind: fc.constant('splice' as const), at: position, from: position }),
  fc.record({
    kind: fc.constant('word' as const),
    at: position,
    width: fc.constantFrom(1 as const, 2 as const, 4 as const),
    value: fc.oneof(fc.constantFrom(...BOUNDARY_WORDS), fc.nat({ max: 0xffffffff })),
  }),
);

function apply(bytes: Buffer, m: Mutation): Buffer {
  // Positions are taken modulo the length, so a mutation stays meaningful as the input shrinks.
  const at = m.at % (bytes.length + 1);
  switch (m.kind) {
    case 'flip':
      if (at < bytes.length) bytes[at] = (bytes[at] as number) ^ m.xor;
      return bytes;
    case 'truncate':
      return bytes.subarray(0, at);
    case 'insert':
      return Buffer.concat([bytes.subarray(0, at), m.bytes, bytes.subarray(at)]);
    case 'delete':
      return Buffer.concat([bytes.subarray(0, at), bytes.subarray(at + m.length)]);
    case 'splice':
      return Buffer.concat([bytes.subarray(0, at), bytes.subarray(m.from % (bytes.length + 1))]);
    case 'word':
      if (at + m.width <= bytes.length) bytes.writeUIntBE(m.value % 2 ** (8 * m.width), at, m.width);
      return bytes;
  }
}

/** Valid encodings from `valid`, each with up to four mutations applied. */
export function mutated(valid: fc.Arbitrary<Uint8Array>): fc.Arbitrary<Uint8Array> {
  return fc
    .tuple(valid, fc.array(mutationArbitrary, { maxLength: 4 }))
    .map(([bytes, mutations]) => new Uint8Array(mutations.reduce(apply, Buffer.from(bytes))));
}

/** The usual mix: mostly mutated valid encodings, some structured junk, a few plain random bytes. */
export function hostileBytes(valid: fc.Arbitrary<Uint8Array>, junk?: fc.Arbitrary<Uint8Array>): fc.Arbitrary<Uint8Array> {
  const random = fc.uint8Array({ maxLength: 600 });
  return fc.oneof(
    { arbitrary: mutated(valid), weight: 6 },
    { arbitrary: junk ?? random, weight: 2 },
    { arbitrary: random, weight: 1 },
  );
}
