import { expect } from 'chai';
import { explore, ExploreError, initialContext } from '../tools/viz/explore.js';
import { eventPresets } from '../tools/viz/event-presets.js';
import { CHARTS, graphs, type ChartName } from '../tools/viz/machines.js';

const preset = (side: ChartName, type: string, name: string) => {
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
      transition: { id: 'source-t0', from: 'none', to: 'setup', event: 'migrate', label: 'migrate', guard: 'migrateAllowed' },
      context: { error: null, uri: 'tcp:127.0.0.1:4444', capabilities: { events: true, 'pause-before-switchover': true }, postcopySwitch: false, switchoverAcked: false },
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
        'Cannot cancel a migration in postcopy-active: the guest already runs on the destination, and only the destination has its latest state',
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
    // Both branches of migrate-continue (into postcopy, into device) meet the same refusal: said once.
    expect(wrong.reason).to.equal(
      "'migrate-continue' refused in pre-switchover by [continueToPostcopy], [continueAllowed]: Migration not in expected state: pre-switchover",
    );
    const released = explore({ side: 'source', status: 'pre-switchover', context: paused.context, event: preset('source', 'migrate-continue', 'state pre-switchover') });
    expect(released.to).to.equal('device');
    expect(released.transition).to.include({ from: 'pre-switchover', to: 'device', guard: 'continueAllowed' });
  });

  it('picks the guarded error transition of the compound state by the state the machine is in', () => {
    const error = { type: 'xstate.error.actor.migration', error: 'boom' };
    const whileCancelling = explore({ side: 'source', status: 'cancelling', event: error });
    expect(whileCancelling.to).to.equal('cancelled');
    expect(whileCancelling.transition).to.deep.equal({
      id: 'source-t1', from: 'source.running', to: 'cancelled', event: 'xstate.error.actor.migration', label: 'migration actor failed',
      guard: 'in #cancelling',
    });
    const whileActive = explore({ side: 'source', status: 'active', event: error });
    expect(whileActive.to).to.equal('failed');
    expect(whileActive.context).to.deep.equal({ error: 'boom', uri: '', capabilities: {}, postcopySwitch: false, switchoverAcked: false });
  });

  it('explains migrate-incoming refusals on the destination', () => {
    const without = explore({ side: 'destination', status: 'none', event: preset('destination', 'migrate-incoming', 'started without --incoming') });
    expect(without.reason).to.equal("'migrate-incoming' refused in none by [incomingAllowed]: '-incoming' was not specified on the command line");
    const again = explore({ side: 'destination', status: 'setup', event: preset('destination', 'migrate-incoming', 'started with --incoming') });
    expect(again.reason).to.equal(
      "setup has no transition on 'migrate-incoming': the machine ignores it; the monitor refuses the command: The incoming migration has already been started",
    );
  });

  it('reaches every transition of every machine from its source state with some preset', () => {
    for (const side of CHARTS) {
      const graph = graphs[side];
      for (const t of graph.transitions) {
        const from = graph.states.find((s) => s.id === t.from)!;
        const status = from.compound ? from.initial! : from.id;
        const payloads = eventPresets[side][t.event]?.map((p) => p.payload) ?? [{}];
        const initial = initialContext(side) as object;
        const contexts = [
          initial,
          { ...initial, capabilities: { 'pause-before-switchover': true } },
          { ...initial, capabilities: { 'postcopy-ram': true } },
          { ...initial, capabilities: { 'postcopy-ram': true, 'pause-before-switchover': true }, postcopySwitch: true },
          { ...initial, capabilities: { 'x-colo': true } },
          { ...initial, capabilities: { 'return-path': true, 'switchover-ack': true } },
        ];
        // cancelling is the one child the guarded error transition needs.
        const statuses = t.guard?.startsWith('in #') ? [t.guard.slice(4)] : [status];
        const taken = statuses.flatMap((s) =>
          payloads.flatMap((p) => contexts.map((context) => explore({ side, status: s, context, event: { type: t.event, ...p } }).transition?.id)),
        );
        expect(taken, `${side} ${t.id} ${t.from} -> ${t.to} on ${t.event}`).to.include(t.id);
      }
    }
  });

  it('switches to postcopy when a migration with postcopy-ram is asked to, then completes or pauses', () => {
    const started = explore({ side: 'source', status: 'none', event: preset('source', 'migrate', 'with postcopy-ram') });
    const { context } = started;
    // A request only: forwarded to the migration actor, the status stays until the actor switches.
    const asked = explore({ side: 'source', status: 'active', context, event: preset('source', 'migrate-start-postcopy', 'postcopy-ram as the migration started') });
    expect(asked).to.deep.include({ from: 'active', to: 'active', reason: null });
    expect(asked.transition).to.include({ from: 'active', to: null, event: 'migrate-start-postcopy', guard: null });
    const switched = explore({ side: 'source', status: 'active', context, event: { type: 'postcopy.start' } });
    expect(switched.transition).to.include({ from: 'active', to: 'postcopy-active', guard: 'postcopyRam' });
    expect(explore({ side: 'source', status: 'postcopy-active', context, event: { type: 'completed' } }).to).to.equal('completed');
    const paused = explore({ side: 'source', status: 'postcopy-active', context, event: preset('source', 'postcopy.paused', 'connection reset after the switch') });
    expect(paused.to).to.equal('postcopy-paused');
    expect(paused.context).to.deep.include({ error: 'the return path broke before SHUT: read ECONNRESET' });
    expect(explore({ side: 'source', status: 'postcopy-paused', context: paused.context, event: { type: 'migrate_cancel' } }).reason).to.equal(
      "postcopy-paused has no transition on 'migrate_cancel': the machine ignores it; the monitor refuses the command: " +
        'Cannot cancel a migration in postcopy-paused: the guest already runs on the destination, and only the destination has its latest state',
    );
    // A resume is handed to the migration actor; the status moves once it has reconnected, and again once resumed.
    const resumed = explore({ side: 'source', status: 'postcopy-paused', context: paused.context, event: preset('source', 'migrate', 'resume (postcopy recovery)') });
    expect(resumed).to.deep.include({ from: 'postcopy-paused', to: 'postcopy-paused', reason: null });
    const recovering = explore({ side: 'source', status: 'postcopy-paused', context: paused.context, event: { type: 'postcopy.recover' } });
    expect(recovering.to).to.equal('postcopy-recover');
    expect(explore({ side: 'source', status: 'postcopy-recover', context: paused.context, event: { type: 'postcopy.resumed' } }).to).to.equal('postcopy-active');
    expect(explore({ side: 'source', status: 'postcopy-recover', context: paused.context, event: preset('source', 'postcopy.paused', 'migrate-pause') }).to)
      .to.equal('postcopy-paused');
  });

  it('explains why the switch to postcopy is refused: the monitor\'s checks, the capability, the reason for the pause', () => {
    const startPostcopy = (status: string, name: string, context?: unknown) =>
      explore({ side: 'source', status, context, event: preset('source', 'migrate-start-postcopy', name) }).reason;
    expect(startPostcopy('none', 'postcopy-ram as the migration started')).to.equal(
      "none has no transition on 'migrate-start-postcopy': the machine ignores it; the monitor refuses the command: " +
        'Enable postcopy with migrate_set_capability before the start of migration',
    );
    expect(startPostcopy('none', 'with postcopy-ram set')).to.equal(
      "none has no transition on 'migrate-start-postcopy': the machine ignores it; the monitor refuses the command: " +
        'Postcopy must be started after migration has been started',
    );
    // The machine would forward it, but the monitor answers first.
    const precopy = explore({ side: 'source', status: 'none', event: preset('source', 'migrate', 'running guest') }).context;
    expect(startPostcopy('active', 'postcopy-ram as the migration started', precopy)).to.equal(
      "the monitor refuses 'migrate-start-postcopy' in active before the machine sees it: Enable postcopy with migrate_set_capability before the start of migration",
    );
    // Accepted once the migration is over, and pointless (QEMU).
    expect(startPostcopy('completed', 'with postcopy-ram set')).to.equal("completed has no transition on 'migrate-start-postcopy': the machine ignores it");
    expect(explore({ side: 'source', status: 'active', context: precopy, event: { type: 'postcopy.start' } }).reason).to.equal(
      "'postcopy.start' refused in active by [postcopyRam]: the migration was started without the postcopy-ram capability",
    );
  });

  it('releases a pause for postcopy into postcopy, and a pause for precopy into device', () => {
    const started = explore({ side: 'source', status: 'none', event: preset('source', 'migrate', 'with postcopy-ram and pause-before-switchover') });
    const forPostcopy = explore({ side: 'source', status: 'active', context: started.context, event: preset('source', 'switchover.pause', 'stopped to switch to postcopy') });
    expect(forPostcopy.to).to.equal('pre-switchover');
    expect(forPostcopy.context).to.deep.include({ postcopySwitch: true });
    const released = explore({ side: 'source', status: 'pre-switchover', context: forPostcopy.context, event: preset('source', 'migrate-continue', 'state pre-switchover') });
    expect(released).to.deep.include({ to: 'pre-switchover', reason: null });
    expect(released.transition).to.include({ to: null, guard: 'continueToPostcopy' });
    expect(explore({ side: 'source', status: 'pre-switchover', context: forPostcopy.context, event: { type: 'postcopy.start' } }).to).to.equal('postcopy-active');

    const forPrecopy = explore({ side: 'source', status: 'active', context: started.context, event: preset('source', 'switchover.pause', 'stopped to complete by precopy') });
    expect(forPrecopy.context).to.deep.include({ postcopySwitch: false });
    expect(explore({ side: 'source', status: 'pre-switchover', context: forPrecopy.context, event: preset('source', 'migrate-continue', 'state pre-switchover') }).to)
      .to.equal('device');
    expect(explore({ side: 'source', status: 'pre-switchover', context: forPrecopy.context, event: { type: 'postcopy.start' } }).reason).to.equal(
      "'postcopy.start' refused in pre-switchover by [postcopySwitch]: " +
        'the guest was stopped to complete by precopy (switchover.pause without postcopy), not to switch to postcopy',
    );
  });

  it('follows the destination into postcopy at POSTCOPY_LISTEN, then to completed or postcopy-paused', () => {
    expect(explore({ side: 'destination', status: 'active', event: { type: 'postcopy.listen' } }).to).to.equal('postcopy-active');
    expect(explore({ side: 'destination', status: 'postcopy-active', event: { type: 'load.done' } }).to).to.equal('completed');
    const paused = explore({ side: 'destination', status: 'postcopy-active', event: preset('destination', 'postcopy.paused', 'connection to the source lost') });
    expect(paused).to.deep.include({ to: 'postcopy-paused', context: { error: 'the migration channel failed: read ECONNRESET', uri: '' } });
  });

  it('explores the return path: open, then closed or bad, and nothing after', () => {
    const at = (state: string) => `return-path.${state}`;
    const step = (state: string, event: Record<string, unknown> & { type: string }, context?: unknown) =>
      explore({ side: 'return-path', status: at(state), context, event });
    expect(step('opening', { type: 'open' })).to.deep.include({ from: at('opening'), to: at('open'), reason: null });
    expect(step('open', { type: 'shut' }).to).to.equal(at('closed'));
    const bad = step('opening', preset('return-path', 'bad', 'REQ_PAGES before any REQ_PAGES_ID'));
    expect(bad).to.deep.include({ to: at('bad'), context: { error: 'Page request (REQ_PAGES) before any REQ_PAGES_ID named its RAM block' } });
    // Its final states take nothing; the reason names the state as the chart does.
    expect(step('closed', { type: 'open' }).reason).to.equal("closed has no transition on 'open': the machine ignores it");
  });

  it('rejects a status the machine does not have, and an event its guard cannot read', () => {
    expect(() => explore({ side: 'source', status: 'running', event: { type: 'migrate' } })).to.throw(ExploreError, "'running' is not a state of the source machine");
    expect(() => explore({ side: 'source', status: 'none', event: { type: 'migrate' } }))
      .to.throw(ExploreError, /^the source machine could not take \{"type":"migrate"\}: Unable to evaluate guard 'migrateAllowed'/);
  });
});
