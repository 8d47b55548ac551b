/**
 * The COLO pair the bench drives (scenarios.ts's ColoPlan): where the
 * secondary listens, the primary's checkpoint figures, and one
 * x-checkpoint-delay measured over a window of whole cycles of running and
 * checkpointing, with the primary guest's speed over the same window.
 */
import type { QmpClient } from '../../protocols/qmp/client.js';
import { EXTENSION_PREFIX } from '../../protocols/qmp/livemig-extensions.js';
import { pagesBetween, readWork } from './guest-throughput.js';
import type { ColoCheckpoint, ColoDelayMetrics, ColoMetrics } from './results.js';
import { median } from './median.js';
import type { ColoPlan } from './scenarios.js';
import { waitUntil } from './wait-until.js';

/** Beyond the delays themselves: a checkpoint of ~100 MiB on a busy machine. */
const CHECKPOINT_GRACE_MS = 30_000;

/** The primary's `__org.livemig_query-colo`, as far as the bench reads it. */
export interface ColoQuery {
  checkpoints: number;
  'last-checkpoint'?: { id: number; reason: string; ms: number; 'downtime-ms': number; pages: number; bytes: number };
  compare?: ColoMetrics['compare'];
}

export function queryColo(qmp: QmpClient): Promise<ColoQuery> {
  return qmp.execute<ColoQuery>(`${EXTENSION_PREFIX}query-colo`);
}

/**
 * Sets x-checkpoint-delay on the primary, which (as in QEMU) takes a
 * checkpoint at once, and measures from that checkpoint's end: query-colo
 * polled every ~50 ms (each new last-checkpoint is a checkpoint's figures;
 * --colo-digests would announce each, but lengthens them), until a
 * checkpoint's end gives a window of at least the plan's checkpoints and
 * time. Both ends are seen by a poll, so both lag their checkpoint alike.
 * The guest's work is read at the two ends only: no vCPU steps 2^32 pages
 * in one window.
 */
export async function measureDelay(qmp: QmpClient, delayMs: number, plan: ColoPlan): Promise<ColoDelayMetrics> {
  const lastId = (q: ColoQuery) => q['last-checkpoint']?.id ?? 0;
  const before = lastId(await queryColo(qmp));
  await qmp.execute('migrate-set-parameters', { 'x-checkpoint-delay': delayMs });
  let start!: ColoQuery;
  await waitUntil(delayMs + CHECKPOINT_GRACE_MS, `the checkpoint x-checkpoint-delay=${delayMs} takes at once`, async () => {
    start = await queryColo(qmp);
    return lastId(start) > before && start['last-checkpoint']!.reason === 'request';
  });
  const from = await readWork(qmp);
  const sampled: ColoCheckpoint[] = [];
  let now = start;
  const expectedMs = Math.max(plan.minWindowMs, plan.minCheckpoints * delayMs);
  await waitUntil(2 * expectedMs + CHECKPOINT_GRACE_MS, `${plan.minCheckpoints} checkpoints at x-checkpoint-delay=${delayMs}`, async () => {
    const q = await queryColo(qmp);
    const fresh = lastId(q) > lastId(now);
    now = q;
    if (!fresh) return false;
    const c = q['last-checkpoint']!;
    sampled.push({ id: c.id, reason: c.reason, ms: c.ms, downtimeMs: c['downtime-ms'], pages: c.pages, bytes: c.bytes });
    return q.checkpoints - start.checkpoints >= plan.minCheckpoints && performance.now() - from.at >= plan.minWindowMs;
  });
  const to = await readWork(qmp);
  const windowMs = to.at - from.at;
  return {
    delayMs,
    windowMs,
    checkpoints: now.checkpoints - start.checkpoints,
    checkpointMs: median(sampled.map((c) => c.ms)),
    downtimeMs: median(sampled.map((c) => c.downtimeMs)),
    pages: median(sampled.map((c) => c.pages)),
    guestPagesPerSecond: pagesBetween(from, to) / (windowMs / 1000),
    sampled,
  };
}
