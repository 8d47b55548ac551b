import { expect } from 'chai';
import { fromCallback, initialTransition, transition } from 'xstate';
import { getShortestPaths, getSimplePaths } from 'xstate/graph';
import type { MigrateCommand, MigrationActorMessage, SourceEvent } from '../machines/events.js';
import {
  migrationActive,
  refuseMigrate,
  refuseMigrateCancel,
  refuseMigrateContinue,
} from '../machines/refusals.js';
import { sourceMachine, sourceStatus, type MigrationActorInput, type SourceSnapshot } from '../machines/source.js';
import { inPostcopy, isRunning, migrationStatuses, type MigrationStatus } from '../machines/status.js';
import { emittedStatuses, sortedStatuses, statechartHarness, targetedStateIds } from './support/statechart-harness.js';

const migrate = (facts: Partial<Omit<MigrateCommand, 'type'>> = {}): MigrateCommand => ({
  type: 'migrate',
  uri: 'tcp:127.0.0.1:4444',
  resume: false,
  runState: 'running',
  blockers: [],
  capabilities: {},
  ...facts,
});
const pauseBeforeSwitchover = { 'pause-before-switchover': true };
const postcopyRam = { 'postcopy-ram': true };
const xColo = { 'x-colo': true };
const startPostcopy: SourceEvent = { type: 'migrate-start-postcopy' };
const postcopyStart: SourceEvent = { type: 'postcopy.start' };
const postcopyPaused = (error: string): SourceEvent => ({ type: 'postcopy.paused', error });
const setupDone: SourceEvent = { type: 'setup.done' };
const switchoverPause: SourceEvent = { type: 'switchover.pause' };
const completed: SourceEvent = { type: 'completed' };
const cancel: SourceEvent = { type: 'migrate_cancel' };
const cancelDone: SourceEvent = { type: 'cancel.done' };
const continueFrom = (state: MigrationStatus): SourceEvent => ({ type: 'migrate-continue', state });
const failed = (error: string): SourceEvent => ({ type: 'failed', error });
const unplugWait: SourceEvent = { type: 'unplug.wait' };
const switchoverAcked: SourceEvent = { type: 'switchover.acked' };
const switchoverRequest = (guestRunning = true): SourceEvent => ({ type: 'switchover.request', guestRunning });
const switchoverAck = { 'return-path': true, 'switchover-ack': true };

/** Events that bring a fresh machine into each built running status. */
const into: Record<'setup' | 'wait-unplug' | 'active' | 'pre-switchover' | 'device', SourceEvent[]> = {
  setup: [migrate()],
  'wait-unplug': [migrate(), unplugWait],
  active: [migrate(), setupDone],
  'pre-switchover': [migrate({ capabilities: pauseBeforeSwitchover }), setupDone, switchoverPause],
  device: [migrate({ capabilities: pauseBeforeSwitchover }), setupDone, switchoverPause, continueFrom('pre-switchover')],
};
const statusesInto: Record<keyof typeof into, MigrationStatus[]> = {
  setup: ['setup'],
  'wait-unplug': ['setup', 'wait-unplug'],
  active: ['setup', 'active'],
  'pre-switchover': ['setup', 'active', 'pre-switchover'],
  device: ['setup', 'active', 'pre-switchover', 'device'],
};
const cancellable = Object.keys(into) as (keyof typeof into)[];

const { run, reach, step, statusChanges } = statechartHarness(sourceMachine, sourceStatus);

/** A migration actor that records what it is given, for checking the machine's side of the contract. */
function recordingMigration() {
  const log = { inputs: [] as MigrationActorInput[], received: [] as MigrationActorMessage[], stopped: 0 };
  const machine = sourceMachine.provide({
    actors: {
      migration: fromCallback<MigrationActorMessage, MigrationActorInput>(({ input, receive }) => {
        log.inputs.push(input);
        receive((command) => log.received.push(command));
        return () => {
          log.stopped += 1;
        };
      }),
    },
  });
  return { machine, log };
}

