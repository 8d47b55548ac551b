/**
 * The fuzz corpus: spec/fuzz/corpus/<target>.json, inputs that once broke a
 * property (kept as regressions) or that reach a hostile case worth
 * replaying on every test run (e.g. a 4 GiB declared length).
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import type { FuzzInput } from './fuzz-target.js';

export interface CorpusEntry {
  /** The input's bytes as hex. */
  hex: string;
  /** Chunk sizes it arrives in (empty: one write). */
  cuts: number[];
  /** What it found, or what it reaches. */
  found: string;
}

const corpusFile = (target: string): URL => new URL(`./corpus/${target}.json`, import.meta.url);

export function readCorpus(target: string): CorpusEntry[] {
  const file = corpusFile(target);
  return existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as CorpusEntry[]) : [];
}

export function entryInput(entry: CorpusEntry): FuzzInput {
  return { bytes: Uint8Array.from(Buffer.from(entry.hex, 'hex')), cuts: entry.cuts };
}

/** Adds a (shrunk) failing input to `target`'s corpus. */
export function addToCorpus(target: string, input: FuzzInput, found: string): void {
  const entries = [...readCorpus(target), { hex: Buffer.from(input.bytes).toString('hex'), cuts: input.cuts, found }];
  writeFileSync(corpusFile(target), `${JSON.stringify(entries, null, 2)}\n`);
}
