/**
 * Self-announce (actors/net/announce.ts), with real processes: after an
 * incoming migration the destination announces the guest on its --net-out
 * link announce-rounds times, spaced as QEMU's qemu_announce_timer_step
 * spaces them (the first at once, then initial, initial + step, … capped
 * at max); announce-self does the same on demand. The NetSink counts the
 * announcements apart from the guest's packets, whose sequence checks
 * they leave alone. Spacing is checked with lower bounds only (a shared VM
 * can only make gaps longer).
 */
import { expect } from 'chai';
import { announceTimerStep } from '../actors/net/announce.js';
import { NetSink } from '../tools/net-sink.js';
import { startInstance, stopAllInstances } from './support/instances.js';
import { boundTcpUri, EVENTS, runState, sleep, waitForMigration } from './support/migration-driver.js';
import { refusal } from './support/qmp-expect.js';
import { scratchDirPerTest } from './support/scratch-dir.js';

/** Timers may fire up to a millisecond early by Date.now()'s reckoning. */
const SLACK_MS = 2;

async function waitUntil(cond: () => boolean, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(10);
  }
}

function gapsOf(sink: NetSink): number[] {
  const at = sink.announcements.map((a) => a.sentAt);
  return at.slice(1).map((t, i) => t - at[i]!);
}

