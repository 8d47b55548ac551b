/**
 * What one round of the bench runs, and in which order. Each livemig
 * scenario runs right beside the references it is compared with (its QEMU
 * run, its loopback limit), so that every round gives ratios of runs taken
 * seconds apart (pair-ratios.ts) whatever phase this shared machine is in;
 * and every round measures the loopback limit once, to tell a round taken
 * in an unusual phase.
 */
import { REFERENCES, referencesOf, type Scenario } from './scenarios.js';

/**
 * Measured in every round that has pairs, to tell a round from a slow
 * phase: the 1-connection loopback limit, the cheapest reference (~0.25 s
 * for 1 GiB) and the plainest (two Node.js processes, no guest).
 */
export const DRIFT_PROBE = REFERENCES.single.limit!;

/**
 * The references whose ratios are taken pair by pair: a shape's QEMU run
 * and loopback limit (guest GB/s), a postcopy plan's QEMU run (switchover →
 * completion). Convergence and start-to-done references are run beside
 * their scenarios too, but compared otherwise.
 */
export function pairedReferencesOf(s: Scenario): string[] {
  if (s.family !== 'livemig') return [];
  const shape = s.shape ? [REFERENCES[s.shape].qemu, REFERENCES[s.shape].limit] : [];
  return [...shape, s.postcopy?.reference].filter((name): name is string => name !== undefined);
}

/** `selected` with the drift probe (at its place in `all`) when some scenario there has a paired reference there; otherwise as it is. */
export function withDriftProbe(all: Scenario[], selected: Scenario[]): Scenario[] {
  const names = new Set(selected.map((s) => s.name));
  const paired = selected.some((s) => pairedReferencesOf(s).some((ref) => names.has(ref)));
  if (!paired || names.has(DRIFT_PROBE)) return selected;
  return all.filter((s) => names.has(s.name) || s.name === DRIFT_PROBE);
}

/**
 * Round `round`'s runs (from 0): every selected scenario once. Each livemig
 * scenario forms a group with its selected references, at the scenario's
 * place in the list; scenarios that share a reference join one group, so
 * the reference still runs once a round, beside all of them (no shared
 * reference would run twice: the round costs what it did). In a group the
 * list's order holds (references first, but for the compression and
 * convergence pairs, which alternate the engine going first), reversed
 * every other round, so that a machine speeding up or slowing down within
 * a group favours neither side over the rounds. A drift probe outside any
 * group runs first.
 */
export function roundOrder(selected: Scenario[], round: number): Scenario[] {
  const names = new Set(selected.map((s) => s.name));
  const groupOf = new Map<string, string[]>();
  for (const s of selected) {
    if (s.family !== 'livemig') continue;
    const members = [s.name, ...referencesOf(s).filter((ref) => names.has(ref))];
    if (members.length === 1) continue;
    const merged = new Set(members.flatMap((name) => groupOf.get(name) ?? [name]));
    const group = selected.map((m) => m.name).filter((name) => merged.has(name));
    for (const name of group) groupOf.set(name, group);
  }
  const byName = new Map(selected.map((s) => [s.name, s]));
  const probe = byName.get(DRIFT_PROBE);
  const order: Scenario[] = probe && !groupOf.has(DRIFT_PROBE) ? [probe] : [];
  const placed = new Set(order);
  for (const s of selected) {
    if (placed.has(s)) continue;
    const group = groupOf.get(s.name);
    if (!group) {
      order.push(s);
      placed.add(s);
    } else if (s.family === 'livemig') {
      const members = group.map((name) => byName.get(name)!);
      for (const m of round % 2 === 1 ? members.reverse() : members) {
        order.push(m);
        placed.add(m);
      }
    }
  }
  return order;
}

/**
 * Whether a reference that drifted in a round flags `s`'s pairs of that
 * round: the drift probe's flags every pair of its round (the machine was
 * off its usual speed), any other reference the pairs measured against it
 * (their group ran in an unusual phase, however short).
 */
export function flagsPairsOf(drift: { reference: string }, s: Scenario): boolean {
  const refs = pairedReferencesOf(s);
  return refs.length > 0 && (drift.reference === DRIFT_PROBE || refs.includes(drift.reference));
}
