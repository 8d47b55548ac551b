/**
 * The downtime sweep (issue 20's "Downtime" goal): guests that keep
 * dirtying, migrated at downtime-limit 30, 100 and 300 ms, to see whether
 * the downtime keeps to the limit and whether expected-downtime foretold
 * it (downtime-table.ts). livemig: `random` guests at three dirty rates and
 * `ab`; QEMU (TCG): the dirtying boot sector of qemu-dirty-guest/, the
 * reference of the livemig points at its limit, so that a round runs each
 * limit's points side by side (round-plan.ts). `--scenario downtime`
 * selects them.
 *
 * The scenarios are typed where scenarios.ts spreads them: importing its
 * types here would make an import cycle.
 */
import type { ConvergencePlan } from './convergence-plan.js';
import { UNLIMITED_BANDWIDTH } from './unlimited-bandwidth.js';

/** A livemig point of the sweep: the QEMU scenario at its limit, and the bound past which it is cancelled and failed. */
export interface DowntimeSweepPoint {
  reference: string;
  boundMs: number;
}

const MiB = 1 << 20;

export const DOWNTIME_LIMITS_MS = [30, 100, 300] as const;

/** Both engines' guest: small, so a round of the sweep stays within a few minutes. */
export const DOWNTIME_RAM = 256 * MiB;

/** The `random` guests' working set: half of RAM. */
export const DOWNTIME_WORKING_SET = 128 * MiB;

/**
 * Pages dirtied per second, from light to a third of what loopback carries
 * on a quiet machine here (~600,000 pages/s): at the heaviest, a pass over
 * the working set leaves much of it dirty again.
 */
export const DOWNTIME_DIRTY_RATES = [25_000, 100_000, 250_000] as const;

/**
 * `ab` writes its whole range between two syncs, whatever the pass: it
 * converges after its first pass if the range fits in bandwidth × limit,
 * never otherwise. Its range is a third of 1 GB/s × the limit (a loaded
 * machine's speed, a third of a quiet one's), so it converges, with a
 * downtime well inside the limit.
 */
function abRange(limitMs: number): { start: number; end: number } {
  const bytes = Math.floor((1e9 * limitMs) / 1000 / 3 / MiB) * MiB;
  return { start: MiB, end: MiB + bytes };
}

/*
 * QEMU's guest dirties all of [1 MiB, 100 MiB) between two syncs (its range
 * is fixed in the boot sector): it converges only if bandwidth × limit
 * exceeds 99 MiB: at 300 ms from 330 MB/s, at 100 ms from 1 GB/s, at 30 ms
 * only on a link faster than 3.3 GB/s, which QEMU under TCG does not reach
 * here (it then runs to the bound and is cancelled).
 */

/** Past this a run is cancelled: a converging point takes a few seconds. */
export const DOWNTIME_BOUND_MS = 20_000;

const mib = (bytes: number) => `${bytes / MiB}M`;

/** The sweep, each limit's QEMU scenario beside its livemig points, the engine going first alternating from limit to limit. */
export function downtimeScenarios() {
  // Unlimited max-bandwidth on both engines: the stop-and-copy is never rate-limited, so only with precopy at the same
  // speed can expected-downtime (pending ÷ the bandwidth precopy measured, for livemig less the CPU waits the stopped
  // guest gives back) foretell the downtime. Under a max-bandwidth below the link both engines' estimates overstate it
  // (avail-switchover-bandwidth is how an orchestrator says so).
  const limits = (ms: number) => `max-bandwidth unlimited, downtime-limit ${ms} ms`;
  return DOWNTIME_LIMITS_MS.flatMap((limitMs, i) => {
    const reference = `qemu-downtime-${limitMs}ms`;
    const sweep: DowntimeSweepPoint = { reference, boundMs: DOWNTIME_BOUND_MS };
    const qemuPlan: ConvergencePlan = { lever: 'none', maxBandwidth: UNLIMITED_BANDWIDTH, downtimeLimit: limitMs, boundMs: DOWNTIME_BOUND_MS };
    const qemu = {
      family: 'qemu' as const,
      name: reference,
      description: `QEMU: ${mib(DOWNTIME_RAM)}, dirtying boot sector over [1M, 100M) (TCG), ${limits(limitMs)}, cancelled after ${DOWNTIME_BOUND_MS / 1000} s`,
      ram: DOWNTIME_RAM,
      memory: 'dirtying' as const,
      downtimeSweep: qemuPlan,
    };
    const livemig = (name: string, what: string, workload: { kind: 'dirty'; rate: number; workingSet: number } | { kind: 'ab'; range: { start: number; end: number } }) => ({
      family: 'livemig' as const,
      name: `downtime-${name}-${limitMs}ms`,
      description: `${mib(DOWNTIME_RAM)}, ${what}, tcp, ${limits(limitMs)}`,
      ram: DOWNTIME_RAM,
      workload,
      transport: 'tcp' as const,
      downtimeLimit: limitMs,
      downtimeSweep: sweep,
      quick: false,
    });
    const range = abRange(limitMs);
    const points = [
      ...DOWNTIME_DIRTY_RATES.map((rate) =>
        livemig(`dirty-${rate / 1000}k`, `dirtying ${rate} pages/s over ${mib(DOWNTIME_WORKING_SET)}`, { kind: 'dirty', rate, workingSet: DOWNTIME_WORKING_SET })),
      livemig('ab', `running 'ab' over [${mib(range.start)}, ${mib(range.end)})`, { kind: 'ab', range }),
    ];
    return i % 2 === 0 ? [qemu, ...points] : [...points, qemu];
  });
}
