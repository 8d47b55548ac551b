/**
 * The model the tests generate paths from: a source, a destination and the
 * link between them (a fault proxy), as one small statechart whose events
 * are what a user or the world can do — the QMP commands, and the faults.
 *
 * The model does not restate the statecharts. Each event's consequence is
 * written as the real events it causes on each side (the command itself,
 * then the reports the migration and incoming actors send back), and the
 * real machines, run purely, take them: the model's statuses are the
 * machines' own, and a consequence a machine refuses is an error here.
 */
import { assign, setup } from 'xstate';
import type { DestinationSnapshot } from '../../machines/destination.js';
import type {
  DestinationEvent, FailedEvent, MigrateCommand, MigrateIncomingCommand, SourceEvent,
} from '../../machines/events.js';
import type { SourceSnapshot } from '../../machines/source.js';
import type { MigrationStatus } from '../../machines/status.js';
import { destinationChart, sourceChart, type ChartTransition } from './statechart.js';

/** Destination processes a path may use: the first and one replacement. */
const MAX_DESTINATIONS = 2;

/** What the fault proxy does to the bytes: forward them, hold them, or invert them. */
export type Link = 'pass' | 'stall' | 'corrupt';

/** The migration connection through the proxy: not made yet, made, or gone. */
export type Connection = 'none' | 'open' | 'closed';

export interface World {
  source: SourceSnapshot;
  destination: DestinationSnapshot | 'gone';
  connection: Connection;
  link: Link;
  /** The source's last `migrate` went to a channel that never opens (it stays in setup). */
  blocked: boolean;
  /** `cont` ran on the source after it completed: its guest runs again. */
  resumed: boolean;
  /** Destination processes started so far. */
  destinations: number;
}

export type WorldEvent =
  | { type: 'migrate-incoming' }
  | { type: 'migrate'; pauseBeforeSwitchover: boolean }
  /** `migrate` to a channel whose open never returns (a FIFO nobody reads). */
  | { type: 'migrate-blocked' }
  | { type: 'migrate_cancel' }
  | { type: 'migrate-continue' }
  /** `migrate-set-parameters max-bandwidth` lifted: the throttled migration converges. */
  | { type: 'lift-max-bandwidth' }
  | { type: 'cont' }
  | { type: 'stall' }
  | { type: 'cut' }
  | { type: 'corrupt' }
  | { type: 'kill-destination' }
  | { type: 'new-destination' };

/** Every event the world can take, each case once (the traversal's alphabet). */
export const worldEvents: readonly WorldEvent[] = [
  { type: 'migrate-incoming' },
  { type: 'migrate', pauseBeforeSwitchover: false },
  { type: 'migrate', pauseBeforeSwitchover: true },
  { type: 'migrate-blocked' },
  { type: 'migrate_cancel' },
  { type: 'migrate-continue' },
  { type: 'lift-max-bandwidth' },
  { type: 'cont' },
  { type: 'stall' },
  { type: 'cut' },
  { type: 'corrupt' },
  { type: 'kill-destination' },
  { type: 'new-destination' },
];

export interface SideStep {
  /** The statuses the side announces, in order (its MIGRATION events). */
  statuses: MigrationStatus[];
  transitions: ChartTransition[];
}

export interface Consequence {
  world: World;
  source: SideStep;
  destination: SideStep;
}

/** Statuses in which a source migration uses the connection through the proxy. */
const CARRIED: readonly MigrationStatus[] = ['active', 'pre-switchover', 'device'];

const SETUP_DONE: SourceEvent = { type: 'setup.done' };
const SWITCHOVER_PAUSE: SourceEvent = { type: 'switchover.pause' };
const COMPLETED: SourceEvent = { type: 'completed' };
const CANCEL: SourceEvent = { type: 'migrate_cancel' };
const CANCEL_DONE: SourceEvent = { type: 'cancel.done' };
const CONTINUE: SourceEvent = { type: 'migrate-continue', state: 'pre-switchover' };
const STREAM_ARRIVED: DestinationEvent = { type: 'stream.arrived' };
const LOAD_DONE: DestinationEvent = { type: 'load.done' };
const INCOMING: MigrateIncomingCommand = { type: 'migrate-incoming', uri: 'tcp:127.0.0.1:0', runState: 'inmigrate' };
const failed = (why: string): FailedEvent => ({ type: 'failed', error: why });

