/**
 * Each vCPU's architectural state lives in shared memory, like registers:
 * the workload it runs, its options and its progress. The worker reads and
 * updates it in place, so with the guest stopped the main thread can save it
 * (and load it on a destination) without asking the worker anything.
 *
 * Layout per vCPU: CPU_STATE_SLOTS float64 slots.
 */
export const CPU_STATE_SLOTS = 16;
export const KIND = 0;
export const OPT0 = 1; // workload options: OPT0..OPT0+OPT_COUNT-1
export const OPT_COUNT = 5;
export const REG0 = 6; // workload registers: REG0..CPU_STATE_SLOTS-1
export const REG_COUNT = CPU_STATE_SLOTS - REG0;

export function allocateCpuState(smp: number): Float64Array {
  return new Float64Array(new SharedArrayBuffer(smp * CPU_STATE_SLOTS * 8));
}

/** One vCPU's slots, as a view. */
export function cpuSlots(state: Float64Array, vcpu: number): Float64Array {
  return state.subarray(vcpu * CPU_STATE_SLOTS, (vcpu + 1) * CPU_STATE_SLOTS);
}
