/**
 * The migration thread's wait for a CPU (cpu-wait.ts): its arithmetic on a
 * schedstat file written here, and the kernel's own schedstat while real
 * threads contend for the cores.
 */
import { expect } from 'chai';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { CpuWait } from '../actors/outgoing/cpu-wait.js';

/** A schedstat file and a clock this test sets. */
function scripted(): { wait: CpuWait; at: (ms: number, runNs: number, waitNs: number) => void; done: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'cpu-wait-'));
  const path = join(dir, 'schedstat');
  let now = 0;
  return {
    wait: new CpuWait(path, () => now),
    at: (ms, runNs, waitNs) => {
      now = ms;
      writeFileSync(path, `${runNs} ${waitNs} 7\n`);
    },
    done: () => rmSync(dir, { recursive: true, force: true }),
  };
}

const MS = 1e6;

describe('the migration thread\'s wait for a CPU', () => {
  it('the share is the wall time not spent waiting on a run queue (the second field), over the samples kept', () => {
    const { wait, at, done } = scripted();
    try {
      at(0, 0, 0);
      wait.sample(false);
      // 100 ms: 30 ms run, 50 ms waited (the rest idle).
      at(100, 30 * MS, 50 * MS);
      wait.sample(true);
      expect(wait.shareNotWaiting()).to.be.closeTo(0.5, 1e-9);
      // 50 ms more without a wait: 150 ms, 50 waited.
      at(150, 70 * MS, 50 * MS);
      wait.sample(true);
      expect(wait.shareNotWaiting()).to.be.closeTo(100 / 150, 1e-9);
    } finally {
      done();
    }
  });

  it('keeps the newest samples that cover 200 ms, and drops the older ones', () => {
    const { wait, at, done } = scripted();
    try {
      at(0, 0, 0);
      wait.sample(false);
      at(100, 0, 90 * MS); // 100 ms, 90 waited
      wait.sample(true);
      at(250, 0, 90 * MS); // 150 ms, none waited: with the first, 250 ms
      wait.sample(true);
      expect(wait.shareNotWaiting(), 'both samples: 160 of 250 ms').to.be.closeTo(160 / 250, 1e-9);
      at(310, 0, 90 * MS); // 60 ms more: the newest two cover 210 ms, so the first goes
      wait.sample(true);
      expect(wait.shareNotWaiting()).to.equal(1);
    } finally {
      done();
    }
  });

  it('the syncs before the first dirty pass only mark where the first sample starts', () => {
    const { wait, at, done } = scripted();
    try {
      at(0, 0, 0);
      wait.sample(false);
      at(100, 0, 80 * MS);
      wait.sample(false);
      expect(wait.shareNotWaiting(), 'nothing kept').to.equal(1);
      at(200, 0, 100 * MS);
      wait.sample(true);
      expect(wait.shareNotWaiting(), 'from the last mark: 20 of 100 ms waited').to.be.closeTo(0.8, 1e-9);
    } finally {
      done();
    }
  });

  it('without schedstat the share stays 1 (nothing shrinks the estimate) and nothing throws', () => {
    const wait = new CpuWait('/proc/thread-self/no-such-schedstat');
    wait.sample(false);
    wait.sample(true);
    expect(wait.shareNotWaiting()).to.equal(1);
  });

  it('with twice as many spinning threads as cores, the kernel\'s schedstat shows the thread waiting', async function () {
    if (!existsSync('/proc/thread-self/schedstat')) this.skip();
    this.timeout(20_000);
    // The spinners spin until told to stop, so every one is on the cores while this thread is measured.
    const stop = new Int32Array(new SharedArrayBuffer(4));
    const code = 'const { parentPort, workerData } = require("node:worker_threads"); const stop = new Int32Array(workerData);'
      + ' parentPort.postMessage("spinning"); while (Atomics.load(stop, 0) === 0);';
    const workers = Array.from({ length: 2 * availableParallelism() }, () => new Worker(code, { eval: true, workerData: stop.buffer, execArgv: [] }));
    try {
      await Promise.all(workers.map((w) => new Promise((resolve) => w.once('message', resolve))));
      const wait = new CpuWait();
      wait.sample(false);
      const end = performance.now() + 300;
      while (performance.now() < end);
      wait.sample(true);
      // About cores / (2 × cores + 1) of the time on a CPU, the rest waiting.
      expect(wait.shareNotWaiting()).to.be.below(0.8);
    } finally {
      Atomics.store(stop, 0, 1);
      await Promise.all(workers.map((w) => w.terminate()));
    }
  });
});
