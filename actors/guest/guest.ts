import { randomFillSync } from 'node:crypto';
import { EventEmitter } from 'node:events';
import type { Worker } from 'node:worker_threads';
import { startTsWorker } from '../threads/ts-worker.js';
import { checkAb, type AbReport } from './ab-check.js';
import { fillCompressible } from './compressible-fill.js';
import { PAGES_PER_SLAB, TARGET_PAGE_SIZE } from './constants.js';
import {
  ALL_BLOCKED_MS, BLOCKTIME_MS, DIRTY_LIMIT, DIRTY_LIMIT_SLEPT_US, MAX_VCPUS, PARKED, POSTCOPY, QUIT, RUN, THROTTLE_PCT, WORK, WRITE_PROTECT, allocateControl, vcpuSlot,
} from './control.js';
import { CPU_STATE_SLOTS, REG0, REG_COUNT, allocateCpuState, cpuSlots } from './cpu-state.js';
import { DeviceRegistry } from './devices.js';
import { digestBlocks, type BlockDigest } from './digest.js';
import { DirtyRateLog } from './dirty-rate-log.js';
import { FaultLatencyLog, type FaultLatencySummary } from './fault-latency.js';
import { FaultQueue } from './fault-queue.js';
import { Nic, allocateNicRing } from './nic.js';
import { RamBlock } from './ram-block.js';
import { RunStateError, canTransition, isRunState, type RunState } from './run-state.js';
import { VCPU_PREFAULTED, type VcpuStarted, type VcpuWorkerData } from './vcpu-messages.js';
import type { RoleThread } from '../threads/thread-role.js';
import {
  describeWorkload, loadWorkloadSpec, sameWorkload, storeWorkloadSpec, type WorkloadSpec,
} from './workloads/index.js';

export interface GuestConfig {
  /** Bytes of the main RAM block, `pc.ram`. */
  ram: number;
  /** Further RAM blocks (e.g. `vga.vram`). */
  extraBlocks?: { name: string; size: number }[];
  smp: number;
  workload: WorkloadSpec;
  /**
   * False when the workload was not chosen by the user: a destination then
   * takes whatever workload the incoming vCPU state carries.
   */
  workloadExplicit?: boolean;
  uuid?: string;
  /** `running`, `prelaunch` (QEMU's -S) or `inmigrate` (a destination). */
  runState: RunState;
  /** Fill pc.ram at start, as if the guest had written every page (benchmarks). */
  fill?: GuestFill;
}

/**
 * What a guest's pc.ram can be filled with at start: random bytes (which no
 * codec shrinks), or pages that compress like a real guest's
 * (compressible-fill.ts).
 */
export const GUEST_FILLS = ['random', 'compressible'] as const;
export type GuestFill = (typeof GUEST_FILLS)[number];

interface GuestEvents {
  stop: [];
  resume: [];
  runstate: [from: RunState, to: RunState];
  /** A vCPU thread died: the guest cannot run on. */
  error: [err: Error];
}

/**
 * A running guest: RAM blocks in shared memory, `smp` vCPU worker threads
 * running a workload through the MMU, a run state, and its devices.
 *
 * @example
 * const guest = await Guest.create({ ram: 256 << 20, smp: 1, workload: defaultAb(256 << 20), runState: 'running' });
 * await guest.stop();            // returns once every vCPU has parked
 * guest.checkAb().ok === true;
 */
export class Guest extends EventEmitter<GuestEvents> {
  readonly devices = new DeviceRegistry();
  readonly faults: FaultQueue;
  /** The network card's transmit side; the host drains it every NIC_POLL_MS. */
  readonly nic: Nic;
  /** What calc-dirty-rate's dirty-bitmap and dirty-ring modes measure with, apart from the migration's dirty bitmap. */
  readonly dirtyRateLog: DirtyRateLog;
  private readonly nicPoll: NodeJS.Timeout;
  private state: RunState;
  /** The run state the guest had when migration stopped it (QEMU's global_state). */
  private stoppedFrom: RunState | undefined;
  /** The source's run state, once the `globalstate` section has been loaded. */
  incomingRunState: RunState | undefined;
  private destroyed = false;
  /**
   * False while a destination's vCPUs are pre-faulting its RAM (as pages may
   * already land); true once each has done its share or given up (the guest
   * started, or the vCPU ended).
   */
  prefaultDone = true;
  /** Each vCPU's thread, by its OS id (0: the vCPU ended before it said). */
  private vcpuTids: number[] = [];

