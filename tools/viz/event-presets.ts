/**
 * Payloads the explorer offers for each event. Commands carry the facts
 * their guards decide on (run state, blockers, capabilities), so a preset
 * is a situation: "a running guest", "a guest still waiting for its
 * incoming migration", and so on. Events without presets take `{}`.
 */
import type { ChartName } from './machines.js';

export interface EventPreset {
  name: string;
  /** The event's fields besides `type`. */
  payload: Record<string, unknown>;
}

const migrate = (payload: Record<string, unknown>) => ({
  uri: 'tcp:127.0.0.1:4444',
  resume: false,
  runState: 'running',
  blockers: [],
  capabilities: {},
  ...payload,
});

// A broken connection after the switch, as each side words it.
const SOURCE_LOST = 'the return path broke before SHUT: read ECONNRESET';
const DESTINATION_LOST = 'the migration channel failed: read ECONNRESET';
const USER_PAUSE = 'Postcopy migration is paused by the user';

export const eventPresets: Readonly<Record<ChartName, Readonly<Record<string, readonly EventPreset[]>>>> = {
  source: {
    migrate: [
      { name: 'running guest', payload: migrate({}) },
      { name: 'with pause-before-switchover', payload: migrate({ capabilities: { events: true, 'pause-before-switchover': true } }) },
      { name: 'with postcopy-ram', payload: migrate({ capabilities: { events: true, 'postcopy-ram': true } }) },
      {
        name: 'with postcopy-ram and pause-before-switchover',
        payload: migrate({ capabilities: { events: true, 'postcopy-ram': true, 'pause-before-switchover': true } }),
      },
      { name: 'with x-colo', payload: migrate({ capabilities: { events: true, 'x-colo': true } }) },
      { name: 'with x-colo and pause-before-switchover', payload: migrate({ capabilities: { events: true, 'x-colo': true, 'pause-before-switchover': true } }) },
      { name: 'with switchover-ack', payload: migrate({ capabilities: { events: true, 'return-path': true, 'switchover-ack': true } }) },
      { name: 'guest waiting for an incoming migration', payload: migrate({ runState: 'inmigrate' }) },
      { name: 'guest paused by a finished migration', payload: migrate({ runState: 'postmigrate' }) },
      { name: 'with a migration blocker', payload: migrate({ blockers: ['Device vga.vram is not migratable'] }) },
      { name: 'resume (postcopy recovery)', payload: migrate({ resume: true }) },
    ],
    'migrate-continue': [
      { name: 'state pre-switchover', payload: { state: 'pre-switchover' } },
      { name: 'state active', payload: { state: 'active' } },
    ],
    // The command has no arguments; what the monitor checks is the postcopy-ram capability set now,
    // which is the migration's while one runs (capabilities cannot change then).
    'migrate-start-postcopy': [
      { name: 'postcopy-ram as the migration started', payload: {} },
      { name: 'with postcopy-ram set', payload: { capabilities: { 'postcopy-ram': true } } },
    ],
    // Precopy converged: the gate answers from the capability, whether SWITCHOVER_ACK came, and the guest's run state.
    'switchover.request': [
      { name: 'guest running', payload: { guestRunning: true } },
      { name: 'guest stopped', payload: { guestRunning: false } },
    ],
    'switchover.pause': [
      { name: 'stopped to complete by precopy', payload: {} },
      { name: 'stopped to switch to postcopy', payload: { postcopy: true } },
    ],
    'postcopy.paused': [
      { name: 'connection reset after the switch', payload: { error: SOURCE_LOST } },
      { name: 'migrate-pause', payload: { error: USER_PAUSE } },
    ],
    failed: [{ name: 'connection reset', payload: { error: 'Unable to write to socket: Connection reset by peer' } }],
    'xstate.error.actor.migration': [{ name: 'the migration actor threw', payload: { error: 'migration actor crashed' } }],
  },
  destination: {
    'migrate-incoming': [
      { name: 'started with --incoming', payload: { uri: 'tcp:0.0.0.0:4444', runState: 'inmigrate' } },
      { name: 'started without --incoming', payload: { uri: 'tcp:0.0.0.0:4444', runState: 'running' } },
    ],
    'postcopy.paused': [
      { name: 'connection to the source lost', payload: { error: DESTINATION_LOST } },
      { name: 'migrate-pause', payload: { error: USER_PAUSE } },
    ],
    'migrate-recover': [{ name: 'a new address', payload: { uri: 'tcp:0.0.0.0:4445' } }],
    failed: [{ name: 'bad stream', payload: { error: 'load of migration failed: Invalid argument' } }],
    'xstate.error.actor.incoming': [{ name: 'the incoming actor threw', payload: { error: 'incoming actor crashed' } }],
  },
  'return-path': {
    bad: [
      { name: 'REQ_PAGES before any REQ_PAGES_ID', payload: { error: 'Page request (REQ_PAGES) before any REQ_PAGES_ID named its RAM block' } },
      { name: 'an error SHUT', payload: { error: 'Sibling indicated error 1: load of migration failed: Invalid argument' } },
      { name: 'ended before SHUT', payload: { error: 'the destination closed the return path without SHUT' } },
      { name: 'connection reset', payload: { error: SOURCE_LOST } },
    ],
    pause: [
      { name: 'postcopy: connection reset', payload: { error: SOURCE_LOST } },
      { name: 'postcopy: migrate-pause', payload: { error: USER_PAUSE } },
    ],
  },
};
