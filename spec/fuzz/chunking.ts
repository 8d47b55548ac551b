/**
 * Random chunkings: a transport hands a decoder any split of the bytes, so
 * every input is also tried one write at a time, in tiny pieces and in large
 * ones.
 */
import * as fc from 'fast-check';
import type { PullDecoder } from '../../protocols/pull-decoder/pull-decoder.js';
import type { FuzzInput } from './fuzz-target.js';

export const cutsArbitrary: fc.Arbitrary<number[]> = fc.oneof(
  fc.constant<number[]>([]),
  fc.array(fc.integer({ min: 1, max: 40 }), { minLength: 1, maxLength: 6 }),
  fc.array(fc.integer({ min: 1, max: 9000 }), { minLength: 1, maxLength: 4 }),
);

/** Pairs each input from `bytes` with a chunking. */
export function withCuts(bytes: fc.Arbitrary<Uint8Array>): fc.Arbitrary<FuzzInput> {
  return fc.record({ bytes, cuts: cutsArbitrary });
}

/** The pieces `input.bytes` arrives in. */
export function* chunks({ bytes, cuts }: FuzzInput): Generator<Uint8Array> {
  if (cuts.length === 0) {
    yield bytes;
    return;
  }
  for (let at = 0, i = 0; at < bytes.length; i++) {
    const size = cuts[i % cuts.length] as number;
    yield bytes.subarray(at, at + size);
    at += size;
  }
}

/**
 * Pushes the input in its chunks, then ends it. After a failure the decoder
 * must stay failed: any later call throws the same error again.
 */
export function feedPull(decoder: PullDecoder, input: FuzzInput): void {
  try {
    for (const chunk of chunks(input)) decoder.push(chunk);
    decoder.end();
  } catch (error) {
    let again: unknown;
    try {
      decoder.push(Uint8Array.of(0));
    } catch (second) {
      again = second;
    }
    if (again !== error) throw new Error(`after failing with ${String(error)} the decoder went on (${String(again)})`);
    throw error;
  }
}

/** Inputs for a decoder that takes a whole message at once: no chunking. */
export function whole(bytes: fc.Arbitrary<Uint8Array>): fc.Arbitrary<FuzzInput> {
  return bytes.map((b) => ({ bytes: b, cuts: [] }));
}
