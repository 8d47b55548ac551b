/**
 * A vCPU: a worker thread running the guest's workload through the MMU.
 *
 * The loop checks the shared RUN word between two steps; a step is a small
 * bounded burst of accesses, so a stop request parks the vCPU within
 * microseconds and never in the middle of an access.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { TARGET_PAGE_SIZE } from './constants.js';
import { DIRTY_LIMIT, DIRTY_LIMIT_SLEPT_US, PARKED, QUIT, RUN, THROTTLE_PCT, WORK, vcpuSlot } from './control.js';
import { cpuSlots } from './cpu-state.js';
import { FaultLatencyLog } from './fault-latency.js';
import { Mmu } from './mmu.js';
import { NicTx } from './nic.js';
import { populatePages } from './populate-pages.js';
import { RamBlock } from './ram-block.js';
import { createWorkload, loadWorkloadSpec } from './workloads/index.js';
import { osThreadId } from '../threads/os-thread-id.js';
import { VCPU_PREFAULTED, type VcpuStarted, type VcpuWorkerData } from './vcpu-messages.js';

const { index, smp, blocks: shared, ctrl: ctrlBuffer, cpuState, faultLog, prefault, nic: nicRing } = workerData as VcpuWorkerData;
const ctrl = new Int32Array(ctrlBuffer);
const blocks = shared.map((s) => new RamBlock(s));
const slots = cpuSlots(new Float64Array(cpuState), index);
const parkedSlot = vcpuSlot(index, PARKED);
parentPort!.postMessage({ tid: osThreadId() } satisfies VcpuStarted);

/** Pre-fault shares are dealt in chunks of 1 MiB, round robin over the vCPUs. */
const PREFAULT_CHUNK_BYTES = 256 * TARGET_PAGE_SIZE;
/**
 * Pages populated per system call. The call holds the process's memory-map
 * lock, for which every mprotect of V8's code space waits: populated 1 MiB
 * at a time, the pre-fault held a starting destination's monitor back by
 * ~0.4 s (1.1 s against 0.7 s here); 16 KiB at a time, not at all.
 */
const POPULATE_PAGES = 4;
/**
 * QEMU's CPU_THROTTLE_TIMESLICE: a vCPU throttled at pct % runs 10 ms, then
 * sleeps 10 ms × pct / (100 − pct) (at 99 %, 990 ms), as cpu_throttle_thread does.
 */
const TIMESLICE_MS = 10;
/** Window over which the per-vCPU dirty-page limit is enforced. */
const DIRTY_WINDOW_MS = 100;

/**
 * QEMU's prealloc on its vCPU count of threads: the first touch of a page
 * costs up to 5.7 µs on this kind of machine, which a destination would
 * otherwise pay while pages arrive, tripling its load time. A parked vCPU of
 * a destination has nothing else to do, so it faults in its share of pages,
 * a 1 MiB chunk at a time, with MADV_POPULATE_WRITE (populate-pages.ts),
 * else with an atomic add of zero per page: no byte changes either way, so
 * it is safe while pages are already landing. Populated, 1 GiB takes ~0.5 s
 * here (touched from JavaScript, 1.0–1.4 s: a read fault, then a write
 * fault, per page).
 *
 * A destination migrated into at once receives while it pre-faults. The
 * stream lands each block from its first page up, so the pre-fault works
 * from the last chunk down: the two fault disjoint pages until they meet,
 * and the last pages to arrive, those of the switchover, find their pages
 * in (downtime at once 80–170 ms against 400–580 ms going up). It gives up
 * when the guest starts or quits (its accesses then fault pages in as they
 * go).
 */
function prefaultShare(): void {
  const chunks: { slab: Uint8Array; start: number }[] = [];
  for (const ram of blocks) {
    for (const slab of ram.slabs) for (let start = 0; start < slab.length; start += PREFAULT_CHUNK_BYTES) chunks.push({ slab, start });
  }
  for (let chunk = chunks.length - 1; chunk >= 0; chunk--) {
    if (chunk % smp !== index) continue;
    if (Atomics.load(ctrl, RUN) === 1 || Atomics.load(ctrl, QUIT) === 1) return;
    const { slab, start } = chunks[chunk]!;
    const end = Math.min(start + PREFAULT_CHUNK_BYTES, slab.length);
    if (populateChunk(slab, start, end)) continue;
    const words = new Int32Array(slab.buffer, slab.byteOffset + start, (end - start) >> 2);
    for (let at = 0; at < words.length; at += TARGET_PAGE_SIZE >> 2) Atomics.add(words, at, 0);
  }
}