export function initialWorld(): World {
  return {
    source: sourceChart.initial(),
    destination: destinationChart.initial(),
    connection: 'none',
    link: 'pass',
    blocked: false,
    resumed: false,
    destinations: 1,
  };
}

export function sourceStatusOf(world: World): MigrationStatus {
  return sourceChart.statusOf(world.source);
}

export function destinationStatusOf(world: World): MigrationStatus | 'gone' {
  return world.destination === 'gone' ? 'gone' : destinationChart.statusOf(world.destination);
}

/** Incoming has started and no connection came yet: a `migrate` now reaches the destination. */
export function destinationListens(world: World): boolean {
  return destinationStatusOf(world) === 'setup' && world.connection === 'none';
}

/** The source guest's run state the model expects (QEMU's RunState names). */
export function sourceRunState(world: World): 'running' | 'finish-migrate' | 'postmigrate' {
  switch (sourceStatusOf(world)) {
    case 'pre-switchover':
    case 'device':
      return 'finish-migrate';
    case 'completed':
      return world.resumed ? 'running' : 'postmigrate';
    default:
      return 'running';
  }
}

export function pauseBeforeSwitchover(world: World): boolean {
  return world.source.context.capabilities['pause-before-switchover'] === true;
}

/**
 * What `event` does to `world`, or null where it cannot happen (a command the
 * machine refuses, a fault with nothing to act on). The rules of the world:
 * - `migrate` reaches the destination only while it listens (incoming
 *   started, no connection yet); otherwise the connection is refused.
 *   Migrations run throttled, so they stay `active` until the limit is lifted.
 * - A stalled link carries nothing, the close of a side included; a source
 *   cancelled behind it leaves the destination waiting. (The proxy holds a
 *   close only behind bytes it holds, so the driver stalls an active
 *   migration until bytes are held, and the model has no cancel of a
 *   stalled pre-switchover, where nothing is in flight to hold it.)
 * - A broken connection (cut, a killed destination) fails a source that uses
 *   it at once, in every status that carries it: DESIGN §10, "a bad return
 *   path fails a precopy migration at once".
 * - Garbage reaches the destination with the next bytes: at once while the
 *   source sends (`active`), after `migrate-continue` when it is paused.
 * - A destination that fails to load reports `failed` and stays up
 *   (migrate-incoming runs with exit-on-error false).
 */