  private constructor(
    readonly config: GuestConfig,
    readonly blocks: RamBlock[],
    private readonly ctrl: Int32Array,
    private readonly cpuState: Float64Array,
    private readonly vcpus: Worker[],
    private readonly faultLog: FaultLatencyLog,
    nicRing: SharedArrayBuffer,
  ) {
    super();
    this.state = config.runState;
    this.faults = new FaultQueue(ctrl, config.smp);
    this.nic = new Nic(nicRing);
    this.dirtyRateLog = new DirtyRateLog(blocks, ctrl, config.smp);
    this.nicPoll = setInterval(() => this.nic.flush(), NIC_POLL_MS);
    this.nicPoll.unref();
    this.registerBuiltinDevices();
  }

  static async create(config: GuestConfig): Promise<Guest> {
    if (!Number.isInteger(config.smp) || config.smp < 1 || config.smp > MAX_VCPUS) {
      throw new RangeError(`smp must be between 1 and ${MAX_VCPUS}`);
    }
    if (config.ram % TARGET_PAGE_SIZE !== 0) throw new RangeError(`RAM size must be a multiple of ${TARGET_PAGE_SIZE}`);
    validateWorkload(config.workload, config.ram);
    const blocks = [RamBlock.allocate('pc.ram', config.ram)];
    for (const extra of config.extraBlocks ?? []) {
      if (blocks.some((b) => b.name === extra.name)) throw new Error(`RAM block '${extra.name}' is declared twice`);
      blocks.push(RamBlock.allocate(extra.name, extra.size));
    }
    if (config.fill) fillBlock(blocks[0]!, config.fill);
    const ctrl = allocateControl(config.smp);
    const cpuState = allocateCpuState(config.smp);
    const faultLog = new FaultLatencyLog();
    const nicRing = allocateNicRing();
    for (let i = 0; i < config.smp; i++) storeWorkloadSpec(cpuSlots(cpuState, i), config.workload);
    const vcpus: Worker[] = [];
    for (let index = 0; index < config.smp; index++) {
      const data: VcpuWorkerData = {
        index,
        smp: config.smp,
        blocks: blocks.map((b) => b.shared),
        ctrl: ctrl.buffer as SharedArrayBuffer,
        cpuState: cpuState.buffer as SharedArrayBuffer,
        faultLog: faultLog.buffer,
        nic: nicRing,
        prefault: config.runState === 'inmigrate',
      };
      vcpus.push(startTsWorker(new URL('./vcpu-worker.ts', import.meta.url), { workerData: data, name: `vcpu-${index}` }));
    }
    const guest = new Guest(config, blocks, ctrl, cpuState, vcpus, faultLog, nicRing);
    for (const w of vcpus) {
      w.on('error', (err) => guest.emit('error', err));
    }
    const started = Promise.all(vcpus.map(vcpuThreadId)).then((tids) => void (guest.vcpuTids = tids));
    if (config.runState === 'inmigrate') {
      // The parked vCPUs pre-fault RAM, each its share (vcpu-worker.ts).
      guest.prefaultDone = false;
      void Promise.all(vcpus.map(prefaultReported)).then(() => (guest.prefaultDone = true));
    }
    await Promise.all([started, guest.allParked()]);
    if (config.runState === 'running') {
      guest.state = 'prelaunch';
      guest.start();
    }
    return guest;
  }

  get runState(): RunState {
    return this.state;
  }

  get running(): boolean {
    return this.state === 'running';
  }

  get smp(): number {
    return this.config.smp;
  }

  /** Each vCPU's thread (the log names them: threads/thread-role.ts). */
  vcpuThreads(): RoleThread[] {
    return this.vcpuTids.map((tid, index) => ({ index, tid }));
  }

  block(name: string): RamBlock | undefined {
    return this.blocks.find((b) => b.name === name);
  }

  /** The workload vCPU 0 runs now (all vCPUs run the same one). */
  get workload(): WorkloadSpec {
    return loadWorkloadSpec(cpuSlots(this.cpuState, 0));
  }

  /**
   * vm_stop: parks every vCPU between two accesses, then enters `target`
   * (e.g. `paused`, `finish-migrate`). Resolves only once no vCPU can write.
   */
  async stop(target: RunState = 'paused'): Promise<void> {
    this.assertTransition(target);
    const wasRunning = this.state === 'running';
    if (wasRunning) {
      Atomics.store(this.ctrl, RUN, 0);
      Atomics.notify(this.ctrl, RUN);
      await this.allParked();
    }
    this.stoppedFrom = this.state;
    this.changeState(target);
    if (wasRunning) this.emit('stop');
  }

