/**
 * The background snapshot the bench takes (scenarios.ts's SnapshotSink):
 * the sink's URI, the snapshot followed to its end with the guest's work
 * read at its start and at its end, and the figure only the source's log
 * gives.
 */
import { fileURLToPath } from 'node:url';
import type { QmpClient } from '../../protocols/qmp/client.js';
import type { QmpEvent } from '../../protocols/qmp/types.js';
import { pagesBetween, readWork, type WorkReading } from './guest-throughput.js';
import { toSample } from './migration-sampler.js';
import type { Sample } from './results.js';
import type { SnapshotSink } from './scenarios.js';

const THROTTLED_SINK = fileURLToPath(new URL('./throttled-sink.mjs', import.meta.url));
/** As often as the migration sampler asks. */
const SAMPLE_EVERY_MS = 50;
const FINAL = ['completed', 'failed', 'cancelled'];

/** Where `migrate` writes the snapshot for `sink`: the file itself, or a slow reader that writes it. */
export function sinkUri(sink: SnapshotSink, file: string): string {
  switch (sink.kind) {
    case 'file':
      return `file:${file}`;
    case 'exec':
      return `exec:'${process.execPath}' '${THROTTLED_SINK}' ${sink.bytesPerSecond} '${file}'`;
  }
}

export interface FollowedSnapshot {
  /** The source's last query-migrate (completed, failed or cancelled). */
  final: Record<string, unknown>;
  series: Sample[];
  /** The guest's pages/s from just before `migrate` to the snapshot's end; unset without the MIGRATION event that marks it. */
  guestPagesPerSecond?: number;
}

/**
 * Sends `migrate` to `uri` (the `events` capability on) and follows the
 * snapshot to its end, sampling query-migrate every ~50 ms. The guest's
 * work is read just before `migrate` and as soon as the MIGRATION event
 * says the snapshot ended: the last moments, when every page is saved and
 * the guest runs free, count as long as they last, not as a poll happens
 * to fall. Readings in between only keep each counter from wrapping
 * unseen.
 */
export async function followSnapshot(qmp: QmpClient, uri: string): Promise<FollowedSnapshot> {
  // Undefined if the monitor closed under it: no figure, rather than an unhandled rejection.
  let atEnd: Promise<WorkReading | undefined> | undefined;
  const onMigration = (event: QmpEvent) => {
    if (FINAL.includes(String(event.data?.status))) atEnd ??= readWork(qmp).catch(() => undefined);
  };
  qmp.events.on('MIGRATION', onMigration);
  try {
    const start = await readWork(qmp);
    await qmp.execute('migrate', { uri });
    const series: Sample[] = [];
    let last = start;
    let pages = 0;
    for (;;) {
      const tickAt = Date.now();
      // Asked before the end's reading, so answered before it (QMP answers in order).
      if (!atEnd) {
        const reading = await readWork(qmp);
        pages += pagesBetween(last, reading);
        last = reading;
      }
      const info = await qmp.execute<Record<string, unknown>>('query-migrate');
      if (FINAL.includes(String(info.status))) {
        // The monitor sent the event before this answer.
        const end = await atEnd;
        const during = end ? { guestPagesPerSecond: (pages + pagesBetween(last, end)) / ((end.at - start.at) / 1000) } : {};
        return { final: info, series, ...during };
      }
      const sample = toSample(info);
      if (sample) series.push(sample);
      await new Promise((r) => setTimeout(r, Math.max(0, SAMPLE_EVERY_MS - (Date.now() - tickAt))));
    }
  } finally {
    qmp.events.off('MIGRATION', onMigration);
  }
}

/** The source's "background snapshot written" log line, once it is there: pages written ahead of the pass for the guest's writes. */
export function faultedPages(sourceLog: string): number | undefined {
  for (const line of sourceLog.split('\n')) {
    if (!line.includes('"background snapshot written"')) continue;
    const entry = JSON.parse(line) as { faultedPages?: unknown };
    if (typeof entry.faultedPages === 'number') return entry.faultedPages;
  }
  return undefined;
}