export function consequence(world: World, event: WorldEvent): Consequence | null {
  const source = sourceStatusOf(world);
  const destination = destinationStatusOf(world);
  const attached = world.connection === 'open' && CARRIED.includes(source);
  const listening = destinationListens(world);
  const next: World = { ...world };
  const toSource: SourceEvent[] = [];
  const toDestination: DestinationEvent[] = [];
  const close = () => (next.connection = 'closed');

  switch (event.type) {
    case 'migrate-incoming':
      if (world.destination === 'gone' || !destinationChart.accepts(world.destination, INCOMING)) return null;
      toDestination.push(INCOMING);
      break;
    case 'migrate':
    case 'migrate-blocked': {
      const command = migrateCommand(world, event.type === 'migrate' && event.pauseBeforeSwitchover);
      if (!sourceChart.accepts(world.source, command)) return null;
      toSource.push(command);
      next.resumed = false;
      next.blocked = event.type === 'migrate-blocked';
      if (next.blocked) break;
      if (listening) {
        toSource.push(SETUP_DONE);
        if (world.link === 'pass') toDestination.push(STREAM_ARRIVED);
        next.connection = 'open';
      } else {
        toSource.push(failed('Failed to connect: connection refused'));
      }
      break;
    }
    case 'migrate_cancel':
      if (!sourceChart.accepts(world.source, CANCEL)) return null;
      if (source === 'pre-switchover' && world.link === 'stall') return null;
      toSource.push(CANCEL, CANCEL_DONE);
      next.blocked = false;
      if (attached && world.link !== 'stall') {
        toDestination.push(failed('the migration stream ended before its EOF'));
        close();
      }
      break;
    case 'migrate-continue':
      if (!attached || !sourceChart.accepts(world.source, CONTINUE)) return null;
      toSource.push(CONTINUE);
      if (world.link === 'pass') {
        toSource.push(COMPLETED);
        toDestination.push(LOAD_DONE);
        close();
      } else if (world.link === 'corrupt') {
        toSource.push(failed('Sibling indicated error'));
        toDestination.push(failed('bad frame'));
        close();
      }
      // Stalled: device waits for a SHUT that cannot come.
      break;
    case 'lift-max-bandwidth':
      if (source !== 'active' || !attached || world.link !== 'pass') return null;
      if (pauseBeforeSwitchover(world)) toSource.push(SWITCHOVER_PAUSE);
      else {
        toSource.push(COMPLETED);
        toDestination.push(LOAD_DONE);
        close();
      }
      break;
    case 'cont':
      if (source !== 'completed' || world.resumed) return null;
      next.resumed = true;
      break;
    case 'stall':
      if (world.link !== 'pass' || !(listening || attached)) return null;
      next.link = 'stall';
      break;
    case 'cut':
      if (world.connection !== 'open') return null;
      if (attached) toSource.push(failed('Unable to write to the migration channel'));
      if (destination === 'setup' || destination === 'active') toDestination.push(failed('ECONNRESET'));
      close();
      break;
    case 'corrupt':
      if (!attached || world.link !== 'pass' || !(source === 'active' || source === 'pre-switchover')) return null;
      next.link = 'corrupt';
      if (source === 'active') {
        toSource.push(failed('Sibling indicated error'));
        toDestination.push(failed('bad frame'));
        close();
      }
      break;
    case 'kill-destination':
      if (world.destination === 'gone') return null;
      if (attached) toSource.push(failed('the destination closed the return path without SHUT'));
      next.destination = 'gone';
      close();
      break;
    case 'new-destination':
      if (!['gone', 'completed', 'failed'].includes(destination) || world.destinations >= MAX_DESTINATIONS) return null;
      next.destination = destinationChart.initial();
      next.connection = 'none';
      next.link = 'pass';
      next.destinations += 1;
      break;
  }

  const sourceStep = sourceChart.run(world.source, toSource);
  next.source = sourceStep.snapshot;
  let destinationStep: SideStep = { statuses: [], transitions: [] };
  if (toDestination.length > 0) {
    if (next.destination === 'gone') throw new Error(`the model sends ${toDestination[0]!.type} to a destination that is gone`);
    const step = destinationChart.run(next.destination, toDestination);
    next.destination = step.snapshot;
    destinationStep = step;
  }
  return { world: next, source: sourceStep, destination: destinationStep };
}

/** The real `migrate` command, with the facts its guard reads. */
function migrateCommand(world: World, pause: boolean): MigrateCommand {
  return {
    type: 'migrate',
    uri: 'tcp:destination',
    resume: false,
    runState: sourceRunState(world),
    blockers: [],
    capabilities: { events: true, 'pause-before-switchover': pause },
  };
}

/**
 * The model state as the traversal tells states apart: both statuses, the
 * link, and only the facts that still decide something.
 */
export function worldKey(world: World): string {
  const source = sourceStatusOf(world);
  const destination = destinationStatusOf(world);
  let sourcePart: string = source;
  if (source === 'active' && pauseBeforeSwitchover(world)) sourcePart += ' (pause-before-switchover)';
  if (source === 'setup' && world.blocked) sourcePart += ' (channel blocked)';
  if (source === 'completed' && world.resumed) sourcePart += ' (cont)';
  const link = world.connection === 'closed' ? 'no link' : `${world.connection === 'open' ? 'connection' : 'listener'} ${world.link}`;
  return `source ${sourcePart} | destination #${world.destinations} ${destination} | ${link}`;
}

const happens = { guard: 'possible', actions: 'happen' } as const;

/**
 * The model as an xstate machine, for xstate/graph: one state, the world in
 * its context, and every event guarded by whether it can happen.
 */
export const worldMachine = setup({
  types: { context: {} as World, events: {} as WorldEvent },
  guards: { possible: ({ context, event }) => consequence(context, event) !== null },
  actions: { happen: assign(({ context, event }) => consequence(context, event)!.world) },
}).createMachine({
  id: 'world',
  context: initialWorld,
  on: {
    'migrate-incoming': happens,
    migrate: happens,
    'migrate-blocked': happens,
    migrate_cancel: happens,
    'migrate-continue': happens,
    'lift-max-bandwidth': happens,
    cont: happens,
    stall: happens,
    cut: happens,
    corrupt: happens,
    'kill-destination': happens,
    'new-destination': happens,
  },
});
