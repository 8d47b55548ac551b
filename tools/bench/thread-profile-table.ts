/**
 * Where the CPU goes (issue 20): each profiled scenario's CPU seconds per
 * GiB of guest RAM by side and thread role (thread-profile.ts), user and
 * system apart, and each role's share of what the machine's cores could
 * give over the run's wall time; then, for each livemig scenario beside its
 * loopback limit, the floor those figures set on this machine.
 */
import { median } from './median.js';
import type { RunMetrics, ScenarioResult, Shape } from './results.js';
import { REFERENCES } from './scenarios.js';
import { fixed } from './table.js';

export const THREAD_PROFILE_COLUMNS = ['scenario', 'side, role', 'threads', 'user s/GiB', 'system s/GiB', 'total s/GiB', '% of cores × wall'] as const;

/** Issue 20's goal for multifd against its loopback limit. */
const GOAL_VS_LIMIT = 0.85;
/** Busier than this, a run is CPU-bound: its cores had no time to spare. */
const CPU_BOUND = 0.9;

const GiB = 1 << 30;

/** One side and role of a scenario: medians over its profiled runs. */
interface RoleFigures {
  /** 'source destination' order, 'all' for the scenario's total. */
  side: string;
  role: string;
  threads: number;
  /** CPU s per GiB of guest RAM. */
  user: number;
  system: number;
  /** CPU seconds ÷ (cores × wall seconds). */
  share: number;
}

function profiledRuns(r: ScenarioResult): RunMetrics[] {
  return r.runs.filter((run) => run.ok && run.ramBytes > 0 && run.totalTimeMs > 0 && run.source.threads && run.destination.threads);
}

/** A scenario's figures by side and role, then its total; undefined when no run was profiled. */
function profileOf(r: ScenarioResult, cpus: number): RoleFigures[] | undefined {
  const runs = profiledRuns(r);
  if (runs.length === 0) return undefined;
  const samples = new Map<string, { side: string; role: string; threads: number[]; user: number[]; system: number[]; share: number[] }>();
  const add = (side: string, role: string, threads: number, user: number, system: number, run: RunMetrics) => {
    const gib = run.ramBytes / GiB;
    const key = `${side} ${role}`;
    const s = samples.get(key) ?? { side, role, threads: [], user: [], system: [], share: [] };
    s.threads.push(threads);
    s.user.push(user / gib);
    s.system.push(system / gib);
    s.share.push((user + system) / (cpus * run.totalTimeMs / 1000));
    samples.set(key, s);
  };
  for (const run of runs) {
    const total = { threads: 0, user: 0, system: 0 };
    for (const side of ['source', 'destination'] as const) {
      for (const t of run[side].threads!) {
        add(side, t.role, t.threads, t.user, t.system, run);
        total.threads += t.threads;
        total.user += t.user;
        total.system += t.system;
      }
    }
    add('all', 'total', total.threads, total.user, total.system, run);
  }
  return [...samples.values()].map((s) => ({
    side: s.side, role: s.role, threads: median(s.threads), user: median(s.user), system: median(s.system), share: median(s.share),
  }));
}

/** One row per profiled scenario, side and role, in THREAD_PROFILE_COLUMNS order. */
export function threadProfileRows(results: ScenarioResult[], cpus: number): string[][] {
  return results.flatMap((r) => (profileOf(r, cpus) ?? []).map((f) => [
    r.name,
    `${f.side}, ${f.role}`,
    String(Math.round(f.threads)),
    fixed(f.user, 3),
    fixed(f.system, 3),
    fixed(f.user + f.system, 3),
    `${(f.share * 100).toFixed(0)} %`,
  ]));
}

/**
 * For each livemig scenario with a loopback limit, both profiled: how much
 * CPU each spends per GiB against what the cores give in its wall time,
 * the speed that cost allows at best on this machine, and which sides and
 * roles spend what the limit does not.
 */
export function floorStatements(results: ScenarioResult[], cpus: number): string[] {
  const byName = new Map(results.map((r) => [r.name, r]));
  return results.flatMap((r) => {
    const limitName = r.family === 'livemig' && r.config.shape ? REFERENCES[r.config.shape as Shape].limit : undefined;
    const limit = limitName ? byName.get(limitName) : undefined;
    const [mine, theirs] = [r, limit].map((s) => (s ? profileOf(s, cpus) : undefined));
    if (!limit || !mine || !theirs) return [];
    const wall = (s: ScenarioResult) => median(profiledRuns(s).map((run) => run.totalTimeMs / 1000 / (run.ramBytes / GiB)));
    const cost = (p: RoleFigures[]) => p.filter((f) => f.side !== 'all').reduce((sum, f) => sum + f.user + f.system, 0);
    const busy = (name: string, p: RoleFigures[], w: number) => {
      const used = cost(p);
      const load = used / (cpus * w);
      return `  ${name}: ${used.toFixed(2)} CPU s/GiB in ${w.toFixed(3)} s/GiB of wall time, where ${cpus} cores give ${(cpus * w).toFixed(2)}: ` +
        `${(load * 100).toFixed(0)} % busy (${load >= CPU_BOUND ? 'CPU-bound' : 'not bound by its own CPU: the rest went idle, or to other processes on a shared machine'})`;
    };
    const [myWall, limitWall] = [wall(r), wall(limit)];
    const best = cpus / cost(mine);
    const gaps = [...new Set([...mine, ...theirs].filter((f) => f.side !== 'all').map((f) => `${f.side}, ${f.role}`))]
      .map((key) => {
        const of = (p: RoleFigures[]) => p.find((f) => `${f.side}, ${f.role}` === key);
        const [a, b] = [of(mine), of(theirs)];
        return { key, more: (a ? a.user + a.system : 0) - (b ? b.user + b.system : 0) };
      })
      .filter((g) => Math.abs(g.more) >= 0.005)
      .sort((a, b) => b.more - a.more);
    return [
      `${r.name} against ${limit.name} (${cpus} cores shared by both processes of each):`,
      busy(limit.name, theirs, limitWall),
      busy(r.name, mine, myWall),
      `  At ${cost(mine).toFixed(2)} CPU s/GiB, ${cpus} fully busy cores move at most ${best.toFixed(2)} GiB/s = ${(best * limitWall).toFixed(2)}× ${limit.name} ` +
        `(${(1 / limitWall).toFixed(2)} GiB/s); ${GOAL_VS_LIMIT}× needs ≤ ${(cpus * limitWall / GOAL_VS_LIMIT).toFixed(2)} CPU s/GiB.`,
      `  ${r.name} spends ${(cost(mine) - cost(theirs)).toFixed(2)} CPU s/GiB more than ${limit.name}; by side and role (CPU s/GiB): ` +
        gaps.map((g) => `${g.key} ${g.more >= 0 ? '+' : ''}${g.more.toFixed(2)}`).join(', '),
    ];
  });
}
