/**
 * The two statecharts the visualizer draws, by side, with their graphs
 * walked once. A side is also the machine's id.
 */
import type { AnyStateMachine } from 'xstate';
import { destinationMachine } from '../../machines/destination.js';
import { sourceMachine } from '../../machines/source.js';
import { statechartGraph, type StatechartGraph } from './statechart-graph.js';

export type Side = 'source' | 'destination';

export const SIDES: readonly Side[] = ['source', 'destination'];

export const machines: Readonly<Record<Side, AnyStateMachine>> = {
  source: sourceMachine,
  destination: destinationMachine,
};

export const graphs: Readonly<Record<Side, StatechartGraph>> = {
  source: statechartGraph(sourceMachine),
  destination: statechartGraph(destinationMachine),
};

export function isSide(value: unknown): value is Side {
  return value === 'source' || value === 'destination';
}
