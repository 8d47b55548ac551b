import { KIND, OPT0 } from '../cpu-state.js';
import { abWorkload } from './ab.js';
import { idleWorkload } from './idle.js';
import { randomWorkload } from './random.js';
import { WORKLOAD_KINDS, type Workload, type WorkloadContext, type WorkloadSpec } from './workload.js';

export * from './workload.js';

/** Writes a workload spec into a vCPU's state slots (kind + options). */
export function storeWorkloadSpec(slots: Float64Array, spec: WorkloadSpec): void {
  slots[KIND] = WORKLOAD_KINDS.indexOf(spec.kind);
  const opts = workloadOptions(spec);
  for (let i = 0; i < opts.length; i++) slots[OPT0 + i] = opts[i]!;
}

export function loadWorkloadSpec(slots: Float64Array): WorkloadSpec {
  const kind = WORKLOAD_KINDS[slots[KIND]!];
  const o = (i: number) => slots[OPT0 + i]!;
  switch (kind) {
    case 'idle':
      return { kind };
    case 'ab':
      return { kind, start: o(0), end: o(1) };
    case 'random':
      return { kind, rate: o(0), start: o(1), workingSet: o(2), seed: o(3) };
    default:
      throw new Error(`vCPU state holds unknown workload kind ${slots[KIND]}`);
  }
}

function workloadOptions(spec: WorkloadSpec): number[] {
  switch (spec.kind) {
    case 'idle':
      return [];
    case 'ab':
      return [spec.start, spec.end];
    case 'random':
      return [spec.rate, spec.start, spec.workingSet, spec.seed];
  }
}

export function createWorkload(spec: WorkloadSpec, ctx: WorkloadContext): Workload {
  switch (spec.kind) {
    case 'idle':
      return idleWorkload();
    case 'ab':
      return abWorkload(ctx, spec.start, spec.end);
    case 'random':
      return randomWorkload(ctx, spec.rate, spec.start, spec.workingSet, spec.seed);
  }
}

/** Two specs describe the same workload (the destination's `--workload` must match the source's). */
export function sameWorkload(a: WorkloadSpec, b: WorkloadSpec): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

export function describeWorkload(spec: WorkloadSpec): string {
  return [spec.kind, ...workloadOptions(spec).map(String)].join(',');
}
