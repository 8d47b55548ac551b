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
 * A command the monitor refuses is a step too: it changes nothing, and its
 * answer must be the refusal function's text (machines/refusals.ts).
 */
import { assign, setup } from 'xstate';
import type { DestinationSnapshot } from '../../machines/destination.js';
import type {
  DestinationEvent, FailedEvent, MigrateCommand, MigrateIncomingCommand, PostcopyPausedEvent, SourceEvent,
} from '../../machines/events.js';
import {
  refuseColoCheckpoint, refuseMigrate, refuseMigrateCancel, refuseMigratePause, refuseMigrateRecover, refuseMigrateStartPostcopy,
  refuseXColoLostHeartbeat,
} from '../../machines/refusals.js';
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
  /** The last migration switched to postcopy: the guest runs on the destination, never again here. */
  switched: boolean;
  /**
   * migrate-continue behind a stalled link: the source writes what a stopped guest has left, and the end
   * of its stream, into the stall. If the kernel took it all, a failure leaves the destination's fate
   * unknown to the source, which keeps its guest stopped (postmigrate); if some still waited in the
   * source, it runs the guest again. Which one depends on the buffers on the way: either is right
   * (live-world.ts's expectEnd). A cancel runs the guest again in both cases.
   */
  streamInStall: boolean;
  /** Destination processes started so far. */
  destinations: number;
  /** The paused destination ran migrate-recover: it listens for the source's new connection. */
  recoverListening: boolean;
  /**
   * A failover primary of the source guest (one whose guest never unplugs it
   * by itself): `plugged`, a migration waits in wait-unplug for it;
   * `unplugged` by the running migration, which plugs it back if it fails
   * or is cancelled; `none` when there is none, or it stays unplugged.
   */
  primary: 'none' | 'plugged' | 'unplugged';
  /** migrate-start-postcopy came while the source waited in wait-unplug: the switch follows once it is active. */
  postcopyAsked: boolean;
  /** switchover-ack: the destination's device is ready for this migration (its SWITCHOVER_ACK is sent). */
  deviceReady: boolean;
  /** switchover-ack: the lifted migration converged and is held at the gate until the acknowledgement. */
  held: boolean;
}

export type WorldEvent =
  | { type: 'migrate-incoming' }
  /** `migrate`, with the capabilities set before it: pause-before-switchover, postcopy-ram or x-colo (on both sides). */
  | { type: 'migrate'; pauseBeforeSwitchover: boolean; postcopy: boolean; colo: boolean; switchoverAck?: true }
  /** `migrate` to a channel whose open never returns (a FIFO nobody reads), with postcopy-ram on. */
  | { type: 'migrate-blocked' }
  /** `migrate` with `resume: true`: postcopy recovery, to where the destination listens for it (or nowhere). */
  | { type: 'migrate-resume' }
  /** `migrate-recover` on the destination: it listens at a new address, behind a new proxy. */
  | { type: 'migrate-recover' }
  /** `migrate-pause` on one side. */
  | { type: 'migrate-pause'; side: 'source' | 'destination' }
  | { type: 'migrate_cancel' }
  | { type: 'migrate-continue' }
  | { type: 'migrate-start-postcopy' }
  /**
   * `migrate-set-parameters`: the throttle lifted (max-bandwidth, downtime-limit,
   * max-postcopy-bandwidth): a precopy migration converges, a postcopy one completes.
   */
  | { type: 'lift-max-bandwidth' }
  | { type: 'cont' }
  | { type: 'stall' }
  | { type: 'cut' }
  | { type: 'corrupt' }
  | { type: 'kill-destination' }
  | { type: 'new-destination' }
  /** A failover primary plugged into the source guest (`__org.livemig_device-add` with failover-pair-id), whose guest never unplugs it by itself. */
  | { type: 'plug-failover-primary' }
  /** The source guest's OS finishes unplugging the failover primary (`__org.livemig_guest-unplug`). */
  | { type: 'guest-unplug' }
  /** The destination's device that holds the switchover is ready (`__org.livemig_device-ready`): SWITCHOVER_ACK goes out. */
  | { type: 'device-ready' }
  /** `x-colo-lost-heartbeat` on one side: the other is deemed gone. */
  | { type: 'x-colo-lost-heartbeat'; side: 'source' | 'destination' }
  /** livemig's `colo-checkpoint` on the source. */
  | { type: 'colo-checkpoint' };

