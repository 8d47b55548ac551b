/**
 * The guest's shared control block: one Int32Array over a SharedArrayBuffer
 * through which the main thread steers its vCPU workers (run/stop, throttle,
 * postcopy and write-protect modes) and vCPUs report parking and faults.
 * Named indexes, as piscina does for its shared counters.
 */
export const RUN = 0; // 1 = vCPUs may run, 0 = stop requested
export const QUIT = 1;
export const THROTTLE_PCT = 2; // auto-converge style CPU throttle, 0..99
export const POSTCOPY = 3; // 1 = destination in postcopy: accesses wait for received pages
export const WRITE_PROTECT = 4; // 1 = some pages may be write-protected (background snapshot)
export const FAULT_SEQ = 5; // bumped on every fault; the fault queue's consumer waits on it
// Postcopy blocktime (QEMU's postcopy-blocktime), times as the low 32 bits of Date.now(): differences stay right across a wrap.
export const BLOCKED_VCPUS = 6; // vCPUs waiting on a postcopy fault right now
export const ALL_BLOCKED_SINCE = 7; // when the last of them began to wait, while all do
export const ALL_BLOCKED_MS = 8; // time all vCPUs waited at once
export const DIRTY_RATE_LOG = 9; // users of the dirty-rate log (dirty-rate-log.ts); the MMU logs into it while > 0

export const VCPU_BASE = 16;
export const VCPU_STRIDE = 16;
export const PARKED = 0; // 1 while the vCPU is parked between two accesses
export const FAULT_STATE = 1; // FAULT_NONE | FAULT_RAISED | FAULT_SEEN
export const FAULT_KIND = 2;
export const FAULT_BLOCK = 3;
export const FAULT_PAGE = 4;
export const DIRTY_LIMIT = 5; // pages/s, 0 = no cap
export const FAULT_COUNT = 6;
export const BLOCKTIME_MS = 7; // time this vCPU waited on postcopy faults
export const WORK = 8; // pages its workload has stepped through, mod 2^32: the guest's throughput, as a benchmark sees it
export const DIRTY_LIMIT_SLEPT_US = 9; // time it slept to keep under DIRTY_LIMIT, µs mod 2^32 (dirty-limit's throttle time)
export const DIRTY_PAGES = 10; // pages whose dirty-rate log bit this vCPU's writes set, mod 2^32 (QEMU's cpu->dirty_pages, from its dirty ring)

export const FAULT_NONE = 0;
export const FAULT_RAISED = 1;
export const FAULT_SEEN = 2;

export const MAX_VCPUS = 255;

export function vcpuSlot(vcpu: number, field: number): number {
  return VCPU_BASE + vcpu * VCPU_STRIDE + field;
}

export function allocateControl(smp: number): Int32Array {
  return new Int32Array(new SharedArrayBuffer((VCPU_BASE + smp * VCPU_STRIDE) * 4));
}
