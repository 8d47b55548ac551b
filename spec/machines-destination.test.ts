import { expect } from 'chai';
import { fromCallback, initialTransition } from 'xstate';
import { getShortestPaths, getSimplePaths } from 'xstate/graph';
import {
  destinationMachine,
  destinationStatus,
  type DestinationSnapshot,
  type IncomingActorInput,
} from '../machines/destination.js';
import type { DestinationEvent, IncomingActorCommand, MigrateIncomingCommand } from '../machines/events.js';
import { refuseMigrateIncoming } from '../machines/refusals.js';
import { migrationStatuses, type MigrationStatus } from '../machines/status.js';
import { emittedStatuses, sortedStatuses, statechartHarness, targetedStateIds } from './support/statechart-harness.js';

const incoming = (facts: Partial<Omit<MigrateIncomingCommand, 'type'>> = {}): MigrateIncomingCommand => ({
  type: 'migrate-incoming',
  uri: 'tcp:0.0.0.0:4444',
  runState: 'inmigrate',
  ...facts,
});
const streamArrived: DestinationEvent = { type: 'stream.arrived' };
const loadDone: DestinationEvent = { type: 'load.done' };
const failed = (error: string): DestinationEvent => ({ type: 'failed', error });

const { run, reach, step } = statechartHarness(destinationMachine, destinationStatus);

function recordingIncoming() {
  const log = { inputs: [] as IncomingActorInput[], stopped: 0 };
  const machine = destinationMachine.provide({
    actors: {
      incoming: fromCallback<IncomingActorCommand, IncomingActorInput>(({ input }) => {
        log.inputs.push(input);
        return () => {
          log.stopped += 1;
        };
      }),
    },
  });
  return { machine, log };
}

const ends: Record<'completed' | 'failed in setup' | 'failed in active', DestinationEvent[]> = {
  completed: [incoming(), streamArrived, loadDone],
  'failed in setup': [incoming(), failed('Failed to bind socket: Address already in use')],
  'failed in active': [incoming(), streamArrived, failed('load of migration failed: Input/output error')],
};