/** Every event the world can take, each case once (the traversal's alphabet). */
export const worldEvents: readonly WorldEvent[] = [
  { type: 'migrate-incoming' },
  { type: 'migrate', pauseBeforeSwitchover: false, postcopy: false, colo: false },
  { type: 'migrate', pauseBeforeSwitchover: true, postcopy: false, colo: false },
  { type: 'migrate', pauseBeforeSwitchover: false, postcopy: true, colo: false },
  { type: 'migrate', pauseBeforeSwitchover: true, postcopy: true, colo: false },
  { type: 'migrate', pauseBeforeSwitchover: false, postcopy: false, colo: true },
  { type: 'migrate', pauseBeforeSwitchover: true, postcopy: false, colo: true },
  { type: 'migrate', pauseBeforeSwitchover: false, postcopy: false, colo: false, switchoverAck: true },
  { type: 'migrate-blocked' },
  { type: 'migrate-resume' },
  { type: 'migrate-recover' },
  { type: 'migrate-pause', side: 'source' },
  { type: 'migrate-pause', side: 'destination' },
  { type: 'migrate_cancel' },
  { type: 'migrate-continue' },
  { type: 'migrate-start-postcopy' },
  { type: 'lift-max-bandwidth' },
  { type: 'cont' },
  { type: 'stall' },
  { type: 'cut' },
  { type: 'corrupt' },
  { type: 'kill-destination' },
  { type: 'new-destination' },
  { type: 'x-colo-lost-heartbeat', side: 'source' },
  { type: 'x-colo-lost-heartbeat', side: 'destination' },
  { type: 'colo-checkpoint' },
  { type: 'plug-failover-primary' },
  { type: 'guest-unplug' },
  { type: 'device-ready' },
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
  /** The monitor's answer when it refuses the command (its error text): nothing else happens. Null when it accepts. */
  refusal: string | null;
}

/**
 * The real transitions no world event can drive, with why: the coverage
 * checks leave them out, and check that they stay undriven.
 */
export const UNDRIVABLE: Readonly<Record<'source' | 'destination', Readonly<Record<string, string>>>> = {
  source: {
    'postcopy-active --failed--> failed':
      'postcopy-active fails (rather than pauses) only on a failure between postcopy.start and the destination\'s answer ' +
      'to the package, a round trip the driver waits out after migrate-start-postcopy; every failure after it pauses ' +
      '(spec/postcopy-failures.test.ts swallows the package to drive it)',
    'cancelling --cancel.too-late--> completed':
      'a cancel yields to the SHUT only when it lands between the EOF written and the SHUT read, a round trip no world ' +
      'event can be aimed at (spec/precopy-cancel.test.ts holds the SHUT back to drive it)',
    'postcopy-paused --failed--> failed': 'after the package only a defect of livemig\'s own (not I/O) fails a migration, as in QEMU',
    'postcopy-recover --failed--> failed': 'after the package only a defect of livemig\'s own (not I/O) fails a migration, as in QEMU',
    'setup --switchover.acked--> (self)':
      'SWITCHOVER_ACK comes during setup only from a destination with no device to wait for; the model\'s destination has ' +
      'one, ready only on device-ready, which comes once the source is past setup (spec/switchover-gates.test.ts has the other kind)',
  },
  destination: {
    'postcopy-active --failed--> failed':
      'from its answer to the package on every failure pauses the destination; it fails in postcopy-active only when the ' +
      'package\'s device state does not load after its POSTCOPY_LISTEN (a correct source\'s package does), or the link ' +
      'breaks inside the package, which no fault of the world can be aimed at',
  },
};