  /** vm_start: enters `running` and releases the vCPUs. */
  start(): void {
    if (this.state === 'running') return;
    this.assertTransition('running');
    this.changeState('running');
    Atomics.store(this.ctrl, RUN, 1);
    Atomics.notify(this.ctrl, RUN);
    this.emit('resume');
  }

  /** A run-state change that neither starts nor stops vCPUs (e.g. finish-migrate → postmigrate). */
  setRunState(target: RunState): void {
    if (target === 'running') return this.start();
    if (this.state === 'running') throw new Error(`use stop() to leave 'running' for '${target}'`);
    this.assertTransition(target);
    this.changeState(target);
  }

  /** The run state migration stopped the guest from (QEMU's vm_was_running). */
  get runStateBeforeStop(): RunState | undefined {
    return this.stoppedFrom;
  }

  /** auto-converge's throttle: each vCPU sleeps `pct`% of its time (10 ms runs, sleeps between them). */
  setThrottle(pct: number): void {
    if (!Number.isInteger(pct) || pct < 0 || pct > 99) throw new RangeError('throttle must be 0..99 percent');
    Atomics.store(this.ctrl, THROTTLE_PCT, pct);
  }

  get throttle(): number {
    return Atomics.load(this.ctrl, THROTTLE_PCT);
  }

  /** Caps the pages/s a vCPU may dirty (0 lifts the cap); all vCPUs when `vcpu` is omitted. */
  setDirtyLimit(pagesPerSecond: number, vcpu?: number): void {
    if (!Number.isInteger(pagesPerSecond) || pagesPerSecond < 0) throw new RangeError('dirty limit must be a whole number of pages/s');
    const targets = vcpu === undefined ? [...Array(this.smp).keys()] : [vcpu];
    for (const v of targets) {
      if (v < 0 || v >= this.smp) throw new RangeError(`no vCPU ${v}`);
      Atomics.store(this.ctrl, vcpuSlot(v, DIRTY_LIMIT), pagesPerSecond);
    }
  }

  /** Destination postcopy mode: every access first waits for its page's received bit. Turning it on starts blocktime afresh. */
  setPostcopy(on: boolean): void {
    if (on) {
      this.faultLog.reset();
      for (const slot of [ALL_BLOCKED_MS, ...Array.from({ length: this.smp }, (_, v) => vcpuSlot(v, BLOCKTIME_MS))]) Atomics.store(this.ctrl, slot, 0);
    }
    Atomics.store(this.ctrl, POSTCOPY, on ? 1 : 0);
  }

  /**
   * Background snapshot: from now on a write to any page waits (a
   * write-protect fault) until unprotect() lets it go on, once the page's
   * contents as of now are saved.
   */
  writeProtectAll(): void {
    for (const block of this.blocks) block.writeProtect.fill(true);
    Atomics.store(this.ctrl, WRITE_PROTECT, 1);
  }

  /** Lets writes to `count` pages of block `block` (the guest's order) from `first` go on, waking vCPUs waiting on them. */
  unprotect(block: number, first: number, count: number): void {
    this.blocks[block]!.writeProtect.clearRange(first, count);
  }

  /** Ends write protection: every page writable again, every waiting vCPU woken. */
  stopWriteProtect(): void {
    Atomics.store(this.ctrl, WRITE_PROTECT, 0);
    for (const block of this.blocks) block.writeProtect.clearRange(0, block.pageCount);
  }

  /**
   * A byte written into pc.ram from outside the vCPUs, as a device's DMA
   * would: the data, then the page's dirty bit (rule 1). Tests use it to
   * make two copies of a guest differ on purpose.
   */
  writeByte(address: number, value: number): void {
    const ram = this.blocks[0]!;
    if (!Number.isSafeInteger(address) || address < 0 || address >= ram.size) throw new RangeError(`address ${address} is outside the ${ram.size}-byte pc.ram`);
    const page = Math.floor(address / TARGET_PAGE_SIZE);
    ram.slabOf(page)[ram.offsetInSlab(page) + (address % TARGET_PAGE_SIZE)] = value & 0xff;
    ram.dirty.set(page);
    ram.touched.set(page);
  }

  /** Pages each vCPU's workload has stepped through so far, mod 2^32 (a difference over a window is its throughput). */
  workDone(): number[] {
    return Array.from({ length: this.smp }, (_, v) => Atomics.load(this.ctrl, vcpuSlot(v, WORK)) >>> 0);
  }

