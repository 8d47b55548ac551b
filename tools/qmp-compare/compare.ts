/**
 * The diff of two recordings, QEMU's and livemig's, row by row. Where they
 * differ for a known reason the row says so: QEMU 8.2 (which livemig
 * follows) answers differently from the QEMU 7.2 Debian ships, a feature is
 * not built, or livemig differs on purpose. A known difference that is no
 * longer there is reported too, so the list cannot go stale.
 */
import { isDeepStrictEqual } from 'node:util';
import type { Recording } from './record.js';

export type DifferenceKind = 'qemu-8.2' | 'not-built' | 'deliberate';

interface KnownDifference {
  sequence: string;
  /** The answer's index in the sequence, and its step text (both must match). */
  index: number;
  step: string;
  kind: DifferenceKind;
  why: string;
}

const URIS = 'malformed and unknown migrate URIs';

const AROUND = 'commands around a migration';
const NOT_CHARDEVS = "livemig's monitors are not chardevs, so none is a yank instance (QEMU lists its monitor's, compat_monitor0)";

export const KNOWN_DIFFERENCES: KnownDifference[] = [
  {
    sequence: AROUND, index: 0, step: 'src query-commands', kind: 'not-built',
    why: 'livemig has no getfd, closefd, add-fd, remove-fd, query-fdsets (issue 24) yet (calc-dirty-rate, query-dirty-rate, set-vcpu-dirty-limit, cancel-vcpu-dirty-limit and query-vcpu-dirty-limit it has, as QEMU); it has QEMU 8.2\'s query-migrationthreads, which 7.2 lacks',
  },
  { sequence: AROUND, index: 1, step: 'src query-yank', kind: 'deliberate', why: NOT_CHARDEVS },
  { sequence: AROUND, index: 2, step: 'src query-migrationthreads', kind: 'qemu-8.2', why: 'QEMU 8.2 has query-migrationthreads (an empty list when no migration runs); 7.2 does not' },
  { sequence: AROUND, index: 8, step: 'dst query-yank', kind: 'deliberate', why: NOT_CHARDEVS },
  { sequence: 'idle queries', index: 2, step: 'src query-migrate-capabilities', kind: 'qemu-8.2', why: "QEMU 8.2 adds the capabilities 'switchover-ack' and 'dirty-limit'" },
  {
    sequence: 'idle queries', index: 3, step: 'src query-migrate-parameters', kind: 'qemu-8.2',
    why: "QEMU 8.2 adds the parameters 'avail-switchover-bandwidth', 'mode', 'vcpu-dirty-limit' and 'x-vcpu-dirty-limit-period'",
  },
  { sequence: URIS, index: 13, step: 'src query-migrate', kind: 'qemu-8.2', why: "QEMU 8.2 keeps why an unknown protocol failed in error-desc (7.2 leaves it out)" },
  { sequence: URIS, index: 14, step: 'src migrate {"uri":"rdma:127.0.0.1:4444"}', kind: 'not-built', why: 'livemig has no rdma: transport' },
  { sequence: URIS, index: 15, step: 'src query-migrate', kind: 'not-built', why: 'livemig has no rdma: transport' },
  { sequence: URIS, index: 16, step: 'src migrate {"uri":"exec:"}', kind: 'deliberate', why: "livemig refuses an empty exec: command at once; QEMU runs sh -c '' and fails on its first write" },
  { sequence: URIS, index: 17, step: 'src query-migrate', kind: 'deliberate', why: 'the same empty exec: command' },
  {
    sequence: 'postcopy and recovery commands with no migration', index: 1, step: 'src migrate-pause', kind: 'deliberate',
    why: 'livemig also pauses a recovery that hangs (postcopy-recover), as QEMU 9.0 does, and says so as QEMU 9.0 does',
  },
  { sequence: 'postcopy and recovery commands with no migration', index: 2, step: 'dst migrate-pause', kind: 'deliberate', why: 'the same' },
  {
    sequence: 'incoming: listen, the address, a second migrate-incoming', index: 4, step: 'dst migrate-set-capabilities {"capabilities":[{"capability":"multifd","state":true}]}',
    kind: 'qemu-8.2', why: 'QEMU 8.2 refuses multifd once incoming has started (its migrate_caps_check); 7.2 took it',
  },
];

export interface Row {
  sequence: string;
  step: string;
  qemu: unknown;
  livemig: unknown;
  verdict: 'same' | 'known' | 'differs' | 'stale';
  kind?: DifferenceKind;
  why?: string;
}

export function compare(qemu: Recording, livemig: Recording): Row[] {
  const rows: Row[] = [];
  for (const q of qemu.sequences) {
    const l = livemig.sequences.find((s) => s.name === q.name);
    if (!l) throw new Error(`livemig's recording has no sequence '${q.name}'`);
    q.answers.forEach((answer, index) => {
      const other = l.answers[index];
      if (other?.step !== answer.step) throw new Error(`'${q.name}' step ${index}: QEMU ran '${answer.step}', livemig '${other?.step}'`);
      const known = KNOWN_DIFFERENCES.find((k) => k.sequence === q.name && k.index === index && k.step === answer.step);
      const same = isDeepStrictEqual(answer.answer, other.answer);
      const verdict = same ? (known ? 'stale' : 'same') : known ? 'known' : 'differs';
      rows.push({ sequence: q.name, step: answer.step, qemu: answer.answer, livemig: other.answer, verdict, ...(known ? { kind: known.kind, why: known.why } : {}) });
    });
    for (const side of ['src', 'dst'] as const) {
      const same = isDeepStrictEqual(q.events[side], l.events[side]);
      rows.push({ sequence: q.name, step: `${side} MIGRATION events`, qemu: q.events[side], livemig: l.events[side], verdict: same ? 'same' : 'differs' });
    }
  }
  return rows;
}

/** The rows that are not the same, as text for a person. */
export function describeRows(rows: Row[]): string {
  const lines: string[] = [];
  for (const row of rows.filter((r) => r.verdict !== 'same')) {
    lines.push(`[${row.verdict}${row.kind ? `: ${row.kind}` : ''}] ${row.sequence} — ${row.step}`);
    if (row.why) lines.push(`    why: ${row.why}${row.verdict === 'stale' ? ' (no longer differs: remove it from KNOWN_DIFFERENCES)' : ''}`);
    lines.push(`    QEMU:    ${JSON.stringify(row.qemu)}`, `    livemig: ${JSON.stringify(row.livemig)}`);
  }
  const count = (v: Row['verdict']) => rows.filter((r) => r.verdict === v).length;
  lines.push(`${count('same')} same, ${count('known')} known differences, ${count('differs')} unexplained, ${count('stale')} stale`);
  return lines.join('\n');
}
