/**
 * What one fuzz target is: a decoder that takes bytes from a peer or a
 * client, the inputs to try on it, and the properties every input must keep.
 * spec/fuzz/targets.ts lists them; spec/fuzz/run.ts runs them long,
 * spec/fuzz-corpus.test.ts briefly and over the saved corpus.
 */
import type * as fc from 'fast-check';

/** One input as a peer would send it: its bytes, and how the transport splits them. */
export interface FuzzInput {
  bytes: Uint8Array;
  /** Chunk sizes, used in turn until the bytes run out; empty means one write. */
  cuts: number[];
}

export interface FuzzTarget {
  name: string;
  /** Hostile inputs: mutated valid encodings, plausible-looking junk, random bytes. */
  input: fc.Arbitrary<FuzzInput>;
  /**
   * Runs the decoder over `input` and throws if it breaks a property: it
   * threw anything but a clear error of its own, took too long, held too
   * much memory, or delivered something its schema forbids.
   */
  check(input: FuzzInput): void;
  /** encode(random valid message) then decode in random chunks gives the message back. */
  roundTrip: fc.IRawProperty<unknown, false>;
}