  /** Time each vCPU has slept to keep under its dirty limit, µs mod 2^32 (a difference over a window is what the limit cost it). */
  dirtyLimitSleptUs(): number[] {
    return Array.from({ length: this.smp }, (_, v) => Atomics.load(this.ctrl, vcpuSlot(v, DIRTY_LIMIT_SLEPT_US)) >>> 0);
  }

  /** What another thread needs to take this guest's faults itself (the postcopy-preempt thread). */
  faultQueueShared(): { ctrl: SharedArrayBuffer; smp: number } {
    return { ctrl: this.ctrl.buffer as SharedArrayBuffer, smp: this.smp };
  }

  /** Each postcopy fault's wait since postcopy began: median, 99th percentile and worst (µs). */
  faultLatency(): FaultLatencySummary {
    return this.faultLog.summary();
  }

  /**
   * Postcopy blocktime (QEMU's postcopy-blocktime and postcopy-vcpu-blocktime):
   * how long all vCPUs waited on missing pages at once, and each one in all.
   */
  blocktime(): { total: number; perVcpu: number[] } {
    return {
      total: Atomics.load(this.ctrl, ALL_BLOCKED_MS),
      perVcpu: Array.from({ length: this.smp }, (_, v) => Atomics.load(this.ctrl, vcpuSlot(v, BLOCKTIME_MS))),
    };
  }

  blockers(): string[] {
    return this.devices.blockers();
  }

  digest(): Promise<BlockDigest[]> {
    return digestBlocks(this.blocks);
  }

  /** The `ab` check over the workload's range; the guest must be stopped. */
  checkAb(): AbReport {
    if (this.state === 'running') throw new Error('the ab check needs a stopped guest');
    const spec = this.workload;
    if (spec.kind !== 'ab') throw new Error(`the guest runs workload '${spec.kind}', not 'ab'`);
    return checkAb(this.blocks[0]!, spec.start, spec.end, this.smp);
  }

  /** A vCPU's registers (its workload's progress), for tests and tools. */
  registers(vcpu: number): number[] {
    return Array.from(cpuSlots(this.cpuState, vcpu).subarray(REG0));
  }

  async destroy(): Promise<void> {
    if (this.destroyed) return;
    this.destroyed = true;
    clearInterval(this.nicPoll);
    if (this.state !== 'shutdown') this.changeState('shutdown');
    Atomics.store(this.ctrl, QUIT, 1);
    Atomics.notify(this.ctrl, RUN);
    await Promise.all(this.vcpus.map((w) => w.terminate()));
  }

  private registerBuiltinDevices(): void {
    for (let vcpu = 0; vcpu < this.smp; vcpu++) {
      this.devices.register({
        name: 'cpu',
        instance: vcpu,
        version: 1,
        save: () => {
          const slots = cpuSlots(this.cpuState, vcpu);
          return { workload: loadWorkloadSpec(slots), regs: Array.from(slots.subarray(REG0)) };
        },
        load: (state) => this.loadCpu(vcpu, state),
      });
    }
    this.devices.register({
      name: 'nic',
      instance: 0,
      version: 1,
      // Whatever the ring holds was sent before the stop: it goes out first, so the state saved is after it.
      save: () => {
        this.nic.flush();
        return this.nic.state();
      },
      load: (state) => {
        if (this.state === 'running') throw new Error('NIC state can only be loaded into a stopped guest');
        const s = state as { seq?: unknown; chain?: unknown } | null;
        if (!s || !isU32(s.seq) || !isU32(s.chain)) throw new Error('NIC state is not {seq, chain} (u32 each)');
        this.nic.load({ seq: s.seq, chain: s.chain });
      },
    });
    this.devices.register({
      name: 'globalstate',
      instance: 0,
      version: 1,
      save: () => ({ runstate: this.state === 'finish-migrate' ? this.stoppedFrom ?? this.state : this.state }),
      load: (state) => {
        const runstate = (state as { runstate?: unknown } | null)?.runstate;
        if (!isRunState(runstate)) throw new Error(`globalstate carries an unknown run state ${JSON.stringify(runstate)}`);
        this.incomingRunState = runstate;
      },
    });
  }

