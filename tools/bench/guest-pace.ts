/**
 * How fast a running guest dirties, asked the same way of both engines
 * before a convergence run: calc-dirty-rate (page-sampling, one second: the
 * mode QEMU offers under TCG) for the distinct pages dirtied, and the
 * guest's own count of page writes over the same window.
 */
import type { QmpClient } from '../../protocols/qmp/client.js';
import type { GuestPace } from './convergence-plan.js';
import { waitUntil } from './wait-until.js';

/** QEMU's most (per GiB of guest RAM): a 256 MiB guest still gets 1024 sampled pages. */
const SAMPLE_PAGES = 4096;
/** A one-second measurement, on a busy machine. */
const MEASURE_TIMEOUT_MS = 10_000;

/**
 * A guest's running count of its work, 32 bits wide and wrapping (livemig's
 * vcpu-work, the boot sector's pass counter), and the page writes one unit
 * of it stands for.
 */
export interface WorkCounter {
  read(): Promise<number>;
  pagesPerCount: number;
}

/** Page writes between two readings of a counter (it may have wrapped once). */
function pagesBetween(counter: WorkCounter, before: number, after: number): number {
  return ((after - before) >>> 0) * counter.pagesPerCount;
}

export async function measureGuestPace(qmp: QmpClient, counter: WorkCounter): Promise<GuestPace> {
  const before = await counter.read();
  const startedAt = performance.now();
  await qmp.execute('calc-dirty-rate', { 'calc-time': 1, 'sample-pages': SAMPLE_PAGES, mode: 'page-sampling' });
  let answer: Record<string, unknown> = {};
  await waitUntil(MEASURE_TIMEOUT_MS, 'calc-dirty-rate to measure', async () => {
    answer = await qmp.execute<Record<string, unknown>>('query-dirty-rate');
    return answer.status === 'measured';
  });
  const after = await counter.read();
  const seconds = (performance.now() - startedAt) / 1000;
  return { pagesPerSecond: Math.round(pagesBetween(counter, before, after) / seconds), dirtyRateMBps: Number(answer['dirty-rate'] ?? 0) };
}

/** The guest's page writes per second from now until `stop` (over a migration: what the lever and the machine left it). */
export async function watchGuestPace(counter: WorkCounter): Promise<{ stop(): Promise<number> }> {
  const before = await counter.read();
  const startedAt = performance.now();
  return {
    async stop() {
      const after = await counter.read();
      return Math.round(pagesBetween(counter, before, after) / ((performance.now() - startedAt) / 1000));
    },
  };
}