/** Populates bytes [from, to) of `slab`, POPULATE_PAGES at a time; false where populating is not available (the caller touches instead). */
function populateChunk(slab: Uint8Array, from: number, to: number): boolean {
  const step = POPULATE_PAGES * TARGET_PAGE_SIZE;
  for (let at = from; at < to; at += step) if (!populatePages(slab.subarray(at, Math.min(at + step, to)))) return false;
  return true;
}

let prefaultPending = prefault;

/**
 * Parks until RUN is set again. Leaving the park, PARKED is cleared and RUN
 * re-read: either this vCPU sees a new stop request and parks again, or the
 * stopper saw PARKED=0 and waits for it (the two stores are ordered by
 * Atomics, so a stopper can never count us parked while we run).
 */
function park(): void {
  for (;;) {
    Atomics.store(ctrl, parkedSlot, 1);
    Atomics.notify(ctrl, parkedSlot);
    if (prefaultPending) {
      prefaultPending = false;
      prefaultShare();
      parentPort!.postMessage(VCPU_PREFAULTED);
    }
    while (Atomics.load(ctrl, RUN) === 0 && Atomics.load(ctrl, QUIT) === 0) Atomics.wait(ctrl, RUN, 0);
    Atomics.store(ctrl, parkedSlot, 0);
    if (Atomics.load(ctrl, RUN) === 1 || Atomics.load(ctrl, QUIT) === 1) return;
  }
}

function parkIfStopping(): void {
  if (Atomics.load(ctrl, RUN) === 0 && Atomics.load(ctrl, QUIT) === 0) park();
}

/** Sleeps up to ms, waking early when a stop or quit is requested. */
function sleep(ms: number): void {
  if (Atomics.load(ctrl, RUN) === 1) Atomics.wait(ctrl, RUN, 1, ms);
}

const mmu = new Mmu(blocks, ctrl, index, smp, new FaultLatencyLog(faultLog), parkIfStopping);
const nic = index === 0 ? new NicTx(nicRing, parkIfStopping) : undefined;

function run(): void {
  park(); // vCPUs start stopped; the guest starts them.
  while (Atomics.load(ctrl, QUIT) === 0) {
    const workload = createWorkload(loadWorkloadSpec(slots), { mmu, regs: slots, vcpu: index, smp, nic });
    workload.resumed();
    let sliceStart = performance.now();
    let windowStart = sliceStart;
    let windowPages = 0;
    while (Atomics.load(ctrl, RUN) === 1) {
      const limit = ctrl[vcpuSlot(index, DIRTY_LIMIT)]!;
      let budget = Infinity;
      if (limit > 0) {
        // The window is long enough to allow at least one page.
        const windowMs = Math.max(DIRTY_WINDOW_MS, 1000 / limit);
        const now = performance.now();
        if (now - windowStart >= windowMs) {
          windowStart = now;
          windowPages = 0;
        }
        budget = Math.floor((limit * windowMs) / 1000) - windowPages;
        if (budget < 1) {
          sleep(windowMs - (now - windowStart));
          // What the limit cost this vCPU (query-migrate's dirty-limit-throttle-time-per-round is worked out from it).
          Atomics.add(ctrl, vcpuSlot(index, DIRTY_LIMIT_SLEPT_US), Math.round((performance.now() - now) * 1000));
          continue;
        }
      }
      const stepped = workload.step(sleep, budget);
      windowPages += stepped;
      Atomics.add(ctrl, vcpuSlot(index, WORK), stepped);
      const throttle = ctrl[THROTTLE_PCT]!;
      if (throttle > 0 && performance.now() - sliceStart >= TIMESLICE_MS) {
        sleep((TIMESLICE_MS * throttle) / (100 - throttle));
        workload.resumed();
        sliceStart = performance.now();
      }
    }
    if (Atomics.load(ctrl, QUIT) === 0) park();
  }
}

run();