  private loadCpu(vcpu: number, state: unknown): void {
    if (this.state === 'running') throw new Error('vCPU state can only be loaded into a stopped guest');
    const s = state as { workload?: WorkloadSpec; regs?: unknown } | null;
    const regs = s?.regs;
    if (!s || typeof s.workload !== 'object' || !Array.isArray(regs) || regs.length !== REG_COUNT ||
        !regs.every((r) => typeof r === 'number')) {
      throw new Error('vCPU state is not {workload, regs[]}');
    }
    const slots = cpuSlots(this.cpuState, vcpu);
    const scratch = new Float64Array(CPU_STATE_SLOTS);
    storeWorkloadSpec(scratch, s.workload);
    const incoming = loadWorkloadSpec(scratch); // throws on an unknown kind
    validateWorkload(incoming, this.config.ram);
    if (this.config.workloadExplicit && !sameWorkload(incoming, this.config.workload)) {
      throw new Error(
        `the source's vCPU ${vcpu} runs workload '${describeWorkload(incoming)}' but this guest was started ` +
          `with --workload '${describeWorkload(this.config.workload)}'`,
      );
    }
    storeWorkloadSpec(slots, incoming);
    slots.set(regs as number[], REG0);
  }

  private async allParked(): Promise<void> {
    for (let v = 0; v < this.smp; v++) {
      const slot = vcpuSlot(v, PARKED);
      while (Atomics.load(this.ctrl, slot) !== 1) {
        const r = Atomics.waitAsync(this.ctrl, slot, 0, 1000);
        if (r.async) await r.value;
      }
    }
  }

  private assertTransition(target: RunState): void {
    if (!canTransition(this.state, target)) throw new RunStateError(this.state, target);
  }

  private changeState(target: RunState): void {
    const from = this.state;
    this.state = target;
    if (from !== target) this.emit('runstate', from, target);
  }
}

/** How often the host takes the packets the guest's NIC sent. */
const NIC_POLL_MS = 5;

function isU32(value: unknown): value is number {
  return typeof value === 'number' && Number.isInteger(value) && value >= 0 && value <= 0xffffffff;
}

/** QEMU's migration-test range: from 1 MiB up to 100 MiB, clamped to the RAM size. */
export function defaultAb(ram: number): WorkloadSpec {
  const end = Math.min(100 << 20, ram);
  const start = Math.min(1 << 20, Math.max(0, end - TARGET_PAGE_SIZE));
  return { kind: 'ab', start, end };
}

function validateWorkload(spec: WorkloadSpec, ram: number): void {
  const range = (start: number, end: number) => {
    if (!(start >= 0 && end <= ram && start < end) || start % TARGET_PAGE_SIZE || end % TARGET_PAGE_SIZE) {
      throw new RangeError(`workload range ${start}..${end} must be page-aligned and inside the ${ram}-byte RAM`);
    }
  };
  if (spec.kind === 'ab') range(spec.start, spec.end);
  if (spec.kind === 'random') {
    range(spec.start, spec.start + spec.workingSet);
    if (!(spec.rate >= 0)) throw new RangeError('random workload rate must be >= 0 pages/s');
  }
}

/**
 * Data in every page of a block, marked written (touched) as a guest write
 * would, so a migration reads and sends them all.
 */
function fillBlock(ram: RamBlock, fill: GuestFill): void {
  const chunk = 16 << 20;
  ram.slabs.forEach((slab, i) => {
    if (fill === 'compressible') fillCompressible(slab, i * PAGES_PER_SLAB);
    else for (let at = 0; at < slab.length; at += chunk) randomFillSync(slab.subarray(at, Math.min(at + chunk, slab.length)));
  });
  ram.touched.fill(true);
}

/** The OS id of vCPU `worker`'s thread, from its first message; 0 if it ended first. */
function vcpuThreadId(worker: Worker): Promise<number> {
  return new Promise((resolve) => {
    const done = (tid: number) => {
      worker.off('message', onMessage);
      worker.off('exit', ended);
      resolve(tid);
    };
    const onMessage = (message: unknown) => {
      if (typeof message === 'object' && message !== null && 'tid' in message) done((message as VcpuStarted).tid);
    };
    const ended = () => done(0);
    worker.on('message', onMessage);
    worker.once('exit', ended);
  });
}

/**
 * Resolves once vCPU `worker` says it has pre-faulted its share of RAM, or
 * has ended without saying so (its error reaches the guest's 'error').
 */
function prefaultReported(worker: Worker): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      worker.off('message', onMessage);
      worker.off('exit', done);
      resolve();
    };
    const onMessage = (message: unknown) => {
      if (message === VCPU_PREFAULTED) done();
    };
    worker.on('message', onMessage);
    worker.once('exit', done);
  });
}
