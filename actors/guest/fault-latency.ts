/**
 * How long each postcopy fault kept its vCPU waiting, for the benchmark's
 * page-fault latency: a ring of the last FAULT_LOG_SIZE waits (µs), written
 * by the vCPU threads (each times its own wait with performance.now()) and
 * summarised by the main thread.
 */

export const FAULT_LOG_SIZE = 1 << 16;

export interface FaultLatencySummary {
  /** Faults timed since postcopy began (the summary covers the last FAULT_LOG_SIZE of them). */
  count: number;
  p50: number;
  p99: number;
  max: number;
}

export class FaultLatencyLog {
  private readonly head: Int32Array;
  private readonly values: Float64Array;

  constructor(readonly buffer = new SharedArrayBuffer(8 + FAULT_LOG_SIZE * 8)) {
    this.head = new Int32Array(buffer, 0, 1);
    this.values = new Float64Array(buffer, 8, FAULT_LOG_SIZE);
  }

  /** One fault's wait, in µs (vCPU threads). */
  record(us: number): void {
    this.values[Atomics.add(this.head, 0, 1) & (FAULT_LOG_SIZE - 1)] = us;
  }

  reset(): void {
    Atomics.store(this.head, 0, 0);
  }

  summary(): FaultLatencySummary {
    const count = Atomics.load(this.head, 0);
    const kept = Float64Array.from(this.values.subarray(0, Math.min(count, FAULT_LOG_SIZE))).sort();
    const at = (q: number) => (kept.length === 0 ? 0 : Math.round(kept[Math.min(kept.length - 1, Math.floor(q * kept.length))]!));
    return { count, p50: at(0.5), p99: at(0.99), max: at(1) };
  }
}
