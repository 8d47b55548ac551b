/**
 * The guest's own speed, from livemig's `__org.livemig_query-guest`: each
 * vCPU's `vcpu-work` counts the pages its workload has stepped through
 * (mod 2^32), so pages over a window of host time is what the guest got
 * done, whatever the migration did to it.
 */
import type { QmpClient } from '../../protocols/qmp/client.js';
import { EXTENSION_PREFIX } from '../../protocols/qmp/livemig-extensions.js';
import { waitUntil } from './wait-until.js';

/** The first lap faults in every page of the host's memory, far slower than the laps after it. */
const FIRST_LAP_TIMEOUT_MS = 60_000;

/** Every vCPU's counter at one moment. */
export interface WorkReading {
  /** performance.now() when the answer came: the counters are read as the command runs, and it answers at once. */
  at: number;
  work: number[];
}

export async function readWork(qmp: QmpClient): Promise<WorkReading> {
  const guest = await qmp.execute<{ 'vcpu-work': number[] }>(`${EXTENSION_PREFIX}query-guest`);
  return { at: performance.now(), work: guest['vcpu-work'] };
}

/** Pages all vCPUs stepped through from `a` to `b`; each counter wraps at 2^32, so no window may hold 2^32 pages of one vCPU. */
export function pagesBetween(a: WorkReading, b: WorkReading): number {
  return a.work.reduce((sum, before, vcpu) => sum + ((b.work[vcpu]! - before) >>> 0), 0);
}

/** Pages per second from `a` to `b`. */
function pagesPerSecond(a: WorkReading, b: WorkReading): number {
  return pagesBetween(a, b) / ((b.at - a.at) / 1000);
}

/** The guest's throughput over `windowMs`, pages/s summed over its vCPUs. */
export async function measureThroughput(qmp: QmpClient, windowMs: number): Promise<number> {
  const start = await readWork(qmp);
  await new Promise((r) => setTimeout(r, windowMs));
  return pagesPerSecond(start, await readWork(qmp));
}

/** Waits until every vCPU has been once over its share of the `pages` its workload runs over, so the throughput measured next is the steady one. */
export async function firstLap(qmp: QmpClient, pages: number): Promise<void> {
  await waitUntil(FIRST_LAP_TIMEOUT_MS, "the guest's first lap over its range", async () => {
    const { work } = await readWork(qmp);
    return work.every((done) => done >= Math.floor(pages / work.length));
  });
}