describe('source machine', () => {
  describe('precopy', () => {
    it('starts in none without announcing it', () => {
      const [snapshot, actions] = initialTransition(sourceMachine);
      expect(sourceStatus(snapshot)).to.equal('none');
      expect(snapshot.context).to.deep.equal({ error: null, uri: '', capabilities: {}, postcopySwitch: false, switchoverAcked: false });
      expect(emittedStatuses(actions)).to.deep.equal([]);
    });

    it('migrate goes from none straight to setup and starts the migration actor with the uri and capabilities', () => {
      const { machine, log } = recordingMigration();
      const { snapshot, statuses } = run([migrate({ uri: 'unix:/tmp/m.sock', capabilities: { events: true } })], machine);
      expect(sourceStatus(snapshot)).to.equal('setup');
      expect(statuses).to.deep.equal(['setup']);
      expect(log.inputs).to.deep.equal([{ uri: 'unix:/tmp/m.sock', capabilities: { events: true } }]);
    });

    it('a full precopy announces setup, active, completed and stops the migration actor', () => {
      const { machine, log } = recordingMigration();
      const { snapshot, statuses } = run([migrate(), setupDone, completed], machine);
      expect(statuses).to.deep.equal(['setup', 'active', 'completed']);
      expect(sourceStatus(snapshot)).to.equal('completed');
      expect(snapshot.context.error).to.equal(null);
      expect(log.stopped).to.equal(1);
    });

    it('with pause-before-switchover it waits in pre-switchover for migrate-continue, then device, completed', () => {
      const { snapshot, statuses } = run([...into.device, completed]);
      expect(statuses).to.deep.equal(['setup', 'active', 'pre-switchover', 'device', 'completed']);
      expect(sourceStatus(snapshot)).to.equal('completed');
    });

    it('stays in pre-switchover until migrate-continue arrives', () => {
      const paused = reach(into['pre-switchover']);
      expect(step(paused, completed).status).to.equal('pre-switchover');
      expect(step(paused, setupDone).status).to.equal('pre-switchover');
    });

    it('does not pause before switchover when the capability is off', () => {
      const { status, emitted } = step(reach(into.active), switchoverPause);
      expect(status).to.equal('active');
      expect(emitted).to.deep.equal([]);
    });

    it('passes migrate-continue and migrate_cancel on to the migration actor', () => {
      const { machine, log } = recordingMigration();
      run([...into.device, cancel], machine);
      expect(log.received).to.deep.equal([continueFrom('pre-switchover'), cancel]);
    });

    it('wakes a paused migration with the cancel: the actor in pre-switchover gets migrate_cancel', () => {
      const { machine, log } = recordingMigration();
      const { statuses } = run([...into['pre-switchover'], cancel, cancelDone], machine);
      expect(log.received).to.deep.equal([cancel]);
      expect(statuses).to.deep.equal(['setup', 'active', 'pre-switchover', 'cancelling', 'cancelled']);
      expect(log.stopped).to.equal(1);
    });

    it('ignores reports that do not belong to the current status', () => {
      const setup = reach(into.setup);
      expect(step(setup, completed).status).to.equal('setup');
      expect(step(setup, switchoverPause).status).to.equal('setup');
      expect(step(setup, cancelDone).status).to.equal('setup');
      expect(step(reach(into.active), setupDone).status).to.equal('active');
    });

    for (const end of ['completed', 'failed', 'cancelled'] as const) {
      it(`starts a new migration from ${end} at setup, with a fresh actor and no old error`, () => {
        const ending: Record<typeof end, SourceEvent[]> = {
          completed: [completed],
          failed: [failed('Connection reset by peer')],
          cancelled: [cancel, cancelDone],
        };
        const { machine, log } = recordingMigration();
        const { snapshot, statuses } = run(
          [...into.active, ...ending[end], migrate({ uri: 'tcp:10.0.0.2:4444' })],
          machine,
        );
        expect(statuses.slice(-2)).to.deep.equal([end, 'setup']);
        expect(sourceStatus(snapshot)).to.equal('setup');
        expect(snapshot.context.error).to.equal(null);
        expect(log.inputs.map((i) => i.uri)).to.deep.equal(['tcp:127.0.0.1:4444', 'tcp:10.0.0.2:4444']);
        expect(log.stopped).to.equal(1);
      });
    }
  });

  describe('failure', () => {
    for (const status of cancellable) {
      it(`fails from ${status}, keeping the error for error-desc`, () => {
        const { snapshot, statuses } = run([...into[status], failed('Unable to write to socket: Broken pipe')]);
        expect(statuses).to.deep.equal([...statusesInto[status], 'failed']);
        expect(sourceStatus(snapshot)).to.equal('failed');
        expect(snapshot.context.error).to.equal('Unable to write to socket: Broken pipe');
      });
    }

    it('lets only cleanup end a cancel: failure and completion reports while cancelling change nothing', () => {
      const cancelling = reach([...into.active, cancel]);
      for (const event of [failed('Channel shut down'), completed, setupDone]) {
        const { status, emitted, next } = step(cancelling, event);
        expect(status).to.equal('cancelling');
        expect(emitted).to.deep.equal([]);
        expect(next.context.error).to.equal(null);
      }
      const { snapshot, statuses } = run([...into.active, cancel, failed('Channel shut down'), cancelDone]);
      expect(statuses).to.deep.equal(['setup', 'active', 'cancelling', 'cancelled']);
      expect(snapshot.context.error).to.equal(null);
    });

    it('ends a cancel that came after the whole stream as completed when the destination confirms (cancel.too-late)', () => {
      const { snapshot, statuses } = run([...into.active, cancel, { type: 'cancel.too-late' }]);
      expect(statuses).to.deep.equal(['setup', 'active', 'cancelling', 'completed']);
      expect(snapshot.context.error).to.equal(null);
    });

    it('fails the migration with the message of a migration actor that throws', () => {
      const machine = sourceMachine.provide({
        actors: {
          migration: fromCallback<MigrationActorMessage, MigrationActorInput>(() => {
            throw new Error('cannot connect: ECONNREFUSED');
          }),
        },
      });
      const { snapshot, statuses } = run([migrate()], machine);
      expect(statuses).to.deep.equal(['setup', 'failed']);
      expect(snapshot.context.error).to.equal('cannot connect: ECONNREFUSED');
    });

    it('ends a cancel as cancelled when the migration actor throws during it', () => {
      const machine = sourceMachine.provide({
        actors: {
          migration: fromCallback<MigrationActorMessage, MigrationActorInput>(({ receive }) => {
            receive((command) => {
              if (command.type === 'migrate_cancel') throw new Error('shutdown failed');
            });
          }),
        },
      });
      const { snapshot, statuses } = run([...into.active, cancel], machine);
      expect(statuses).to.deep.equal(['setup', 'active', 'cancelling', 'cancelled']);
      expect(snapshot.context.error).to.equal(null);
    });
  });

  describe('cancel', () => {
    for (const status of cancellable) {
      it(`cancels from ${status}: cancelling, then cancelled once cleanup is done`, () => {
        const { snapshot, statuses } = run([...into[status], cancel, cancelDone]);
        expect(statuses).to.deep.equal([...statusesInto[status], 'cancelling', 'cancelled']);
        expect(sourceStatus(snapshot)).to.equal('cancelled');
      });
    }

    it('stays cancelling until cleanup reports, and a second migrate_cancel changes nothing', () => {
      const cancelling = reach([...into.setup, cancel]);
      expect(sourceStatus(cancelling)).to.equal('cancelling');
      const again = step(cancelling, cancel);
      expect(again.status).to.equal('cancelling');
      expect(again.emitted).to.deep.equal([]);
    });

    for (const events of [[], [...into.active, completed], [...into.active, failed('x')], [...into.active, cancel, cancelDone]]) {
      const idle = reach(events);
      const status = sourceStatus(idle);
      it(`accepts migrate_cancel in ${status} as a no-op`, () => {
        expect(refuseMigrateCancel(status)).to.equal(null);
        const { status: after, emitted } = step(idle, cancel);
        expect(after).to.equal(status);
        expect(emitted).to.deep.equal([]);
      });
    }

    for (const status of ['postcopy-active', 'postcopy-paused', 'postcopy-recover'] as const) {
      it(`refuses migrate_cancel in ${status}`, () => {
        expect(refuseMigrateCancel(status)).to.equal(
          `Cannot cancel a migration in ${status}: the guest already runs on the destination, and only the destination has its latest state`,
        );
      });
    }

    it('accepts migrate_cancel in every status outside postcopy', () => {
      const refused = migrationStatuses.filter((s) => refuseMigrateCancel(s) !== null);
      expect(refused).to.deep.equal(['postcopy-active', 'postcopy-paused', 'postcopy-recover']);
    });
  });

  describe('refusals', () => {
    const refusedMigrate = (status: MigrationStatus, facts: Partial<Omit<MigrateCommand, 'type'>>) =>
      refuseMigrate(status, migrate(facts));

    for (const status of cancellable) {
      it(`refuses migrate in ${status}: a migration is in progress`, () => {
        const snapshot = reach(into[status]);
        expect(refusedMigrate(status, {})).to.equal("There's a migration process in progress");
        const { status: after, emitted } = step(snapshot, migrate());
        expect(after).to.equal(status);
        expect(emitted).to.deep.equal([]);
      });
    }

    it('refuses migrate while cancelling', () => {
      const cancelling = reach([...into.active, cancel]);
      expect(refusedMigrate('cancelling', {})).to.equal(migrationActive);
      expect(step(cancelling, migrate()).status).to.equal('cancelling');
    });

    const refusedFromNone: [string, Partial<Omit<MigrateCommand, 'type'>>, string][] = [
      ['a guest waiting for an incoming migration', { runState: 'inmigrate' }, 'Guest is waiting for an incoming migration'],
      [
        'a guest paused by a previous migration',
        { runState: 'postmigrate' },
        "Can't migrate the vm that was paused due to previous migration",
      ],
      [
        'a blocked guest, with the first blocker',
        { blockers: ["State blocked by non-migratable device 'vfio0'", 'second blocker'] },
        "State blocked by non-migratable device 'vfio0'",
      ],
      ['resume without a paused migration', { resume: true }, 'Cannot resume if there is no paused migration'],
    ];
    for (const [what, facts, text] of refusedFromNone) {
      it(`refuses migrate of ${what}, leaving the machine in none`, () => {
        expect(refusedMigrate('none', facts)).to.equal(text);
        const { status, emitted } = step(reach([]), migrate(facts));
        expect(status).to.equal('none');
        expect(emitted).to.deep.equal([]);
      });
    }

    it('checks resume before anything else, as migrate_prepare does', () => {
      expect(refusedMigrate('active', { resume: true })).to.equal('Cannot resume if there is no paused migration');
      expect(refusedMigrate('postcopy-paused', { resume: true })).to.equal(null);
      expect(refusedMigrate('postcopy-paused', { resume: true, capabilities: { 'release-ram': true } })).to.equal(
        'Postcopy recovery cannot work when release-ram capability is set',
      );
      expect(refusedMigrate('postcopy-paused', {})).to.equal(migrationActive);
    });

    it('checks the run state before blockers', () => {
      expect(refusedMigrate('none', { runState: 'postmigrate', blockers: ['blocked'] })).to.equal(
        "Can't migrate the vm that was paused due to previous migration",
      );
    });

    it('refuses a new migrate after completion while the guest is postmigrate, and allows it after cont', () => {
      const done = reach([...into.active, completed]);
      expect(step(done, migrate({ runState: 'postmigrate' })).status).to.equal('completed');
      expect(step(done, migrate({ runState: 'running' })).status).to.equal('setup');
    });

    it('refuses migrate-continue unless the given state is the current status', () => {
      expect(refuseMigrateContinue('active', 'pre-switchover')).to.equal('Migration not in expected state: active');
      expect(refuseMigrateContinue('none', 'pre-switchover')).to.equal('Migration not in expected state: none');
      expect(refuseMigrateContinue('pre-switchover', 'pre-switchover')).to.equal(null);
      expect(refuseMigrateContinue('active', 'active')).to.equal(null);
    });

    it('does not move on a refused migrate-continue', () => {
      const active = step(reach(into.active), continueFrom('pre-switchover'));
      expect(active.status).to.equal('active');
      const paused = reach(into['pre-switchover']);
      expect(refuseMigrateContinue('pre-switchover', 'active')).to.equal(
        'Migration not in expected state: pre-switchover',
      );
      const stay = step(paused, continueFrom('active'));
      expect(stay.status).to.equal('pre-switchover');
      expect(stay.emitted).to.deep.equal([]);
    });

    it('takes an accepted migrate-continue outside pre-switchover without moving, as QEMU does', () => {
      expect(step(reach(into.active), continueFrom('active')).status).to.equal('active');
    });
  });

  describe('wait-unplug', () => {
    it('goes from setup to wait-unplug while the guest unplugs its failover primaries, then active once setup is done', () => {
      const { statuses } = run([migrate(), unplugWait, setupDone]);
      expect(statuses).to.deep.equal(['setup', 'wait-unplug', 'active']);
    });

    it('a cancel there is passed to the actor and ends cancelled; a failure there fails', () => {
      const { machine, log } = recordingMigration();
      expect(run([migrate(), unplugWait, cancel, cancelDone], machine).statuses).to.deep.equal(['setup', 'wait-unplug', 'cancelling', 'cancelled']);
      expect(log.received).to.deep.equal([cancel]);
      const { snapshot, statuses } = run([migrate(), unplugWait, failed('Broken pipe')]);
      expect(statuses.at(-1)).to.equal('failed');
      expect(snapshot.context.error).to.equal('Broken pipe');
    });

    it('is reached only from setup', () => {
      expect(step(reach(into.active), unplugWait).status).to.equal('active');
    });
  });

  describe('the switchover-ack gate', () => {
    /** The answers the actor got to its switchover.request reports. */
    const answers = (events: SourceEvent[]) => {
      const { machine, log } = recordingMigration();
      run(events, machine);
      return log.received.filter((m) => m.type === 'switchover.answer').map((m) => (m as { allowed: boolean }).allowed);
    };
    const active = [migrate({ capabilities: switchoverAck }), setupDone];

    it('without the capability, every request is allowed', () => {
      expect(answers([migrate(), setupDone, switchoverRequest()])).to.deep.equal([true]);
    });

    it('with it, a running guest is held until SWITCHOVER_ACK, then allowed; the status stays active meanwhile', () => {
      expect(answers([...active, switchoverRequest(), switchoverRequest(), switchoverAcked, switchoverRequest()])).to.deep.equal([false, false, true]);
      expect(run([...active, switchoverRequest()]).statuses).to.deep.equal(['setup', 'active']);
    });

    it('an ack that came during setup or wait-unplug counts', () => {
      expect(answers([migrate({ capabilities: switchoverAck }), switchoverAcked, setupDone, switchoverRequest()])).to.deep.equal([true]);
      expect(answers([migrate({ capabilities: switchoverAck }), unplugWait, switchoverAcked, setupDone, switchoverRequest()])).to.deep.equal([true]);
    });

    it('a stopped guest needs no ack (QEMU)', () => {
      expect(answers([...active, switchoverRequest(false)])).to.deep.equal([true]);
    });

    it('a new migration forgets the last one\'s ack', () => {
      const { snapshot } = run([...active, switchoverAcked, completed, migrate({ capabilities: switchoverAck })]);
      expect(snapshot.context.switchoverAcked).to.equal(false);
    });
  });

  describe('model (xstate/graph)', () => {
    // Payloads for every event the machine listens to; the graph tries each in every state.
    const events: SourceEvent[] = [
      migrate(),
      migrate({ capabilities: pauseBeforeSwitchover }),
      migrate({ runState: 'inmigrate' }),
      migrate({ runState: 'postmigrate' }),
      migrate({ blockers: ['blocked'] }),
      migrate({ resume: true }),
      migrate({ capabilities: postcopyRam }),
      migrate({ capabilities: { ...postcopyRam, ...pauseBeforeSwitchover } }),
      migrate({ capabilities: xColo }),
      migrate({ capabilities: { ...xColo, ...pauseBeforeSwitchover } }),
      migrate({ capabilities: switchoverAck }),
      unplugWait,
      switchoverAcked,
      switchoverRequest(true),
      switchoverRequest(false),
      startPostcopy,
      postcopyStart,
      { type: 'colo.start' },
      { type: 'x-colo-lost-heartbeat' },
      { type: 'colo-checkpoint' },
      { type: 'colo.failover' },
      { type: 'switchover.pause', postcopy: true },
      postcopyPaused('Broken pipe'),
      { type: 'migrate-pause' },
      { type: 'postcopy.recover' },
      { type: 'postcopy.resumed' },
      cancel,
      continueFrom('pre-switchover'),
      continueFrom('active'),
      setupDone,
      switchoverPause,
      completed,
      failed('Broken pipe'),
      cancelDone,
    ];
    // Keep what guards read and what query-migrate shows; the uri is not needed to tell states apart.
    const serializeState = (s: SourceSnapshot) =>
      JSON.stringify([
        sourceStatus(s), s.context.error, s.context.capabilities['pause-before-switchover'] === true,
        s.context.capabilities['postcopy-ram'] === true, s.context.capabilities['x-colo'] === true, s.context.postcopySwitch,
        s.context.capabilities['switchover-ack'] === true, s.context.switchoverAcked,
      ]);
    const options = { events, serializeState };
    const built: MigrationStatus[] = [
      'none',
      'setup',
      'wait-unplug',
      'active',
      'pre-switchover',
      'device',
      'postcopy-active',
      'postcopy-paused',
      'postcopy-recover',
      'colo',
      'cancelling',
      'cancelled',
      'completed',
      'failed',
    ];

    it('reaches exactly the built statuses (shortest paths)', () => {
      const paths = getShortestPaths(sourceMachine, options);
      expect(sortedStatuses(paths.map((p) => sourceStatus(p.state)))).to.deep.equal(sortedStatuses(built));
    });

    it('reaches exactly the built statuses (simple paths)', () => {
      // Every event kind once: the migrate variants and refused commands multiply simple paths without reaching more.
      const oneOfEach: SourceEvent[] = [
        migrate({ capabilities: { ...postcopyRam, ...pauseBeforeSwitchover } }), startPostcopy, postcopyStart,
        { type: 'switchover.pause', postcopy: true }, switchoverPause, continueFrom('pre-switchover'),
        setupDone, completed, failed('Broken pipe'), postcopyPaused('Broken pipe'), cancel, cancelDone,
        { type: 'postcopy.recover' }, { type: 'postcopy.resumed' },
        migrate({ capabilities: xColo }), { type: 'colo.start' }, { type: 'colo.failover' }, unplugWait,
      ];
      const paths = getSimplePaths(sourceMachine, { ...options, events: oneOfEach });
      expect(sortedStatuses(paths.map((p) => sourceStatus(p.state)))).to.deep.equal(sortedStatuses(built));
    });

    it('has exactly sixteen ways to complete one migration: precopy, COLO until a failover, postcopy, or postcopy through a recovery, each with or without pause-before-switchover, and with or without wait-unplug', () => {
      const ended = ['completed', 'failed', 'cancelled'];
      const paths = getSimplePaths(sourceMachine, {
        ...options,
        stopWhen: (s) => ended.includes(sourceStatus(s)),
        toState: (s) => sourceStatus(s) === 'completed',
      });
      const runs = paths.map((p) => statusChanges(p.steps.map((st) => st.state)).join(' > '));
      const ways = [
        'none > setup > active > colo > completed',
        'none > setup > active > completed',
        'none > setup > active > postcopy-active > completed',
        'none > setup > active > postcopy-active > postcopy-paused > postcopy-recover > postcopy-active > completed',
        'none > setup > active > pre-switchover > device > colo > completed',
        'none > setup > active > pre-switchover > device > completed',
        'none > setup > active > pre-switchover > postcopy-active > completed',
        'none > setup > active > pre-switchover > postcopy-active > postcopy-paused > postcopy-recover > postcopy-active > completed',
      ];
      const withUnplug = ways.map((w) => w.replace('setup > active', 'setup > wait-unplug > active'));
      expect([...new Set(runs)].sort()).to.deep.equal([...ways, ...withUnplug].sort());
    });

    it('emits exactly the status changes of every shortest path when replayed on a live actor', () => {
      for (const path of getShortestPaths(sourceMachine, options)) {
        const replayed = path.steps.slice(1).map((st) => st.event as SourceEvent);
        const { statuses } = run(replayed);
        const expected = statusChanges(path.steps.map((st) => st.state)).slice(1);
        expect(statuses, path.steps.map((st) => st.event.type).join(' > ')).to.deep.equal(expected);
      }
    });

    it('takes a migrate command exactly when refuseMigrate has no objection, in every reachable state', () => {
      for (const path of getShortestPaths(sourceMachine, options)) {
        const status = sourceStatus(path.state);
        for (const event of events) {
          if (event.type !== 'migrate') continue;
          const { status: after } = step(path.state, event);
          // A resume stays in postcopy-paused: it is handed to the migration actor, which reconnects and reports.
          const [, actions] = transition(sourceMachine, path.state, event);
          const taken = event.resume ? actions.some((a) => a.type === 'xstate.sendTo') : after !== status;
          expect(taken, `${status} ${JSON.stringify(event)}`).to.equal(refuseMigrate(status, event) === null);
        }
      }
    });

    it('moves on migrate_cancel exactly in the running statuses other than cancelling and postcopy', () => {
      for (const path of getShortestPaths(sourceMachine, options)) {
        const status = sourceStatus(path.state);
        const { status: after } = step(path.state, cancel);
        expect(after, status).to.equal(isRunning(status) && status !== 'cancelling' && !inPostcopy(status) ? 'cancelling' : status);
      }
    });

    it('has a way into every status but none (every status is built)', () => {
      expect(targetedStateIds(sourceMachine)).to.deep.equal(migrationStatuses.filter((s) => s !== 'none').sort());
      expect(migrationStatuses.filter((s) => !built.includes(s))).to.deep.equal([]);
    });
  });
});
