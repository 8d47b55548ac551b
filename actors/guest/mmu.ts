import type { RamBlock } from './ram-block.js';
import { TARGET_PAGE_SIZE } from './constants.js';
import {
  ALL_BLOCKED_MS, ALL_BLOCKED_SINCE, BLOCKED_VCPUS, BLOCKTIME_MS, DIRTY_PAGES, DIRTY_RATE_LOG, FAULT_BLOCK, FAULT_COUNT, FAULT_KIND, FAULT_NONE, FAULT_PAGE,
  FAULT_RAISED, FAULT_SEQ, FAULT_STATE, POSTCOPY, WRITE_PROTECT, vcpuSlot,
} from './control.js';
import type { FaultLatencyLog } from './fault-latency.js';
import { FAULT_KINDS, type FaultKind } from './fault-queue.js';

/**
 * Every guest access made by a workload goes through here (the guest's MMU).
 *
 * Hot path: one call per access. It must never allocate, and it checks the
 * postcopy and write-protect bitmaps only while those modes are on.
 *
 * Write order is DESIGN rule 1: the data first, then the dirty bit. A dirty
 * sync that clears the bit after our data landed copies the new data; one
 * that ran before we marked sees the bit on its next pass.
 */
export class Mmu {
  constructor(
    private readonly blocks: RamBlock[],
    private readonly ctrl: Int32Array,
    private readonly vcpu: number,
    /** The guest's vCPU count: blocktime counts the time all of them wait at once. */
    private readonly smp: number,
    private readonly faultLog: FaultLatencyLog,
    /** Parks the vCPU if a stop was requested; called while waiting on a fault. */
    private readonly parkIfStopping: () => void,
  ) {}

  read8(block: number, addr: number): number {
    const b = this.blocks[block]!;
    const page = pageOf(addr);
    if (this.ctrl[POSTCOPY] !== 0) this.waitReceived(b, block, page, 'read');
    return b.slabOf(page)[b.offsetInSlab(page) + (addr & (TARGET_PAGE_SIZE - 1))]!;
  }

  write8(block: number, addr: number, value: number): void {
    const b = this.blocks[block]!;
    const page = pageOf(addr);
    this.beforeWrite(b, block, page);
    b.slabOf(page)[b.offsetInSlab(page) + (addr & (TARGET_PAGE_SIZE - 1))] = value;
    this.markDirty(b, page);
  }

  /** Writes a little-endian 32-bit value; `addr` must be 4-byte aligned (never spans pages). */
  write32(block: number, addr: number, value: number): void {
    const b = this.blocks[block]!;
    const page = pageOf(addr);
    this.beforeWrite(b, block, page);
    const slab = b.slabOf(page);
    const at = b.offsetInSlab(page) + (addr & (TARGET_PAGE_SIZE - 1));
    slab[at] = value & 0xff;
    slab[at + 1] = (value >>> 8) & 0xff;
    slab[at + 2] = (value >>> 16) & 0xff;
    slab[at + 3] = value >>> 24;
    this.markDirty(b, page);
  }

  private beforeWrite(b: RamBlock, block: number, page: number): void {
    if (this.ctrl[POSTCOPY] !== 0) this.waitReceived(b, block, page, 'write');
    if (this.ctrl[WRITE_PROTECT] !== 0 && b.writeProtect.test(page)) this.waitUnprotected(b, block, page);
  }

  private markDirty(b: RamBlock, page: number): void {
    // Test before set: a bit already set will be seen by the next sync, which
    // runs after this data write in every interleaving (see class comment).
    const w = page >>> 5;
    const m = 1 << (page & 31);
    if ((Atomics.load(b.dirty.words, w) & m) === 0) Atomics.or(b.dirty.words, w, m);
    if ((Atomics.load(b.touched.words, w) & m) === 0) Atomics.or(b.touched.words, w, m);
    if (this.ctrl[DIRTY_RATE_LOG] !== 0) this.logDirtyRate(b, w, m);
  }

  /**
   * The dirty-rate log, while a measurement keeps it on: the write that sets
   * a page's bit counts the page for this vCPU, as KVM's dirty ring logs a
   * page once, for the vCPU that dirtied it, until the ring is reset.
   */
  private logDirtyRate(b: RamBlock, w: number, m: number): void {
    const words = b.dirtyRate.words;
    if ((Atomics.load(words, w) & m) === 0 && (Atomics.or(words, w, m) & m) === 0) Atomics.add(this.ctrl, vcpuSlot(this.vcpu, DIRTY_PAGES), 1);
  }

  private waitReceived(b: RamBlock, block: number, page: number, kind: FaultKind): void {
    if (b.received.test(page)) return;
    const ctrl = this.ctrl;
    const waitStart = performance.now();
    const start = Date.now() | 0;
    if (Atomics.add(ctrl, BLOCKED_VCPUS, 1) + 1 === this.smp) Atomics.store(ctrl, ALL_BLOCKED_SINCE, start);
    this.fault(b.received.words, page, true, block, kind);
    const end = Date.now() | 0;
    if (Atomics.sub(ctrl, BLOCKED_VCPUS, 1) === this.smp) Atomics.add(ctrl, ALL_BLOCKED_MS, (end - Atomics.load(ctrl, ALL_BLOCKED_SINCE)) | 0);
    Atomics.add(ctrl, vcpuSlot(this.vcpu, BLOCKTIME_MS), (end - start) | 0);
    this.faultLog.record((performance.now() - waitStart) * 1000);
  }

  private waitUnprotected(b: RamBlock, block: number, page: number): void {
    this.fault(b.writeProtect.words, page, false, block, 'write-protect');
  }

  /**
   * Raises a fault in this vCPU's slot of the fault queue and blocks the
   * thread until the page's bit reaches `until`. Blocking a vCPU worker with
   * Atomics.wait is the point: it is a vCPU stalled on a missing page, and the
   * thread has nothing else to do. The wait has a timeout so a stop request
   * still parks it.
   */
  private fault(words: Int32Array, page: number, until: boolean, block: number, kind: FaultKind): void {
    const ctrl = this.ctrl;
    const v = this.vcpu;
    Atomics.store(ctrl, vcpuSlot(v, FAULT_KIND), FAULT_KINDS.indexOf(kind));
    Atomics.store(ctrl, vcpuSlot(v, FAULT_BLOCK), block);
    Atomics.store(ctrl, vcpuSlot(v, FAULT_PAGE), page);
    Atomics.add(ctrl, vcpuSlot(v, FAULT_COUNT), 1);
    Atomics.store(ctrl, vcpuSlot(v, FAULT_STATE), FAULT_RAISED);
    Atomics.add(ctrl, FAULT_SEQ, 1);
    Atomics.notify(ctrl, FAULT_SEQ);
    const w = page >>> 5;
    const m = 1 << (page & 31);
    for (;;) {
      const word = Atomics.load(words, w);
      if (((word & m) !== 0) === until) break;
      this.parkIfStopping();
      Atomics.wait(words, w, word, 20);
    }
    Atomics.store(ctrl, vcpuSlot(v, FAULT_STATE), FAULT_NONE);
  }
}

/** Page number of a guest address; addresses go past 2^32, so no `>>>`. */
function pageOf(addr: number): number {
  return (addr - (addr & (TARGET_PAGE_SIZE - 1))) / TARGET_PAGE_SIZE;
}
