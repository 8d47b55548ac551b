import type { RamBlockShared } from './ram-block.js';

/** What a vCPU worker is started with (workerData). */
export interface VcpuWorkerData {
  index: number;
  smp: number;
  blocks: RamBlockShared[];
  ctrl: SharedArrayBuffer;
  cpuState: SharedArrayBuffer;
  /** FaultLatencyLog's buffer: each postcopy fault's wait goes there. */
  faultLog: SharedArrayBuffer;
  /** The NIC's transmit ring (nic.ts); only vCPU 0 sends. */
  nic: SharedArrayBuffer;
  /** A destination's vCPUs pre-fault guest RAM while parked, each its share; each posts VCPU_PREFAULTED when done. */
  prefault: boolean;
}

/** A vCPU's first message: its thread's OS id. */
export interface VcpuStarted {
  tid: number;
}

/** A vCPU's message once it has pre-faulted its share of RAM (or given up on it because the guest started). */
export const VCPU_PREFAULTED = 'prefaulted';
