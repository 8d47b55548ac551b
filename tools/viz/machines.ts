/**
 * The statecharts the visualizer draws, exports and explores, with their
 * graphs walked once: the two migration statecharts, one per side (a side
 * is also the machine's id), and the return path's, which each side runs
 * for its end of the path. Only the sides report a status over QMP, so only
 * they are followed live.
 */
import type { AnyStateMachine } from 'xstate';
import { destinationMachine } from '../../machines/destination.js';
import { returnPathMachine } from '../../machines/return-path.js';
import { sourceMachine } from '../../machines/source.js';
import { statechartGraph, type StatechartGraph } from './statechart-graph.js';

/** A side of the migration: an instance the page can follow. */
export type Side = 'source' | 'destination';

export const SIDES: readonly Side[] = ['source', 'destination'];

/** A statechart the visualizer knows, by its machine id. */
export type ChartName = Side | 'return-path';

export const CHARTS: readonly ChartName[] = [...SIDES, 'return-path'];

export const machines: Readonly<Record<ChartName, AnyStateMachine>> = {
  source: sourceMachine,
  destination: destinationMachine,
  'return-path': returnPathMachine,
};

export const graphs: Readonly<Record<ChartName, StatechartGraph>> = {
  source: statechartGraph(sourceMachine),
  destination: statechartGraph(destinationMachine),
  'return-path': statechartGraph(returnPathMachine),
};

export function isSide(value: unknown): value is Side {
  return value === 'source' || value === 'destination';
}

export function isChartName(value: unknown): value is ChartName {
  return isSide(value) || value === 'return-path';
}
