import {
  FAULT_BLOCK, FAULT_KIND, FAULT_PAGE, FAULT_RAISED, FAULT_SEEN, FAULT_SEQ, FAULT_STATE, vcpuSlot,
} from './control.js';

export type FaultKind = 'read' | 'write' | 'write-protect';
export const FAULT_KINDS: readonly FaultKind[] = ['read', 'write', 'write-protect'];

export interface Fault {
  vcpu: number;
  kind: FaultKind;
  block: number;
  page: number;
}

/**
 * The consumer end of the guest's fault queue. A vCPU blocks on at most one
 * fault at a time, so the queue is one slot per vCPU in the shared control
 * block; `drain` hands out each raised fault once. Postcopy turns them into
 * page requests, background snapshot into "save this page first".
 *
 * The vCPU stays blocked until the page is handled: for a missing page, until
 * its received bit is set; for a write-protect fault, until its bit is cleared.
 */
export class FaultQueue {
  private seenSeq = 0;

  constructor(private readonly ctrl: Int32Array, private readonly smp: number) {}

  /** Every fault raised since the last drain (each reported once). */
  drain(): Fault[] {
    this.seenSeq = Atomics.load(this.ctrl, FAULT_SEQ);
    const out: Fault[] = [];
    for (let vcpu = 0; vcpu < this.smp; vcpu++) {
      const state = vcpuSlot(vcpu, FAULT_STATE);
      // The vCPU wrote kind/block/page before raising, and will not touch
      // them again until the fault is resolved.
      if (Atomics.compareExchange(this.ctrl, state, FAULT_RAISED, FAULT_SEEN) !== FAULT_RAISED) continue;
      out.push({
        vcpu,
        kind: FAULT_KINDS[Atomics.load(this.ctrl, vcpuSlot(vcpu, FAULT_KIND))]!,
        block: Atomics.load(this.ctrl, vcpuSlot(vcpu, FAULT_BLOCK)),
        page: Atomics.load(this.ctrl, vcpuSlot(vcpu, FAULT_PAGE)),
      });
    }
    return out;
  }

  /** Whether a fault was raised since the last drain: one atomic read, cheap enough for a hot loop. */
  pending(): boolean {
    return Atomics.load(this.ctrl, FAULT_SEQ) !== this.seenSeq;
  }

  /** Resolves when a fault may be waiting (or after timeoutMs). */
  async wait(timeoutMs: number): Promise<void> {
    const result = Atomics.waitAsync(this.ctrl, FAULT_SEQ, this.seenSeq, timeoutMs);
    if (result.async) await result.value;
  }

  /**
   * Hands every fault already drained but not resolved out again (postcopy
   * recovery: the requests made for them may have died with the link), and
   * wakes whoever waits for faults.
   */
  reraise(): void {
    for (let vcpu = 0; vcpu < this.smp; vcpu++) Atomics.compareExchange(this.ctrl, vcpuSlot(vcpu, FAULT_STATE), FAULT_SEEN, FAULT_RAISED);
    Atomics.add(this.ctrl, FAULT_SEQ, 1);
    Atomics.notify(this.ctrl, FAULT_SEQ);
  }

  /** Faults currently outstanding (raised or seen, not yet resolved). */
  outstanding(): number {
    let n = 0;
    for (let vcpu = 0; vcpu < this.smp; vcpu++) if (Atomics.load(this.ctrl, vcpuSlot(vcpu, FAULT_STATE)) !== 0) n++;
    return n;
  }
}
