/**
 * The migration thread's wait for a CPU (cpu-wait.ts), read from the
 * kernel's schedstat while real threads contend for the cores.
 */
import { expect } from 'chai';
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { CpuWait } from '../actors/outgoing/cpu-wait.js';

/** Spins this thread for `ms`, as a migration thread sending pages does. */
function spin(ms: number): void {
  const end = performance.now() + ms;
  while (performance.now() < end);
}

/** Threads that spin for `ms` each, like a running guest's vCPUs. */
function spinners(count: number, ms: number): Worker[] {
  const code = `const end = performance.now() + ${ms}; while (performance.now() < end);`;
  return Array.from({ length: count }, () => new Worker(code, { eval: true }));
}

describe('the migration thread\'s wait for a CPU', () => {
  it('with twice as many spinning threads as cores, the thread runs well under its wall time', async function () {
    this.timeout(10_000);
    const workers = spinners(2 * availableParallelism(), 2000);
    try {
      await Promise.all(workers.map((w) => new Promise((resolve) => w.once('online', resolve))));
      const wait = new CpuWait();
      wait.sample(false);
      spin(300);
      wait.sample(true);
      // About cores / (2 × cores + 1) of the time on a CPU: under half.
      expect(wait.runShare()).to.be.below(0.8);
    } finally {
      await Promise.all(workers.map((w) => w.terminate()));
    }
  });

  it('the syncs before the first dirty pass only mark where the first sample starts', () => {
    const wait = new CpuWait();
    wait.sample(false);
    spin(20);
    wait.sample(false);
    expect(wait.runShare()).to.equal(1);
  });

  it('without schedstat the share stays 1 (nothing shrinks the estimate) and nothing throws', () => {
    const wait = new CpuWait('/proc/thread-self/no-such-schedstat');
    wait.sample(false);
    spin(20);
    wait.sample(true);
    expect(wait.runShare()).to.equal(1);
  });
});
