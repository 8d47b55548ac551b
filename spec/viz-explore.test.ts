import { expect } from 'chai';
import { explore, ExploreError, initialContext } from '../tools/viz/explore.js';
import { eventPresets } from '../tools/viz/event-presets.js';
import { graphs } from '../tools/viz/machines.js';

const preset = (side: 'source' | 'destination', type: string, name: string) => {
  const found = eventPresets[side][type]?.find((p) => p.name === name);
  if (!found) throw new Error(`no preset '${name}' for ${type}`);
  return { type, ...found.payload };
};

describe('viz explorer', () => {
  it('takes migrate from none to setup for a running guest, and records what the migration started with', () => {
    const result = explore({ side: 'source', status: 'none', event: preset('source', 'migrate', 'with pause-before-switchover') });
    expect(result).to.deep.equal({
      from: 'none',
      to: 'setup',
      transition: { id: 'source-t0', from: 'none', to: 'setup', event: 'migrate', guard: 'migrateAllowed' },
      context: { error: null, uri: 'tcp:127.0.0.1:4444', capabilities: { events: true, 'pause-before-switchover': true } },
      reason: null,
    });
  });

  it('explains a refused migrate with the monitor\'s own words, for each preset that refuses', () => {
    const reason = (name: string) => explore({ side: 'source', status: 'none', event: preset('source', 'migrate', name) }).reason;
    expect(reason('guest waiting for an incoming migration')).to.equal(
      "'migrate' refused in none by [migrateAllowed]: Guest is waiting for an incoming migration",
    );
    expect(reason('guest paused by a finished migration')).to.equal(
      "'migrate' refused in none by [migrateAllowed]: Can't migrate the vm that was paused due to previous migration",
    );
    expect(reason('with a migration blocker')).to.equal("'migrate' refused in none by [migrateAllowed]: Device vga.vram is not migratable");
    expect(reason('resume (postcopy recovery)')).to.equal(
      "'migrate' refused in none by [migrateAllowed]: Cannot resume if there is no paused migration",
    );
  });

  it('says when a state has no transition for the event, and what the monitor answers there', () => {
    const running = explore({ side: 'source', status: 'active', event: preset('source', 'migrate', 'running guest') });
    expect(running).to.include({ from: 'active', to: 'active', transition: null });
    expect(running.reason).to.equal(
      "active has no transition on 'migrate': the machine ignores it; the monitor refuses the command: There's a migration process in progress",
    );
    expect(explore({ side: 'source', status: 'postcopy-active', event: { type: 'migrate_cancel' } }).reason).to.equal(
      "postcopy-active has no transition on 'migrate_cancel': the machine ignores it; the monitor refuses the command: " +
        'Cannot cancel a migration in postcopy-active: the guest already runs on the destination; recover the migration instead',
    );
    expect(explore({ side: 'source', status: 'none', event: { type: 'migrate_cancel' } }).reason).to.equal(
      "none has no transition on 'migrate_cancel': the machine ignores it",
    );
  });

  it('refuses switchover.pause unless the migration started with pause-before-switchover, then goes on to device', () => {
    const plain = explore({ side: 'source', status: 'active', event: { type: 'switchover.pause' } });
    expect(plain.reason).to.equal(
      "'switchover.pause' refused in active by [pauseBeforeSwitchover]: the migration was started without the pause-before-switchover capability",
    );
    const started = explore({ side: 'source', status: 'none', event: preset('source', 'migrate', 'with pause-before-switchover') });
    const paused = explore({ side: 'source', status: 'active', context: started.context, event: { type: 'switchover.pause' } });
    expect(paused.to).to.equal('pre-switchover');
    const wrong = explore({ side: 'source', status: 'pre-switchover', context: paused.context, event: preset('source', 'migrate-continue', 'state active') });
    expect(wrong.reason).to.equal("'migrate-continue' refused in pre-switchover by [continueAllowed]: Migration not in expected state: pre-switchover");
    const released = explore({ side: 'source', status: 'pre-switchover', context: paused.context, event: preset('source', 'migrate-continue', 'state pre-switchover') });
    expect(released.to).to.equal('device');
  });

  it('picks the guarded error transition of the compound state by the state the machine is in', () => {
    const error = { type: 'xstate.error.actor.migration', error: 'boom' };
    const whileCancelling = explore({ side: 'source', status: 'cancelling', event: error });
    expect(whileCancelling.to).to.equal('cancelled');
    expect(whileCancelling.transition).to.deep.equal({
      id: 'source-t1', from: 'source.running', to: 'cancelled', event: 'xstate.error.actor.migration', guard: 'in #cancelling',
    });
    const whileActive = explore({ side: 'source', status: 'active', event: error });
    expect(whileActive.to).to.equal('failed');
    expect(whileActive.context).to.deep.equal({ error: 'boom', uri: '', capabilities: {} });
  });

  it('explains migrate-incoming refusals on the destination', () => {
    const without = explore({ side: 'destination', status: 'none', event: preset('destination', 'migrate-incoming', 'started without --incoming') });
    expect(without.reason).to.equal("'migrate-incoming' refused in none by [incomingAllowed]: '-incoming' was not specified on the command line");
    const again = explore({ side: 'destination', status: 'setup', event: preset('destination', 'migrate-incoming', 'started with --incoming') });
    expect(again.reason).to.equal(
      "setup has no transition on 'migrate-incoming': the machine ignores it; the monitor refuses the command: The incoming migration has already been started",
    );
  });

  it('reaches every transition of both machines from its source state with some preset', () => {
    for (const side of ['source', 'destination'] as const) {
      const graph = graphs[side];
      for (const t of graph.transitions) {
        const from = graph.states.find((s) => s.id === t.from)!;
        const status = from.compound ? from.initial! : from.id;
        const payloads = eventPresets[side][t.event]?.map((p) => p.payload) ?? [{}];
        const contexts = [initialContext(side), { ...(initialContext(side) as object), capabilities: { 'pause-before-switchover': true } }];
        // cancelling is the one child the guarded error transition needs.
        const statuses = t.guard?.startsWith('in #') ? [t.guard.slice(4)] : [status];
        const taken = statuses.flatMap((s) =>
          payloads.flatMap((p) => contexts.map((context) => explore({ side, status: s, context, event: { type: t.event, ...p } }).transition?.id)),
        );
        expect(taken, `${side} ${t.id} ${t.from} -> ${t.to} on ${t.event}`).to.include(t.id);
      }
    }
  });

  it('rejects a status the machine does not have, and an event its guard cannot read', () => {
    expect(() => explore({ side: 'source', status: 'running', event: { type: 'migrate' } })).to.throw(ExploreError, "'running' is not a state of the source machine");
    expect(() => explore({ side: 'source', status: 'none', event: { type: 'migrate' } }))
      .to.throw(ExploreError, /^the source machine could not take \{"type":"migrate"\}: Unable to evaluate guard 'migrateAllowed'/);
  });
});
