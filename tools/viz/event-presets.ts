/**
 * Payloads the explorer offers for each event. Commands carry the facts
 * their guards decide on (run state, blockers, capabilities), so a preset
 * is a situation: "a running guest", "a guest still waiting for its
 * incoming migration", and so on. Events without presets take `{}`.
 */
import type { Side } from './machines.js';

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

export const eventPresets: Readonly<Record<Side, Readonly<Record<string, readonly EventPreset[]>>>> = {
  source: {
    migrate: [
      { name: 'running guest', payload: migrate({}) },
      { name: 'with pause-before-switchover', payload: migrate({ capabilities: { events: true, 'pause-before-switchover': true } }) },
      { name: 'guest waiting for an incoming migration', payload: migrate({ runState: 'inmigrate' }) },
      { name: 'guest paused by a finished migration', payload: migrate({ runState: 'postmigrate' }) },
      { name: 'with a migration blocker', payload: migrate({ blockers: ['Device vga.vram is not migratable'] }) },
      { name: 'resume (postcopy recovery)', payload: migrate({ resume: true }) },
    ],
    'migrate-continue': [
      { name: 'state pre-switchover', payload: { state: 'pre-switchover' } },
      { name: 'state active', payload: { state: 'active' } },
    ],
    failed: [{ name: 'connection reset', payload: { error: 'Unable to write to socket: Connection reset by peer' } }],
    'xstate.error.actor.migration': [{ name: 'the migration actor threw', payload: { error: 'migration actor crashed' } }],
  },
  destination: {
    'migrate-incoming': [
      { name: 'started with --incoming', payload: { uri: 'tcp:0.0.0.0:4444', runState: 'inmigrate' } },
      { name: 'started without --incoming', payload: { uri: 'tcp:0.0.0.0:4444', runState: 'running' } },
    ],
    failed: [{ name: 'bad stream', payload: { error: 'load of migration failed: Invalid argument' } }],
    'xstate.error.actor.incoming': [{ name: 'the incoming actor threw', payload: { error: 'incoming actor crashed' } }],
  },
};
