import { TARGET_PAGE_SIZE } from './constants.js';
import type { RamBlock } from './ram-block.js';
import { vcpuSlice } from './workloads/workload.js';

export interface AbReport {
  ok: boolean;
  /** Pages (absolute page numbers in pc.ram) that break the pattern. */
  badPages: number[];
  /** Per vCPU slice: the value before the boundary and where the boundary lies. */
  slices: { first: number; count: number; high: number; boundary: number }[];
}

/**
 * The `ab` checker (QEMU's migration-test check), for a stopped guest: in each
 * vCPU's slice every page's first byte holds one value H up to a boundary and
 * H-1 (mod 256) from it on; the boundary may be at the slice's start or end.
 *
 * To report precisely which pages are wrong rather than only "bad", it picks
 * the H and boundary that explain the most pages; every page they do not
 * explain is reported. A stale page, a zeroed page and a page from the future
 * each break that pattern.
 */
export function checkAb(ram: RamBlock, start: number, end: number, smp: number): AbReport {
  const badPages: number[] = [];
  const slices: AbReport['slices'] = [];
  for (let vcpu = 0; vcpu < smp; vcpu++) {
    const slice = vcpuSlice(start / TARGET_PAGE_SIZE, (end - start) / TARGET_PAGE_SIZE, vcpu, smp);
    const values = new Uint8Array(slice.count);
    const one = new Uint8Array(1);
    for (let i = 0; i < slice.count; i++) {
      ram.readInto((slice.first + i) * TARGET_PAGE_SIZE, one);
      values[i] = one[0]!;
    }
    const fit = bestFit(values);
    slices.push({ first: slice.first, count: slice.count, high: fit.high, boundary: fit.boundary });
    for (let i = 0; i < slice.count; i++) {
      const expected = i < fit.boundary ? fit.high : (fit.high + 255) & 0xff;
      if (values[i] !== expected) badPages.push(slice.first + i);
    }
  }
  return { ok: badPages.length === 0, badPages, slices };
}

/** The (H, boundary) under which the most pages are consistent. */
function bestFit(values: Uint8Array): { high: number; boundary: number } {
  if (values.length === 0) return { high: 0, boundary: 0 };
  // Try every H that could explain some page (a value present, or one above
  // it), and every boundary for it, with running counts: O(256 · pages).
  const candidates = new Set<number>();
  for (const v of values) candidates.add(v).add((v + 1) & 0xff);
  let best = { high: values[0]!, boundary: values.length, score: -1 };
  for (const high of candidates) {
    const low = (high + 255) & 0xff;
    let lowAfter = 0;
    for (const v of values) if (v === low) lowAfter++;
    let highBefore = 0;
    for (let b = 0; b <= values.length; b++) {
      const score = highBefore + lowAfter;
      if (score > best.score) best = { high, boundary: b, score };
      if (b < values.length) {
        if (values[b] === high) highBefore++;
        if (values[b] === low) lowAfter--;
      }
    }
  }
  return { high: best.high, boundary: best.boundary };
}