/**
 * The source starts with postcopy-ram on (the orchestrator's choice), so
 * that migrate-start-postcopy before any migration meets QEMU's second
 * check; every `migrate` sets the capability as its migration needs it.
 */
export const SOURCE_STARTS_WITH_POSTCOPY_RAM = true;

/** run-control's answer to `cont` once postcopy started (it has no refusal function in machines/). */
export const CONT_AFTER_SWITCH = 'Cannot continue a guest whose postcopy migration has started: it runs on the destination';

/** Statuses in which a source migration uses the connection through the proxy before the switch to postcopy. */
const CARRIED: readonly MigrationStatus[] = ['wait-unplug', 'active', 'pre-switchover', 'device'];

const SETUP_DONE: SourceEvent = { type: 'setup.done' };
const UNPLUG_WAIT: SourceEvent = { type: 'unplug.wait' };
const SWITCHOVER_ACKED: SourceEvent = { type: 'switchover.acked' };
/** What the source asks each time precopy converges (the model's guest always runs then). */
const SWITCHOVER_REQUEST: SourceEvent = { type: 'switchover.request', guestRunning: true };
const SWITCHOVER_PAUSE: SourceEvent = { type: 'switchover.pause' };
const SWITCHOVER_PAUSE_FOR_POSTCOPY: SourceEvent = { type: 'switchover.pause', postcopy: true };
const POSTCOPY_START: SourceEvent = { type: 'postcopy.start' };
const START_POSTCOPY: SourceEvent = { type: 'migrate-start-postcopy' };
const COMPLETED: SourceEvent = { type: 'completed' };
const CANCEL: SourceEvent = { type: 'migrate_cancel' };
const CANCEL_DONE: SourceEvent = { type: 'cancel.done' };
const CONTINUE: SourceEvent = { type: 'migrate-continue', state: 'pre-switchover' };
const STREAM_ARRIVED: DestinationEvent = { type: 'stream.arrived' };
const POSTCOPY_LISTEN: DestinationEvent = { type: 'postcopy.listen' };
const LOAD_DONE: DestinationEvent = { type: 'load.done' };
const INCOMING: MigrateIncomingCommand = { type: 'migrate-incoming', uri: 'tcp:127.0.0.1:0', runState: 'inmigrate' };
const POSTCOPY_RECOVER = { type: 'postcopy.recover' } as const;
const POSTCOPY_RESUMED = { type: 'postcopy.resumed' } as const;
const PAUSE = { type: 'migrate-pause' } as const;
const COLO_START = { type: 'colo.start' } as const;
const COLO_FAILOVER = { type: 'colo.failover' } as const;
const LOST_HEARTBEAT = { type: 'x-colo-lost-heartbeat' } as const;
const USER_PAUSE = 'Postcopy migration is paused by the user';
const failed = (why: string): FailedEvent => ({ type: 'failed', error: why });
const paused = (why: string): PostcopyPausedEvent => ({ type: 'postcopy.paused', error: why });