describe('destination machine', () => {
  describe('precopy', () => {
    it('starts in none without announcing it', () => {
      const [snapshot, actions] = initialTransition(destinationMachine);
      expect(destinationStatus(snapshot)).to.equal('none');
      expect(snapshot.context).to.deep.equal({ error: null, uri: '' });
      expect(emittedStatuses(actions)).to.deep.equal([]);
    });

    it('migrate-incoming moves to setup and starts the incoming actor on the uri', () => {
      const { machine, log } = recordingIncoming();
      const { snapshot, statuses } = run([incoming({ uri: 'unix:/tmp/dst.sock' })], machine);
      expect(statuses).to.deep.equal(['setup']);
      expect(destinationStatus(snapshot)).to.equal('setup');
      expect(log.inputs).to.deep.equal([{ uri: 'unix:/tmp/dst.sock' }]);
    });

    it('announces setup, active, completed for a loaded stream and stops the incoming actor', () => {
      const { machine, log } = recordingIncoming();
      const { snapshot, statuses } = run(ends.completed, machine);
      expect(statuses).to.deep.equal(['setup', 'active', 'completed']);
      expect(destinationStatus(snapshot)).to.equal('completed');
      expect(snapshot.context.error).to.equal(null);
      expect(log.stopped).to.equal(1);
    });

    it('fails from setup (listener or channel error before any byte), keeping the error', () => {
      const { snapshot, statuses } = run(ends['failed in setup']);
      expect(statuses).to.deep.equal(['setup', 'failed']);
      expect(snapshot.context.error).to.equal('Failed to bind socket: Address already in use');
    });

    it('fails from active (load error), keeping the error', () => {
      const { snapshot, statuses } = run(ends['failed in active']);
      expect(statuses).to.deep.equal(['setup', 'active', 'failed']);
      expect(snapshot.context.error).to.equal('load of migration failed: Input/output error');
    });

    it('ignores reports that do not belong to the current status', () => {
      expect(step(reach([]), streamArrived).status).to.equal('none');
      expect(step(reach([]), failed('x')).status).to.equal('none');
      expect(step(reach([incoming()]), loadDone).status).to.equal('setup');
      expect(step(reach([incoming(), streamArrived]), streamArrived).status).to.equal('active');
    });

    it('fails with the message of an incoming actor that throws', () => {
      const machine = destinationMachine.provide({
        actors: {
          incoming: fromCallback<IncomingActorCommand, IncomingActorInput>(() => {
            throw new Error('listen EADDRINUSE');
          }),
        },
      });
      const { snapshot, statuses } = run([incoming()], machine);
      expect(statuses).to.deep.equal(['setup', 'failed']);
      expect(snapshot.context.error).to.equal('listen EADDRINUSE');
    });
  });

  describe('one incoming migration per process', () => {
    for (const [end, events] of Object.entries(ends)) {
      it(`stays where it is after ${end}, whatever arrives`, () => {
        const snapshot = reach(events);
        const status = destinationStatus(snapshot);
        for (const event of [incoming(), streamArrived, loadDone, failed('late')]) {
          const after = step(snapshot, event);
          expect(after.status).to.equal(status);
          expect(after.emitted).to.deep.equal([]);
        }
      });
    }
  });

  describe('refusals', () => {
    it("refuses migrate-incoming on an instance started without --incoming, staying in none", () => {
      for (const runState of ['running', 'prelaunch', 'paused']) {
        expect(refuseMigrateIncoming('none', { runState })).to.equal(
          "'-incoming' was not specified on the command line",
        );
        const { status, emitted } = step(reach([]), incoming({ runState }));
        expect(status).to.equal('none');
        expect(emitted).to.deep.equal([]);
      }
    });

    for (const events of [[incoming()], [incoming(), streamArrived], ends.completed, ends['failed in active']]) {
      const snapshot = reach(events);
      const status = destinationStatus(snapshot);
      it(`refuses a second migrate-incoming in ${status}`, () => {
        expect(refuseMigrateIncoming(status, { runState: 'inmigrate' })).to.equal(
          'The incoming migration has already been started',
        );
        expect(step(snapshot, incoming()).status).to.equal(status);
      });
    }

    it('reports "already started" before checking the run state, as QEMU does', () => {
      expect(refuseMigrateIncoming('completed', { runState: 'running' })).to.equal(
        'The incoming migration has already been started',
      );
    });

    it('accepts migrate-incoming only in none on an inmigrate instance', () => {
      const accepted = migrationStatuses.filter((s) => refuseMigrateIncoming(s, { runState: 'inmigrate' }) === null);
      expect(accepted).to.deep.equal(['none']);
    });
  });

  describe('model (xstate/graph)', () => {
    const events: DestinationEvent[] = [
      incoming(),
      incoming({ runState: 'running' }),
      streamArrived,
      loadDone,
      failed('Input/output error'),
      { type: 'colo.start' },
      { type: 'x-colo-lost-heartbeat' },
      { type: 'colo.failover' },
    ];
    const serializeState = (s: DestinationSnapshot) => JSON.stringify([destinationStatus(s), s.context.error]);
    const options = { events, serializeState };
    const built: MigrationStatus[] = ['none', 'setup', 'active', 'colo', 'completed', 'failed'];

    it('reaches exactly the built statuses (shortest paths)', () => {
      const paths = getShortestPaths(destinationMachine, options);
      expect(sortedStatuses(paths.map((p) => destinationStatus(p.state)))).to.deep.equal(sortedStatuses(built));
    });

    it('reaches exactly the built statuses (simple paths), along exactly four runs', () => {
      const paths = getSimplePaths(destinationMachine, options);
      expect(sortedStatuses(paths.map((p) => destinationStatus(p.state)))).to.deep.equal(sortedStatuses(built));
      const runs = paths
        .filter((p) => ['completed', 'failed'].includes(destinationStatus(p.state)))
        .map((p) => p.steps.map((st) => destinationStatus(st.state)).join(' > '));
      expect(runs.sort()).to.deep.equal([
        'none > setup > active > colo > completed',
        'none > setup > active > completed',
        'none > setup > active > failed',
        'none > setup > failed',
      ]);
    });

    it('emits exactly the status changes of every shortest path when replayed on a live actor', () => {
      for (const path of getShortestPaths(destinationMachine, options)) {
        const { statuses } = run(path.steps.slice(1).map((st) => st.event as DestinationEvent));
        const expected = path.steps.slice(1).map((st) => destinationStatus(st.state));
        expect(statuses).to.deep.equal(expected);
      }
    });

    it('has no transition into the statuses not built yet', () => {
      expect(targetedStateIds(destinationMachine)).to.deep.equal(['active', 'colo', 'completed', 'failed', 'postcopy-active', 'postcopy-paused', 'postcopy-recover', 'setup']);
    });
  });
});
