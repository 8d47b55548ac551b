/**
 * The return path as a statechart, one per side: the reverse direction of
 * the main connection, read by the source and written by the destination.
 * Pure, like the migration machines: the actors in actors/return-path/ run
 * it and act on its state.
 *
 *   opening --open--> open --shut--> closed
 *      |                |
 *      +-----bad--------+----bad----> bad
 *      |                |
 *      +-----pause------+---pause---> paused
 *
 * `bad` is where malformed input, an error SHUT, or a path that ended
 * before its SHUT lead: a precopy migration fails on it, a postcopy one
 * pauses (DESIGN §10). `paused` is a postcopy path whose connection broke
 * (or was broken off by migrate-pause): nothing was wrong with what it
 * carried, and a recovery opens a new path on the new connection.
 * `closed` is a clean end. The messages that pass
 * while it is open change nothing here, so they are not events of the
 * chart (a page request is on the hot path of postcopy): the actor trace
 * shows each one.
 */
import { assign, setup, type SnapshotFrom } from 'xstate';

export type ReturnPathEvent =
  /** OPEN_RETURN_PATH: sent by the source, received by the destination. */
  | { type: 'open' }
  /** A clean end: SHUT 0 read on the source, SHUT sent and the path ended on the destination. */
  | { type: 'shut' }
  /** The path went bad; `error` says why. */
  | { type: 'bad'; error: string }
  /** Postcopy: the connection broke, or migrate-pause broke it off; `error` says how. */
  | { type: 'pause'; error: string };

export interface ReturnPathContext {
  /** Why the path went bad. */
  error: string | null;
}

export const returnPathMachine = setup({
  types: { context: {} as ReturnPathContext, events: {} as ReturnPathEvent },
  actions: {
    recordBad: assign({ error: ({ event, context }) => (event.type === 'bad' || event.type === 'pause' ? event.error : context.error) }),
  },
}).createMachine({
  id: 'return-path',
  context: { error: null },
  initial: 'opening',
  states: {
    opening: {
      on: {
        open: 'open',
        bad: { target: 'bad', actions: 'recordBad' },
        pause: { target: 'paused', actions: 'recordBad' },
      },
    },
    open: {
      on: {
        shut: 'closed',
        bad: { target: 'bad', actions: 'recordBad' },
        pause: { target: 'paused', actions: 'recordBad' },
      },
    },
    closed: { type: 'final' },
    bad: { type: 'final' },
    paused: { type: 'final' },
  },
});

export type ReturnPathState = 'opening' | 'open' | 'closed' | 'bad' | 'paused';
export type ReturnPathSnapshot = SnapshotFrom<typeof returnPathMachine>;

export function returnPathState(snapshot: ReturnPathSnapshot): ReturnPathState {
  return snapshot.value as ReturnPathState;
}