export function initialWorld(): World {
  return {
    source: sourceChart.initial(),
    destination: destinationChart.initial(),
    connection: 'none',
    link: 'pass',
    blocked: false,
    resumed: false,
    switched: false,
    streamInStall: false,
    destinations: 1,
    recoverListening: false,
    primary: 'none',
    postcopyAsked: false,
    deviceReady: false,
    held: false,
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
    case 'postcopy-active':
    case 'postcopy-paused':
    case 'postcopy-recover':
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

/** The source's postcopy-ram capability as set now: the last migration's, or the setting it started with. */
export function postcopyRam(world: World): boolean {
  return sourceStatusOf(world) === 'none' ? SOURCE_STARTS_WITH_POSTCOPY_RAM : world.source.context.capabilities['postcopy-ram'] === true;
}

/** The last migration runs with x-colo: once through, both sides go to colo. */
export function xColo(world: World): boolean {
  return world.source.context.capabilities['x-colo'] === true;
}

/** The last migration waits for the destination's SWITCHOVER_ACK before it switches over. */
export function switchoverAck(world: World): boolean {
  return world.source.context.capabilities['switchover-ack'] === true;
}

/** The source stopped its guest in pre-switchover to switch to postcopy (not to complete by precopy). */
export function pausedForPostcopy(world: World): boolean {
  return world.source.context.postcopySwitch;
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
 * - Postcopy: the switch comes once the first pass is through (the driver
 *   throttles such a migration so that the pass ends at once but precopy
 *   never converges). From the package on, a broken connection or garbage
 *   pauses both sides (postcopy-paused): the destination pauses on any
 *   failure once it answered the package, and the source on a bad return path
 *   (one that ends before its SHUT). The destination, whose guest the driver
 *   leaves stopped, fetches nothing by itself: the postcopy phase lasts
 *   until max-postcopy-bandwidth is lifted.
 * - Recovery: migrate-recover (a paused destination) listens behind a new
 *   proxy; `migrate resume=true` reaches it there (elsewhere the connection
 *   is refused and the source stays paused). Through a passing link the
 *   handshake goes through at once (both postcopy-recover, then
 *   postcopy-active); through a stalled one both wait in postcopy-recover,
 *   where a cut pauses both, and migrate-pause only the side it is run on
 *   (a black hole tells neither side that the other went). migrate-pause
 *   in postcopy-active pauses both sides (the other sees the connection go).
 * - The monitor refuses migrate_cancel in postcopy, migrate-start-postcopy
 *   without postcopy-ram or before a migration, `migrate` with resume outside
 *   postcopy-paused, migrate-pause outside postcopy-active and
 *   postcopy-recover, migrate-recover outside postcopy-paused (a second one
 *   replaces the first), and `cont` of a source whose guest went on by postcopy.
 *   Not modelled: a stall after migrate-start-postcopy or in postcopy, and
 *   garbage before the package (whether the source is blocked in a write,
 *   or past the point of no return when the destination's error comes
 *   back, depends on timing).
 */
export function consequence(world: World, event: WorldEvent): Consequence | null {
  const source = sourceStatusOf(world);
  const destination = destinationStatusOf(world);
  const attached = world.connection === 'open' && CARRIED.includes(source);
  /** The postcopy phase runs over the connection: the package is through, the destination listens. */
  const postcopy = world.connection === 'open' && source === 'postcopy-active';
  const listening = destinationListens(world);
  const next: World = { ...world };
  const toSource: SourceEvent[] = [];
  const toDestination: DestinationEvent[] = [];
  const close = () => (next.connection = 'closed');
  const refused = (refusal: string): Consequence => ({ world, source: NOTHING, destination: NOTHING, refusal });
  /** A converged precopy migration allowed to switch over: what each side does next. */
  const completion = () => {
    if (pauseBeforeSwitchover(world)) toSource.push(SWITCHOVER_PAUSE);
    else if (xColo(world)) {
      toSource.push(COLO_START);
      toDestination.push(COLO_START);
    } else {
      toSource.push(COMPLETED);
      toDestination.push(LOAD_DONE);
      close();
    }
  };
  /** The switch to postcopy from active, once asked for (the pass it waits for ends at once). */
  const switchToPostcopy = () => {
    if (pauseBeforeSwitchover(world)) toSource.push(SWITCHOVER_PAUSE_FOR_POSTCOPY);
    else {
      toSource.push(POSTCOPY_START);
      toDestination.push(POSTCOPY_LISTEN);
      next.switched = true;
    }
  };

  switch (event.type) {
    case 'migrate-incoming':
      if (world.destination === 'gone' || !destinationChart.accepts(world.destination, INCOMING)) return null;
      toDestination.push(INCOMING);
      break;
    case 'migrate':
    case 'migrate-blocked': {
      const command = event.type === 'migrate'
        ? migrateCommand(world, {
          pauseBeforeSwitchover: event.pauseBeforeSwitchover, postcopy: event.postcopy, colo: event.colo, switchoverAck: event.switchoverAck === true,
        })
        : migrateCommand(world, { pauseBeforeSwitchover: false, postcopy: true, colo: false, switchoverAck: false });
      if (!sourceChart.accepts(world.source, command)) return null;
      toSource.push(command);
      next.resumed = false;
      next.switched = false;
      next.streamInStall = false;
      next.blocked = event.type === 'migrate-blocked';
      next.postcopyAsked = false;
      next.deviceReady = false;
      next.held = false;
      if (next.blocked) break;
      if (listening) {
        // Setup is through (header sent) either way; a plugged failover primary then holds it in wait-unplug.
        toSource.push(world.primary === 'plugged' ? UNPLUG_WAIT : SETUP_DONE);
        if (world.link === 'pass') toDestination.push(STREAM_ARRIVED);
        next.connection = 'open';
      } else {
        toSource.push(failed('Failed to connect: connection refused'));
      }
      break;
    }
    case 'migrate-resume': {
      const command = { ...migrateCommand(world, null), resume: true };
      const refusal = refuseMigrate(source, command);
      if (refusal !== null) return refused(refusal);
      toSource.push(command);
      if (!world.recoverListening) {
        // Nobody listens for it: the connection is refused, and the source stays paused.
        toSource.push(paused('Failed to connect: connection refused'));
        break;
      }
      next.recoverListening = false;
      next.connection = 'open';
      toSource.push(POSTCOPY_RECOVER);
      toDestination.push(POSTCOPY_RECOVER);
      // Through a stalled link both wait in postcopy-recover for an answer that cannot come.
      if (world.link === 'stall') break;
      toSource.push(POSTCOPY_RESUMED);
      toDestination.push(POSTCOPY_RESUMED);
      break;
    }
    case 'migrate-recover': {
      if (destination === 'gone') return null;
      const refusal = refuseMigrateRecover(destination);
      if (refusal !== null) return refused(refusal);
      toDestination.push({ type: 'migrate-recover', uri: 'tcp:127.0.0.1:0' });
      next.recoverListening = true;
      next.connection = 'none';
      next.link = 'pass';
      break;
    }
    case 'migrate-pause': {
      if (event.side === 'destination' && destination === 'gone') return null;
      // Each instance runs the other machine idle: its own side decides.
      const refusal = event.side === 'source' ? refuseMigratePause(source, 'none') : refuseMigratePause('none', destination as MigrationStatus);
      if (refusal !== null) return refused(refusal);
      const through = world.connection === 'open' && world.link === 'pass';
      if (event.side === 'source') {
        toSource.push(PAUSE, paused(USER_PAUSE));
        if (through && destination === 'postcopy-active') toDestination.push(paused('the migration stream ended before its EOF'));
        else if (destination === 'postcopy-recover') break;
      } else {
        toDestination.push(PAUSE, paused(USER_PAUSE));
        if (through && source === 'postcopy-active') toSource.push(paused('the destination closed the return path without SHUT'));
        else if (source === 'postcopy-recover') break;
      }
      close();
      break;
    }
    case 'migrate_cancel': {
      const refusal = refuseMigrateCancel(source);
      if (refusal !== null) return refused(refusal);
      // A cancel the machine ignores (nothing runs) is accepted and does nothing: not modelled.
      if (!sourceChart.accepts(world.source, CANCEL)) return null;
      if (source === 'pre-switchover' && world.link === 'stall') return null;
      toSource.push(CANCEL, CANCEL_DONE);
      next.blocked = false;
      if (attached && world.link !== 'stall') {
        toDestination.push(failed('the migration stream ended before its EOF'));
        close();
      }
      break;
    }
    case 'migrate-continue':
      if (!attached || !sourceChart.accepts(world.source, CONTINUE)) return null;
      if (pausedForPostcopy(world)) {
        // The switch goes on: the package is sent and the destination listens.
        if (world.link !== 'pass') return null;
        toSource.push(CONTINUE, POSTCOPY_START);
        toDestination.push(POSTCOPY_LISTEN);
        next.switched = true;
        break;
      }
      toSource.push(CONTINUE);
      if (world.link === 'pass' && xColo(world)) {
        // The stream is through: both sides go to colo, and the connection stays for the checkpoints.
        toSource.push(COLO_START);
        toDestination.push(COLO_START);
      } else if (world.link === 'pass') {
        toSource.push(COMPLETED);
        toDestination.push(LOAD_DONE);
        close();
      } else if (world.link === 'corrupt') {
        toSource.push(failed('Sibling indicated error'));
        toDestination.push(failed('bad frame'));
        close();
      } else if (!xColo(world)) {
        next.streamInStall = true;
      }
      // Stalled: device waits for a SHUT that cannot come.
      break;
    case 'migrate-start-postcopy': {
      const refusal = refuseMigrateStartPostcopy(source, postcopyRam(world));
      if (refusal !== null) return refused(refusal);
      // Accepted, and pointless, once the migration is over (or switched already): nothing happens.
      if (!sourceChart.accepts(world.source, START_POSTCOPY)) break;
      toSource.push(START_POSTCOPY);
      // In wait-unplug the switch follows once the guest has unplugged; in setup (blocked) or pre-switchover
      // the request waits in vain; in active the switch follows.
      if (source === 'wait-unplug') next.postcopyAsked = true;
      if (source !== 'active') break;
      if (world.link !== 'pass') return null;
      switchToPostcopy();
      break;
    }
    case 'lift-max-bandwidth':
      if (postcopy) {
        toSource.push(COMPLETED);
        toDestination.push(LOAD_DONE);
        close();
        break;
      }
      if (source !== 'active' || !attached || world.link !== 'pass' || world.held) return null;
      // Converged: the source asks to switch over; without the destination's acknowledgement it is held.
      toSource.push(SWITCHOVER_REQUEST);
      if (switchoverAck(world) && !world.deviceReady) {
        next.held = true;
        break;
      }
      completion();
      break;
    case 'plug-failover-primary':
      if (world.primary !== 'none' || !['none', 'completed', 'failed', 'cancelled'].includes(source)) return null;
      next.primary = 'plugged';
      break;
    case 'guest-unplug':
      if (source !== 'wait-unplug') return null;
      toSource.push(SETUP_DONE);
      next.primary = 'unplugged';
      if (world.postcopyAsked && world.link === 'pass') switchToPostcopy();
      break;
    case 'device-ready':
      if (!switchoverAck(world) || world.deviceReady || world.connection !== 'open' || world.link !== 'pass') return null;
      if (!['wait-unplug', 'active'].includes(source) || destination !== 'active') return null;
      next.deviceReady = true;
      toSource.push(SWITCHOVER_ACKED);
      if (world.held) {
        next.held = false;
        toSource.push(SWITCHOVER_REQUEST);
        completion();
      }
      break;
    case 'cont':
      if (world.switched) return refused(CONT_AFTER_SWITCH);
      if (source !== 'completed' || world.resumed) return null;
      next.resumed = true;
      break;
    case 'stall':
      // Not in wait-unplug: the source sends nothing there, so a stall holds nothing back, not even a close.
      if (world.link !== 'pass' || source === 'wait-unplug' || !(listening || attached || world.recoverListening)) return null;
      next.link = 'stall';
      break;
    case 'cut':
      if (world.connection !== 'open') return null;
      if (source === 'postcopy-recover' || destination === 'postcopy-recover') {
        // A recovery waiting behind its stalled link: each side still on it pauses.
        if (source === 'postcopy-recover') toSource.push(paused('the return path broke before SHUT: read ECONNRESET'));
        if (destination === 'postcopy-recover') toDestination.push(paused('the migration channel failed: read ECONNRESET'));
        close();
        break;
      }
      if (postcopy) {
        toSource.push(paused('the return path broke before SHUT: read ECONNRESET'));
        toDestination.push(paused('the migration channel failed: read ECONNRESET'));
        close();
        break;
      }
      if (attached) toSource.push(failed('Unable to write to the migration channel'));
      if (destination === 'setup' || destination === 'active') toDestination.push(failed('ECONNRESET'));
      close();
      break;
    case 'corrupt':
      if (postcopy && world.link === 'pass') {
        // The garbage (the driver runs the destination's guest, whose page requests bring some) pauses the
        // destination, which runs the guest now (QEMU's load loop), and it leaves the return path without its
        // SHUT: bad, which pauses the source.
        next.link = 'corrupt';
        toDestination.push(paused('Unknown frame type in migration stream'));
        toSource.push(paused('the destination closed the return path without SHUT'));
        close();
        break;
      }
      if (!attached || world.link !== 'pass' || !(source === 'active' || source === 'pre-switchover')) return null;
      if (pausedForPostcopy(world)) return null;
      next.link = 'corrupt';
      if (source === 'active') {
        toSource.push(failed('Sibling indicated error'));
        toDestination.push(failed('bad frame'));
        close();
      }
      break;
    case 'kill-destination':
      if (world.destination === 'gone') return null;
      // The return path ends before its SHUT: bad, which fails a precopy migration and pauses a postcopy one.
      if (attached) toSource.push(failed('the destination closed the return path without SHUT'));
      if (postcopy) toSource.push(paused('the destination closed the return path without SHUT'));
      next.destination = 'gone';
      next.recoverListening = false;
      close();
      break;
    case 'x-colo-lost-heartbeat': {
      if (event.side === 'destination' && destination === 'gone') return null;
      // Each instance runs the other machine idle: its own side decides.
      const refusal = event.side === 'source' ? refuseXColoLostHeartbeat(source, 'none') : refuseXColoLostHeartbeat('none', destination as MigrationStatus);
      if (refusal !== null) return refused(refusal);
      // The side that fails over drops the link; the other (if it still runs COLO) loses it and stays in colo.
      if (event.side === 'source') {
        toSource.push(LOST_HEARTBEAT, COLO_FAILOVER);
        next.resumed = true;
      } else {
        toDestination.push(LOST_HEARTBEAT, COLO_FAILOVER);
      }
      close();
      break;
    }
    case 'colo-checkpoint': {
      const refusal = refuseColoCheckpoint(source);
      if (refusal !== null) return refused(refusal);
      toSource.push({ type: 'colo-checkpoint' });
      break;
    }
    case 'new-destination':
      if (!['gone', 'completed', 'failed'].includes(destination) || world.destinations >= MAX_DESTINATIONS) return null;
      next.destination = destinationChart.initial();
      next.connection = 'none';
      next.link = 'pass';
      next.destinations += 1;
      next.recoverListening = false;
      break;
  }

  const sourceStep = sourceChart.run(world.source, toSource);
  next.source = sourceStep.snapshot;
  // A migration that unplugged the failover primary plugs it back if it fails or is cancelled; past its end
  // (completed, or switched to postcopy) the primary stays unplugged, which is as if there were none.
  const after = sourceStatusOf(next);
  if (next.primary === 'unplugged' && (after === 'failed' || after === 'cancelled') && !next.switched) next.primary = 'plugged';
  else if (next.primary === 'unplugged' && (after === 'completed' || next.switched)) next.primary = 'none';
  let destinationStep: SideStep = { statuses: [], transitions: [] };
  if (toDestination.length > 0) {
    if (next.destination === 'gone') throw new Error(`the model sends ${toDestination[0]!.type} to a destination that is gone`);
    const step = destinationChart.run(next.destination, toDestination);
    next.destination = step.snapshot;
    destinationStep = step;
  }
  return { world: next, source: sourceStep, destination: destinationStep, refusal: null };
}

const NOTHING: SideStep = { statuses: [], transitions: [] };

/**
 * The real `migrate` command, with the facts its guard reads: the
 * capabilities set for it, or (null) those set now.
 */
function migrateCommand(
  world: World,
  set: { pauseBeforeSwitchover: boolean; postcopy: boolean; colo: boolean; switchoverAck: boolean } | null,
): MigrateCommand {
  const ack = set === null ? switchoverAck(world) : set.switchoverAck;
  const capabilities = set === null
    ? { events: true, 'pause-before-switchover': pauseBeforeSwitchover(world), 'postcopy-ram': postcopyRam(world), 'x-colo': xColo(world) }
    : { events: true, 'pause-before-switchover': set.pauseBeforeSwitchover, 'postcopy-ram': set.postcopy, 'x-colo': set.colo };
  if (ack) Object.assign(capabilities, { 'return-path': true, 'switchover-ack': true });
  return { type: 'migrate', uri: 'tcp:destination', resume: false, runState: sourceRunState(world), blockers: [], capabilities };
}

/**
 * The model state as the traversal tells states apart: both statuses, the
 * link, and only the facts that still decide something.
 */
export function worldKey(world: World): string {
  const source = sourceStatusOf(world);
  const destination = destinationStatusOf(world);
  const facts: string[] = [];
  if (source === 'active' && pauseBeforeSwitchover(world)) facts.push('pause-before-switchover');
  if (['active', 'pre-switchover', 'device'].includes(source) && xColo(world)) facts.push('x-colo');
  if (source === 'setup' && world.blocked) facts.push('channel blocked');
  if (source === 'completed' && world.resumed) facts.push('cont');
  if (['device', 'failed'].includes(source) && world.streamInStall) facts.push('EOF in the stall');
  if (world.primary !== 'none') facts.push(`primary ${world.primary}`);
  if (source === 'wait-unplug' && world.postcopyAsked) facts.push('postcopy asked');
  if (['wait-unplug', 'active'].includes(source) && switchoverAck(world)) {
    facts.push(world.held ? 'switchover held' : world.deviceReady ? 'switchover acked' : 'switchover-ack');
  }
  if (source === 'pre-switchover' && pausedForPostcopy(world)) facts.push('for postcopy');
  else if (world.switched && source === 'completed') facts.push('by postcopy');
  // postcopy-ram decides what migrate-start-postcopy starts in active and pre-switchover; elsewhere only
  // whether the monitor refuses it, which changes nothing.
  else if (postcopyRam(world) && ['wait-unplug', 'active', 'pre-switchover'].includes(source)) facts.push('postcopy-ram');
  const sourcePart = facts.length === 0 ? source : `${source} (${facts.join(', ')})`;
  const destinationPart = world.recoverListening ? `${destination} (recover listening)` : destination;
  const link = world.connection === 'closed' ? 'no link' : `${world.connection === 'open' ? 'connection' : 'listener'} ${world.link}`;
  return `source ${sourcePart} | destination #${world.destinations} ${destinationPart} | ${link}`;
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
    'migrate-resume': happens,
    'migrate-recover': happens,
    'migrate-pause': happens,
    migrate_cancel: happens,
    'migrate-continue': happens,
    'migrate-start-postcopy': happens,
    'lift-max-bandwidth': happens,
    cont: happens,
    stall: happens,
    cut: happens,
    corrupt: happens,
    'kill-destination': happens,
    'new-destination': happens,
    'x-colo-lost-heartbeat': happens,
    'colo-checkpoint': happens,
    'plug-failover-primary': happens,
    'guest-unplug': happens,
    'device-ready': happens,
  },
});
