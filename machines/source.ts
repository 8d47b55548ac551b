/**
 * The source side of a migration as a statechart whose states are QEMU's
 * MigrationStatus values. Pure: the work is done by the `migration` actor
 * that the service supplies with `sourceMachine.provide({ actors: { migration } })`.
 *
 * The statuses in which QEMU's migration thread is alive sit inside the
 * compound state `running` (QEMU's migration_is_running), which invokes
 * the migration actor for exactly that span; `sourceStatus` reads the
 * status off a snapshot.
 *
 * Built: precopy, with pause-before-switchover, failure and cancel; postcopy
 * (`migrate-start-postcopy` asks, the actor switches when it can, and a
 * channel that breaks after that pauses the migration instead of failing
 * it), with `migrate-pause` and recovery (`migrate resume=true` in
 * postcopy-paused: postcopy-recover once reconnected, postcopy-active once
 * the handshake is through, back to postcopy-paused if it breaks again).
 * With x-colo, a completed stream goes to `colo` instead of `completed`:
 * the migration thread runs the COLO checkpoints from there (so `colo`
 * sits inside `running`), until `x-colo-lost-heartbeat` fails over and
 * the status becomes `completed`.
 *
 * Two gates hold a migration back, as in QEMU: failover primary devices
 * still plugged into the guest keep it in `wait-unplug` after setup until
 * the guest has unplugged them; and with `switchover-ack`, a converged
 * precopy asks to switch over (`switchover.request`) and is told to go on
 * iterating until the destination's SWITCHOVER_ACK came (`switchover.acked`),
 * unless the guest is stopped.
 */
import { assign, forwardTo, fromCallback, sendTo, setup, stateIn, type SnapshotFrom } from 'xstate';
import { announce } from './announce.js';
import type { MigrationActorMessage, SourceEvent, StatusEmitted } from './events.js';
import { migrationActions } from './migration-actions.js';
import { refuseMigrate, refuseMigrateContinue } from './refusals.js';
import type { MigrationStatus } from './status.js';

export interface SourceContext {
  /** query-migrate's error-desc: why the last migration failed. */
  error: string | null;
  /** The URI and capabilities the current (or last) migration started with. */
  uri: string;
  capabilities: Readonly<Record<string, boolean>>;
  /** The guest was stopped for the switch to postcopy (not for a precopy completion). */
  postcopySwitch: boolean;
  /** The destination's SWITCHOVER_ACK came in during this migration. */
  switchoverAcked: boolean;
}

export interface MigrationActorInput {
  uri: string;
  capabilities: Readonly<Record<string, boolean>>;
}

/**
 * The placeholder for QEMU's migration thread: receives `migrate_cancel` and
 * `migrate-continue`, sends back MigrationActorReport events. Replaced by the
 * real actor through `provide`; doing nothing keeps the definition pure.
 */
const migration = fromCallback<MigrationActorMessage, MigrationActorInput>(() => {});

/** `migrate` from an idle status: migrate_init resets to none and goes straight to setup. */
const startFrom = (status: MigrationStatus) =>
  ({
    guard: { type: 'migrateAllowed', params: { status } },
    target: '#setup',
    actions: 'startMigration',
  }) as const;

// migrate_cancel from a running status; the actor is told so it can shut the channels and wake a pause.
const cancel = { target: '#cancelling', actions: 'forwardToMigration' } as const;
// A request to switch to postcopy: only the actor knows when it can.
const startPostcopy = { actions: 'forwardToMigration' } as const;
const fail = { target: '#failed', actions: 'recordError' } as const;
// migrate-pause (postcopy-active, postcopy-recover): the actor breaks its connections off and reports postcopy.paused.
const pause = { actions: 'forwardToMigration' } as const;
const paused = { target: '#postcopy-paused', actions: 'recordError' } as const;
// SWITCHOVER_ACK may come as soon as the return path is open: from setup on.
const acked = { actions: 'recordSwitchoverAck' } as const;

/**
 * The source migration statechart.
 *
 * @example
 * const actor = createActor(sourceMachine.provide({ actors: { migration } }));
 * actor.on('status', ({ status }) => monitor.event('MIGRATION', { status }));
 * actor.start();
 * const refusal = refuseMigrate(sourceStatus(actor.getSnapshot()), command);
 * if (refusal === null) actor.send(command);
 */
