/**
 * The start-to-done table (start-to-done.ts): for each livemig start-to-done
 * scenario, when its destination's monitor answered, when `migrate` was
 * sent and when the migration was done, all from the destination's start,
 * beside QEMU's (whose monitor answers once prealloc=on has allocated its
 * RAM); the ratio is QEMU's start-to-done over livemig's.
 */
import type { ScenarioResult } from './results.js';
import { fixed, verifiedOf } from './table.js';

export const START_TO_DONE_COLUMNS = [
  'scenario', 'monitor answers', 'migrate sent', 'done', 'QEMU: monitor answers', 'QEMU: done', '÷ QEMU', 'verified livemig, QEMU',
] as const;

/** One row per livemig start-to-done scenario, in START_TO_DONE_COLUMNS order (ms from the destination's start); '–' where a side did not run. */
export function startToDoneRows(results: ScenarioResult[]): string[][] {
  const byName = new Map(results.map((r) => [r.name, r]));
  return results.flatMap((r) => {
    const plan = r.config.startToDone as { reference: string } | undefined;
    if (r.family !== 'livemig' || !plan) return [];
    const ours = r.median?.startToDone;
    const ref = byName.get(plan.reference);
    const theirs = ref?.median?.startToDone;
    return [[
      `livemig ${r.name}`,
      fixed(ours?.monitorMs, 0),
      fixed(ours?.migrateMs, 0),
      fixed(ours?.doneMs, 0),
      fixed(theirs?.monitorMs, 0),
      fixed(theirs?.doneMs, 0),
      ours && theirs ? `${(theirs.doneMs / ours.doneMs).toFixed(2)}×` : '–',
      `${verifiedOf(r)}, ${ref ? verifiedOf(ref) : '–'}`,
    ]];
  });
}
