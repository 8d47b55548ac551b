/**
 * The destination side of a migration as a statechart whose states are the
 * MigrationStatus values a destination reports. Pure: the `incoming` actor
 * (listen, accept channels, load the stream, hand the guest over) is supplied
 * with `destinationMachine.provide({ actors: { incoming } })`.
 *
 * The statuses in which the incoming side works sit inside the compound
 * state `running`, which invokes the incoming actor for that span;
 * `destinationStatus` reads the status off a snapshot.
 *
 * Built: precopy (DESIGN §10: none → setup when incoming starts, → active
 * when the stream arrives, → completed | failed) and postcopy (active →
 * postcopy-active at POSTCOPY_LISTEN → completed, or postcopy-paused when a
 * channel breaks or `migrate-pause` asks; `migrate-recover` listens anew,
 * postcopy-recover once the source reconnects, postcopy-active once it
 * resumes). With x-colo the loaded guest becomes the COLO secondary
 * (active → colo) and runs on as checkpoints arrive, until
 * `x-colo-lost-heartbeat` makes it take over (colo → completed).
 * One incoming migration per process: nothing leaves completed or failed.
 */
import { assign, forwardTo, fromCallback, setup, type SnapshotFrom } from 'xstate';
import { announce } from './announce.js';
import type { DestinationEvent, IncomingActorCommand, StatusEmitted } from './events.js';
import { migrationActions } from './migration-actions.js';
import { refuseMigrateIncoming } from './refusals.js';
import type { MigrationStatus } from './status.js';

export interface DestinationContext {
  /** Why the incoming migration failed (QEMU prints it as "load of migration failed: …"). */
  error: string | null;
  /** The URI incoming listens on. */
  uri: string;
}

export interface IncomingActorInput {
  uri: string;
}

/**
 * The placeholder for QEMU's incoming side: sends back IncomingActorReport
 * events. Replaced by the real actor through `provide`.
 */
const incoming = fromCallback<IncomingActorCommand, IncomingActorInput>(() => {});

// migrate-pause, migrate-recover: the actor does the work and reports what happened.
const toIncoming = { actions: 'forwardToIncoming' } as const;
const paused = { target: '#postcopy-paused', actions: 'recordError' } as const;

/**
 * The destination migration statechart.
 *
 * @example
 * const actor = createActor(destinationMachine.provide({ actors: { incoming } }));
 * actor.on('status', ({ status }) => monitor.event('MIGRATION', { status }));
 * actor.start();
 * actor.send({ type: 'migrate-incoming', uri: 'tcp:0.0.0.0:4444', runState: guest.runState });
 */
export const destinationMachine = setup({
  types: {
    context: {} as DestinationContext,
    events: {} as DestinationEvent,
    emitted: {} as StatusEmitted,
    children: {} as { incoming: 'incoming' },
  },
  actors: { incoming },
  guards: {
    incomingAllowed: ({ event }, params: { status: MigrationStatus }) =>
      event.type === 'migrate-incoming' && refuseMigrateIncoming(params.status, event) === null,
  },
  actions: {
    ...migrationActions<DestinationContext, DestinationEvent>(),
    startIncoming: assign({ uri: ({ event, context }) => (event.type === 'migrate-incoming' ? event.uri : context.uri) }),
    forwardToIncoming: forwardTo('incoming'),
  },
}).createMachine({
  id: 'destination',
  context: { error: null, uri: '' },
  initial: 'none',
  states: {
    // Only ever the initial state, so nothing is announced.
    none: {
      id: 'none',
      on: {
        'migrate-incoming': {
          guard: { type: 'incomingAllowed', params: { status: 'none' } },
          target: '#setup',
          actions: 'startIncoming',
        },
      },
    },
    running: {
      invoke: {
        id: 'incoming',
        src: 'incoming',
        input: ({ context }) => ({ uri: context.uri }),
        onError: { target: '#failed', actions: 'recordActorError' },
      },
      initial: 'setup',
      states: {
        // Listening; a listener or channel error before the first byte fails too.
        setup: {
          id: 'setup',
          entry: announce('setup'),
          on: {
            'stream.arrived': '#active',
            failed: { target: '#failed', actions: 'recordError' },
          },
        },
        active: {
          id: 'active',
          entry: announce('active'),
          on: {
            'postcopy.listen': '#postcopy-active',
            'colo.start': '#colo',
            'load.done': '#completed',
            failed: { target: '#failed', actions: 'recordError' },
          },
        },
        // The guest runs here, fetching the pages it touches; a broken channel pauses, any other error fails.
        'postcopy-active': {
          id: 'postcopy-active',
          entry: announce('postcopy-active'),
          on: {
            'load.done': '#completed',
            'postcopy.paused': paused,
            'migrate-pause': toIncoming,
            failed: { target: '#failed', actions: 'recordError' },
          },
        },
        // Waiting for recovery: the vCPUs wait on their faults, nothing is lost. migrate-recover
        // listens at a new address; the source connecting there starts the recovery. Nothing fails
        // from here on (a failure pauses, the guest running here).
        'postcopy-paused': {
          id: 'postcopy-paused',
          entry: announce('postcopy-paused'),
          on: {
            'migrate-recover': toIncoming,
            'postcopy.recover': '#postcopy-recover',
          },
        },
        // The COLO secondary: checkpoints come in and are applied; a broken link leaves it here
        // (COLO_EXIT with reason error) until x-colo-lost-heartbeat makes it take over.
        colo: {
          id: 'colo',
          entry: announce('colo'),
          on: {
            'x-colo-lost-heartbeat': toIncoming,
            'colo.failover': '#completed',
          },
        },
        // The source asked for the received bitmaps and will send POSTCOPY_RESUME; RESUME_ACK answers it.
        'postcopy-recover': {
          id: 'postcopy-recover',
          entry: announce('postcopy-recover'),
          on: {
            'postcopy.resumed': '#postcopy-active',
            'postcopy.paused': paused,
            'migrate-pause': toIncoming,
          },
        },
      },
    },
    completed: {
      id: 'completed',
      entry: announce('completed'),
    },
    failed: {
      id: 'failed',
      entry: announce('failed'),
    },
  },
});

export type DestinationSnapshot = SnapshotFrom<typeof destinationMachine>;

/** The MigrationStatus a destination snapshot stands for. */
export function destinationStatus(snapshot: DestinationSnapshot): MigrationStatus {
  const value = snapshot.value;
  return typeof value === 'string' ? value : value.running;
}