export const sourceMachine = setup({
  types: {
    context: {} as SourceContext,
    events: {} as SourceEvent,
    emitted: {} as StatusEmitted,
    children: {} as { migration: 'migration' },
  },
  actors: { migration },
  guards: {
    migrateAllowed: ({ event }, params: { status: MigrationStatus }) =>
      event.type === 'migrate' && refuseMigrate(params.status, event) === null,
    continueAllowed: ({ event }, params: { status: MigrationStatus }) =>
      event.type === 'migrate-continue' && refuseMigrateContinue(params.status, event.state) === null,
    continueToPostcopy: ({ event, context }, params: { status: MigrationStatus }) =>
      context.postcopySwitch && event.type === 'migrate-continue' && refuseMigrateContinue(params.status, event.state) === null,
    pauseBeforeSwitchover: ({ context }) => context.capabilities['pause-before-switchover'] === true,
    postcopyRam: ({ context }) => context.capabilities['postcopy-ram'] === true,
    postcopySwitch: ({ context }) => context.postcopySwitch,
    xColo: ({ context }) => context.capabilities['x-colo'] === true,
    // QEMU's migration_can_switchover.
    switchoverAllowed: ({ context, event }) =>
      context.capabilities['switchover-ack'] !== true || context.switchoverAcked || (event.type === 'switchover.request' && !event.guestRunning),
  },
  actions: {
    ...migrationActions<SourceContext, SourceEvent>(),
    // migrate_init: a new migration forgets the last one's error.
    startMigration: assign(({ event, context }) =>
      event.type === 'migrate'
        ? { error: null, uri: event.uri, capabilities: event.capabilities, postcopySwitch: false, switchoverAcked: false }
        : context,
    ),
    // A resume keeps the migration (and its capabilities); only the address is new.
    resumeMigration: assign({ uri: ({ event, context }) => (event.type === 'migrate' ? event.uri : context.uri) }),
    recordSwitchover: assign({
      postcopySwitch: ({ event, context }) => (event.type === 'switchover.pause' ? event.postcopy === true : context.postcopySwitch),
    }),
    forwardToMigration: forwardTo('migration'),
    recordSwitchoverAck: assign({ switchoverAcked: true }),
    allowSwitchover: sendTo('migration', { type: 'switchover.answer', allowed: true }),
    holdSwitchover: sendTo('migration', { type: 'switchover.answer', allowed: false }),
  },
}).createMachine({
  id: 'source',
  context: { error: null, uri: '', capabilities: {}, postcopySwitch: false, switchoverAcked: false },
  initial: 'none',
  states: {
    // Only ever the initial state (QEMU never reports none as an event), so nothing is announced.
    none: {
      id: 'none',
      on: { migrate: startFrom('none') },
    },
    running: {
      invoke: {
        id: 'migration',
        src: 'migration',
        input: ({ context }) => ({ uri: context.uri, capabilities: context.capabilities }),
        // An actor that throws must not leave the migration hanging in a running status.
        onError: [
          { guard: stateIn('#cancelling'), target: '#cancelled' },
          { target: '#failed', actions: 'recordActorError' },
        ],
      },
      initial: 'setup',
      states: {
        setup: {
          id: 'setup',
          entry: announce('setup'),
          on: {
            'unplug.wait': '#wait-unplug',
            'setup.done': '#active',
            'switchover.acked': acked,
            failed: fail,
            migrate_cancel: cancel,
            'migrate-start-postcopy': startPostcopy,
          },
        },
        // The guest was asked to unplug its failover primaries; setup is done once it has.
        'wait-unplug': {
          id: 'wait-unplug',
          entry: announce('wait-unplug'),
          on: {
            'setup.done': '#active',
            'switchover.acked': acked,
            failed: fail,
            migrate_cancel: cancel,
            'migrate-start-postcopy': startPostcopy,
          },
        },
        active: {
          id: 'active',
          entry: announce('active'),
          on: {
            // The switchover-ack gate: held, the actor goes on iterating and asks again at the next convergence.
            'switchover.request': [{ guard: 'switchoverAllowed', actions: 'allowSwitchover' }, { actions: 'holdSwitchover' }],
            'switchover.acked': acked,
            'switchover.pause': { guard: 'pauseBeforeSwitchover', target: '#pre-switchover', actions: 'recordSwitchover' },
            'postcopy.start': { guard: 'postcopyRam', target: '#postcopy-active' },
            'colo.start': { guard: 'xColo', target: '#colo' },
            completed: '#completed',
            failed: fail,
            migrate_cancel: cancel,
            'migrate-start-postcopy': startPostcopy,
          },
        },
        // The guest is stopped; the migration waits for migrate-continue (or a cancel, which wakes it).
        // Released for postcopy, it reports postcopy.start once it switches; otherwise devices go next.
        'pre-switchover': {
          id: 'pre-switchover',
          entry: announce('pre-switchover'),
          on: {
            'migrate-continue': [
              {
                guard: { type: 'continueToPostcopy', params: { status: 'pre-switchover' } },
                actions: 'forwardToMigration',
              },
              {
                guard: { type: 'continueAllowed', params: { status: 'pre-switchover' } },
                target: '#device',
                actions: 'forwardToMigration',
              },
            ],
            'postcopy.start': { guard: 'postcopySwitch', target: '#postcopy-active' },
            failed: fail,
            migrate_cancel: cancel,
            'migrate-start-postcopy': startPostcopy,
          },
        },
        device: {
          id: 'device',
          entry: announce('device'),
          on: {
            'colo.start': { guard: 'xColo', target: '#colo' },
            completed: '#completed',
            failed: fail,
            migrate_cancel: cancel,
          },
        },
        // Past the point of no return: the guest runs on the destination. migrate_cancel is refused here
        // (refuseMigrateCancel); a broken channel pauses, a failure that is not I/O still fails (QEMU).
        'postcopy-active': {
          id: 'postcopy-active',
          entry: announce('postcopy-active'),
          on: {
            completed: '#completed',
            'postcopy.paused': paused,
            'migrate-pause': pause,
            failed: fail,
          },
        },
        // Waiting for recovery; both guests are intact (the destination's vCPUs wait on their faults).
        // `migrate resume=true` reconnects: postcopy-recover once the connection is up (a failed
        // connection reports postcopy.paused again, with why).
        'postcopy-paused': {
          id: 'postcopy-paused',
          entry: announce('postcopy-paused'),
          on: {
            migrate: { guard: { type: 'migrateAllowed', params: { status: 'postcopy-paused' } }, actions: ['resumeMigration', 'forwardToMigration'] },
            'postcopy.recover': '#postcopy-recover',
            'postcopy.paused': { actions: 'recordError' },
            failed: fail,
          },
        },
        // The recovery handshake: received bitmaps, then POSTCOPY_RESUME answered by RESUME_ACK.
        'postcopy-recover': {
          id: 'postcopy-recover',
          entry: announce('postcopy-recover'),
          on: {
            'postcopy.resumed': '#postcopy-active',
            'postcopy.paused': paused,
            'migrate-pause': pause,
            failed: fail,
          },
        },
        // COLO checkpointing: the guest runs here and on the secondary. migrate_cancel does nothing here
        // (QEMU's migration_is_running leaves colo out); only a failover ends it.
        colo: {
          id: 'colo',
          entry: announce('colo'),
          on: {
            'x-colo-lost-heartbeat': { actions: 'forwardToMigration' },
            'colo-checkpoint': { actions: 'forwardToMigration' },
            'colo.failover': '#completed',
          },
        },
        // Only cleanup ends a cancel: late failure or completion reports do not change it (QEMU 8.2).
        // Unlike QEMU, a cancel that came after the whole stream was sent yields to the destination's
        // SHUT (cancel.too-late): restarting the guest here too would leave two copies running.
        cancelling: {
          id: 'cancelling',
          entry: announce('cancelling'),
          on: { 'cancel.done': '#cancelled', 'cancel.too-late': '#completed' },
        },
      },
    },
    completed: {
      id: 'completed',
      entry: announce('completed'),
      on: { migrate: startFrom('completed') },
    },
    failed: {
      id: 'failed',
      entry: announce('failed'),
      on: { migrate: startFrom('failed') },
    },
    cancelled: {
      id: 'cancelled',
      entry: announce('cancelled'),
      on: { migrate: startFrom('cancelled') },
    },
  },
});

export type SourceSnapshot = SnapshotFrom<typeof sourceMachine>;

/** The MigrationStatus a source snapshot stands for. */
export function sourceStatus(snapshot: SourceSnapshot): MigrationStatus {
  const value = snapshot.value;
  return typeof value === 'string' ? value : value.running;
}