describe('announce: the guest announces itself after a migration and on announce-self', function () {
  this.timeout(30_000);
  let sinks: NetSink[] = [];
  const scratch = scratchDirPerTest('livemig-announce-', async () => {
    await stopAllInstances();
    await Promise.all(sinks.map((s) => s.close()));
    sinks = [];
  });
  const sinkAt = async (name: string) => {
    const uri = `unix:${scratch()}/${name}.sock`;
    sinks.push(await NetSink.listen(uri));
    return { sink: sinks.at(-1)!, uri };
  };

  it('the schedule is QEMU\'s: initial, then growing by step, never beyond max', () => {
    const params = { initial: 100, max: 300, rounds: 5, step: 150 };
    // `round` counts the rounds still to go after the one just sent.
    expect([4, 3, 2, 1].map((round) => announceTimerStep(params, round))).to.deep.equal([100, 250, 300, 300]);
    expect(announceTimerStep({ initial: 50, max: 550, rounds: 5, step: 100 }, 1)).to.equal(350);
    expect(announceTimerStep({ initial: -10, max: 40, rounds: 2, step: 1 }, 1)).to.equal(40);
  });

  it('after a migration the destination sends exactly announce-rounds announcements, spaced per the parameters, and the guest stream stays whole', async () => {
    const { sink, uri } = await sinkAt('net');
    // Unlimited bandwidth and a 2 s downtime limit: at the defaults a running ab guest may not converge in a slow
    // phase of this VM (clean runs stayed active for 20 s, once even at unlimited bandwidth), and convergence is
    // not what this test is about.
    const source = await startInstance(['--ram', '64M', '--workload', 'ab', '--net-out', uri,
      '--param', 'max-bandwidth=100000000000', '--param', 'downtime-limit=2000', ...EVENTS], { name: 'src' });
    const dest = await startInstance(['--ram', '64M', '--workload', 'ab', '--net-out', uri, '--incoming', 'tcp:127.0.0.1:0', ...EVENTS,
      '--param', 'announce-rounds=4', '--param', 'announce-initial=100', '--param', 'announce-step=150', '--param', 'announce-max=300'], { name: 'dst' });
    await waitUntil(() => sink.received.length > 0, 10_000, 'the source guest to send');
    expect(sink.announcements).to.have.length(0);
    await source.qmp.execute('migrate', { uri: await boundTcpUri(dest.qmp) });
    expect((await waitForMigration(source.qmp, ['completed', 'failed'], 20_000)).status).to.equal('completed');
    await waitForMigration(dest.qmp, ['completed'], 5_000);
    expect(await runState(dest.qmp)).to.equal('running');
    await waitUntil(() => sink.announcements.length >= 4, 10_000, 'four announcements');
    const lastSeq = sink.received.at(-1)!.seq;
    await sleep(800); // longer than max: a fifth would have come by now
    expect(sink.announcements).to.have.length(4);
    // Every announcement is the destination's: it took the link over from the source.
    expect(sink.announcements.map((a) => a.sender)).to.deep.equal([2, 2, 2, 2]);
    const gaps = gapsOf(sink);
    [100, 250, 300].forEach((min, i) => expect(gaps[i], `gap ${i + 1}`).to.be.at.least(min - SLACK_MS));
    // The guest's own packets go on from the destination, unaffected.
    await waitUntil(() => sink.received.at(-1)!.seq > lastSeq, 10_000, 'the destination guest to send');
    expect(sink.violations).to.deep.equal([]);
  });

  it('announce-self with rounds=3 sends 3; rounds=0 or an interface list without the NIC sends none; the same id restarts', async () => {
    const { sink, uri } = await sinkAt('net');
    const vm = await startInstance(['--ram', '32M', '--net-out', uri], { name: 'vm' });
    expect(await vm.qmp.execute('announce-self', { initial: 50, max: 1000, rounds: 3, step: 60 })).to.deep.equal({});
    await waitUntil(() => sink.announcements.length >= 3, 10_000, 'three announcements');
    await sleep(400);
    expect(sink.announcements).to.have.length(3);
    const gaps = gapsOf(sink);
    expect(gaps[0]).to.be.at.least(50 - SLACK_MS);
    expect(gaps[1]).to.be.at.least(110 - SLACK_MS);

    await vm.qmp.execute('announce-self', { initial: 10, max: 10, rounds: 0, step: 10 });
    await vm.qmp.execute('announce-self', { initial: 10, max: 10, rounds: 2, step: 10, interfaces: ['eth9'], id: 'other' });
    await vm.qmp.execute('announce-self', { initial: 10, max: 10, rounds: 2, step: 10, interfaces: ['eth9', 'net0'], id: 'named' });
    await waitUntil(() => sink.announcements.length >= 5, 10_000, 'two more announcements');
    // A schedule restarted under the same id: its first round, then the restart's only one; the 4 still to come are dropped.
    await vm.qmp.execute('announce-self', { initial: 200, max: 200, rounds: 5, step: 0, id: 'again' });
    await vm.qmp.execute('announce-self', { initial: 200, max: 200, rounds: 1, step: 0, id: 'again' });
    await sleep(700);
    expect(sink.announcements).to.have.length(7);
    expect(sink.violations).to.deep.equal([]);
    expect(sink.received).to.have.length(0);
  });

  it('misuse: announce-self wants every schedule argument; the announce-* parameters are range-checked with QEMU\'s texts', async () => {
    const vm = await startInstance(['--ram', '32M'], { name: 'vm' });
    expect(await refusal(vm.qmp.execute('announce-self', { initial: 50, max: 550, rounds: 5 })))
      .to.deep.equal({ class: 'GenericError', desc: "Parameter 'step' is missing" });
    expect(await refusal(vm.qmp.execute('announce-self', { initial: 50, max: 550, rounds: 'five', step: 100 })))
      .to.deep.equal({ class: 'GenericError', desc: "Invalid parameter type for 'rounds', expected: integer" });
    // No --net-out: the rounds go nowhere, and the command still succeeds.
    expect(await vm.qmp.execute('announce-self', { initial: 0, max: 0, rounds: 2, step: 0 })).to.deep.equal({});
    const cases: [string, number, string][] = [
      ['announce-initial', 100_001, "Parameter 'announce_initial' expects a value between 0 and 100000"],
      ['announce-max', 100_001, "Parameter 'announce_max' expects a value between 0 and 100000"],
      ['announce-rounds', 1001, "Parameter 'announce_rounds' expects a value between 0 and 1000"],
      ['announce-step', 0, "Parameter 'announce_step' expects a value between 0 and 10000"],
      ['announce-step', 10_001, "Parameter 'announce_step' expects a value between 0 and 10000"],
    ];
    for (const [name, value, desc] of cases) {
      expect(await refusal(vm.qmp.execute('migrate-set-parameters', { [name]: value })), name).to.deep.equal({ class: 'GenericError', desc });
    }
  });
});
