/**
 * Page-sampling (QEMU's calculate_dirtyrate_sample_vm): a hash of a random
 * sample of each RAM block's pages at the start, the same pages hashed
 * again at the end; the share of samples whose hash changed, times the
 * blocks' size, over the time between, is the dirty rate. It reads guest
 * memory only, so it needs no dirty logging and cannot disturb a
 * migration's.
 *
 * The hash is CRC32 of the whole page (zlib's, native), QEMU's first
 * choice; 8.2 folds an xxHash64-style sum of the page to 32 bits instead.
 * Either only has to tell a changed page from an unchanged one.
 *
 * Pages are hashed on the main thread, a slice at a time between two turns
 * of the event loop, so a large sample leaves QMP and the migration
 * answering.
 */
import { setImmediate as nextTurn } from 'node:timers/promises';
import { crc32 } from 'node:zlib';
import { TARGET_PAGE_SIZE } from '../guest/constants.js';
import type { RamBlock } from '../guest/ram-block.js';
import { MIN_SAMPLED_BLOCK_BYTES } from './constants.js';
import type { MeasuringRun } from './types.js';

/** Pages hashed between two turns of the event loop (~1 ms of CRC32). */
const PAGES_PER_TURN = 256;
const MiB = 1 << 20;

/** One block's sample (QEMU's RamblockDirtyInfo). */
export interface BlockSample {
  block: RamBlock;
  /** The sampled page numbers, drawn at random (a page may be drawn twice, as in QEMU). */
  pages: Uint32Array;
  /** Each sampled page's hash at the start. */
  hashes: Uint32Array;
}

/** What the second pass found, over every sampled block (QEMU's SampleVMStat). */
export interface SamplingStat {
  dirtySamples: number;
  sampleCount: number;
  /** The sampled blocks' size, MiB, each rounded down. */
  blockMiB: number;
}

/** page-sampling mode: the samples hashed now, hashed again and compared at the end. */
export async function startPageSampling(blocks: readonly RamBlock[], samplePagesPerGiB: number): Promise<MeasuringRun> {
  const samples = await recordSamples(blocks, samplePagesPerGiB);
  return {
    async end(calcTimeMs) {
      return { dirtyRate: samplingDirtyRate(await compareSamples(samples), calcTimeMs) };
    },
  };
}

/**
 * QEMU's record_ramblock_hash_info: each block of at least 128 KiB gets
 * `samplePagesPerGiB` samples per GiB of its size (rounded down), hashed now.
 */
export async function recordSamples(blocks: readonly RamBlock[], samplePagesPerGiB: number): Promise<BlockSample[]> {
  const samples: BlockSample[] = [];
  for (const block of blocks) {
    if (block.size < MIN_SAMPLED_BLOCK_BYTES) continue;
    // size / 2^30 is exact (a power of two), so the product rounds down as QEMU's integer one does.
    const count = Math.floor((block.size / 2 ** 30) * samplePagesPerGiB);
    const pages = new Uint32Array(count);
    for (let i = 0; i < count; i++) pages[i] = Math.floor(Math.random() * block.pageCount);
    const hashes = new Uint32Array(count);
    await hashPages(block, pages, hashes);
    samples.push({ block, pages, hashes });
  }
  return samples;
}

/** QEMU's compare_page_hash_info: hashes the samples again and counts the changed ones. */
export async function compareSamples(samples: readonly BlockSample[]): Promise<SamplingStat> {
  const stat: SamplingStat = { dirtySamples: 0, sampleCount: 0, blockMiB: 0 };
  for (const { block, pages, hashes } of samples) {
    const now = new Uint32Array(pages.length);
    await hashPages(block, pages, now);
    for (let i = 0; i < pages.length; i++) if (now[i] !== hashes[i]) stat.dirtySamples++;
    stat.sampleCount += pages.length;
    // A block too small for a single sample still counts its size, as QEMU's update_dirtyrate_stat does.
    stat.blockMiB += Math.floor(block.size / MiB);
  }
  return stat;
}

/**
 * QEMU's update_dirtyrate: MB/s, in integers as QEMU works it out; -1 when
 * nothing was sampled (QEMU then leaves the rate at its initial -1).
 */
export function samplingDirtyRate(stat: SamplingStat, calcTimeMs: number): number {
  if (stat.sampleCount === 0) return -1;
  return Math.floor((stat.dirtySamples * stat.blockMiB * 1000) / (stat.sampleCount * calcTimeMs));
}

async function hashPages(block: RamBlock, pages: Uint32Array, into: Uint32Array): Promise<void> {
  for (let i = 0; i < pages.length; i++) {
    if (i > 0 && i % PAGES_PER_TURN === 0) await nextTurn();
    const page = pages[i]!;
    const at = block.offsetInSlab(page);
    into[i] = crc32(block.slabOf(page).subarray(at, at + TARGET_PAGE_SIZE));
  }
}
