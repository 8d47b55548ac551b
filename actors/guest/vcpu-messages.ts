import type { RamBlockShared } from './ram-block.js';

/** What a vCPU worker is started with (workerData). */
export interface VcpuWorkerData {
  index: number;
  smp: number;
  blocks: RamBlockShared[];
  ctrl: SharedArrayBuffer;
  cpuState: SharedArrayBuffer;
}
