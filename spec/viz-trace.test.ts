import { expect } from 'chai';
import { ActorTrace } from '../actors/instance/actor-trace.js';
import type { MonitorHost } from '../actors/monitor/host.js';
import { traceCommands } from '../actors/monitor/trace-commands.js';
import type { QmpClient } from '../protocols/qmp/client.js';
import { QmpError } from '../protocols/qmp/errors.js';
import { ACTOR_MESSAGE_EVENT, TRACE_COMMAND } from '../protocols/qmp/livemig-extensions.js';
import { NamedFds } from '../protocols/qmp/named-fds.js';
import type { QmpEvent } from '../protocols/qmp/types.js';
import { startInstance, stopAllInstances, type TestInstance } from './support/instances.js';
import { boundTcpUri, waitForMigration } from './support/migration-driver.js';
import { POSTCOPY, abGuestArgs, migrateAndSwitch, postcopyLink, type AbGuest } from './support/postcopy-pair.js';

/** Every ACTOR_MESSAGE a client receives, as its data; without its payload and context unless `whole`. */
function recordMessages(qmp: QmpClient, whole = false): Record<string, unknown>[] {
  const seen: Record<string, unknown>[] = [];
  qmp.events.on(ACTOR_MESSAGE_EVENT, (e: QmpEvent) => {
    const { payload, context, ...message } = e.data ?? {};
    seen.push(whole ? { ...message, ...(payload ? { payload } : {}), ...(context ? { context } : {}) } : message);
  });
  return seen;
}

/** A tracing monitor connection to each side, and the actor messages each receives. */
async function traceBoth(src: TestInstance, dst: TestInstance) {
  const [srcViz, dstViz] = await Promise.all([src.connect(), dst.connect()]);
  const fromSource = recordMessages(srcViz);
  const fromDestination = recordMessages(dstViz);
  await srcViz.execute(TRACE_COMMAND, { enable: true });
  await dstViz.execute(TRACE_COMMAND, { enable: true });
  return { srcViz, dstViz, fromSource, fromDestination };
}

describe('__org.livemig_trace over a real instance', () => {
  afterEach(stopAllInstances);

  it('streams the statechart events of a migrate once a session enables it, and nothing before', async () => {
    const src = await startInstance(['--ram', '32M', '--cap', 'events'], { name: 'src' });
    const viz = await src.connect();
    const seen = recordMessages(viz);
    // A first migration, untraced, to a port where nothing listens: it fails.
    let failed = viz.waitEvent('MIGRATION', (e) => e.data?.status === 'failed');
    await src.qmp.execute('migrate', { uri: 'tcp:127.0.0.1:1' });
    await failed;
    expect(seen).to.deep.equal([]);

    expect(await viz.execute(TRACE_COMMAND, { enable: true })).to.deep.equal({});
    failed = viz.waitEvent('MIGRATION', (e) => e.data?.status === 'failed');
    await src.qmp.execute('migrate', { uri: 'tcp:127.0.0.1:1' });
    await failed;
    // Each status change comes with the event that made it: a viewer lights that very edge.
    expect(seen).to.deep.equal([
      { side: 'source', from: 'monitor', to: 'source', type: 'migrate', kind: 'event' },
      { side: 'source', from: 'source', to: 'migration', type: 'xstate.init', kind: 'event' },
      { side: 'source', from: 'failed', to: 'setup', type: 'migrate', kind: 'transition' },
      { side: 'source', from: 'migration', to: 'source', type: 'failed', kind: 'event' },
      { side: 'source', from: 'setup', to: 'failed', type: 'failed', kind: 'transition' },
    ]);
  });

  it('carries each event\'s payload and, with each status change, the statechart\'s context as it entered the status', async () => {
    const src = await startInstance(['--ram', '32M', '--cap', 'events'], { name: 'src' });
    const viz = await src.connect();
    const seen = recordMessages(viz, true);
    await viz.execute(TRACE_COMMAND, { enable: true });
    const failed = viz.waitEvent('MIGRATION', (e) => e.data?.status === 'failed');
    await src.qmp.execute('migrate', { uri: 'tcp:127.0.0.1:1' });
    await failed;
    const [migrate, , toSetup, , toFailed] = seen as { payload?: Record<string, unknown>; context?: Record<string, unknown> }[];
    expect(migrate!.payload).to.include({ uri: 'tcp:127.0.0.1:1', resume: false, runState: 'running' });
    expect(migrate!.payload!.capabilities).to.include({ events: true, multifd: false });
    expect(toSetup!.context).to.include({ uri: 'tcp:127.0.0.1:1', error: null });
    // The context the failed status was entered with names the failure, as query-migrate's error-desc does.
    expect(toFailed!.context!.error).to.equal((await src.qmp.execute<{ 'error-desc': string }>('query-migrate'))['error-desc']);
  });

  it('goes to every negotiated session (QmpServer only broadcasts) and stops when the session disables it', async () => {
    const src = await startInstance(['--ram', '32M', '--cap', 'events'], { name: 'src' });
    const tracer = await src.connect();
    const bystander = await src.connect();
    const toTracer = recordMessages(tracer);
    const toBystander = recordMessages(bystander);
    await tracer.execute(TRACE_COMMAND, { enable: true });
    // Each connection gets its events in order: once it has seen `failed`, it has seen the messages before it.
    const bothFailed = () => Promise.all([tracer, bystander].map((c) => c.waitEvent('MIGRATION', (e) => e.data?.status === 'failed')));
    let failed = bothFailed();
    await src.qmp.execute('migrate', { uri: 'tcp:127.0.0.1:1' });
    await failed;
    // Three events into the statecharts, two status changes.
    expect(toTracer).to.have.length(5);
    expect(toBystander).to.deep.equal(toTracer);

    await tracer.execute(TRACE_COMMAND, { enable: false });
    failed = bothFailed();
    await src.qmp.execute('migrate', { uri: 'tcp:127.0.0.1:1' });
    await failed;
    expect(toTracer).to.have.length(5);
    expect(toBystander).to.have.length(5);
  });

  it('shows the return-path messages of a real migration on both sides, as kind message', async () => {
    const [dst, src] = await Promise.all([
      startInstance(['--ram', '32M', '--incoming', 'tcp:127.0.0.1:0', '--cap', 'events', '--cap', 'return-path'], { name: 'dst' }),
      startInstance(['--ram', '32M', '--cap', 'events', '--cap', 'return-path', '--param', 'max-bandwidth=100000000000'], { name: 'src' }),
    ]);
    const { srcViz, dstViz, fromSource, fromDestination } = await traceBoth(src, dst);
    const info = await dst.qmp.execute<{ 'socket-address': { port: string }[] }>('query-migrate');
    const done = [
      srcViz.waitEvent('MIGRATION', (e) => e.data?.status === 'completed', 30_000),
      dstViz.waitEvent('MIGRATION', (e) => e.data?.status === 'completed', 30_000),
    ];
    await src.qmp.execute('migrate', { uri: `tcp:127.0.0.1:${info['socket-address'][0]!.port}` });
    await Promise.all(done);

    // The answers to the source's PINGs (the first, then one per dirty sync timing the stream's drain) come back whenever
    // the link lets them: checked apart from the ordered rest.
    const pong = { side: 'source', from: 'return-path', to: 'migration', type: 'pong', kind: 'message' };
    const pongs = fromSource.filter((m) => m.type === 'pong');
    expect(pongs.length).to.be.at.least(1);
    for (const p of pongs) expect(p).to.deep.equal(pong);
    expect(fromSource.filter((m) => m.type !== 'pong' && m.kind !== 'transition')).to.deep.equal([
      { side: 'source', from: 'monitor', to: 'source', type: 'migrate', kind: 'event' },
      { side: 'source', from: 'source', to: 'migration', type: 'xstate.init', kind: 'event' },
      { side: 'source', from: 'migration', to: 'source', type: 'setup.done', kind: 'event' },
      // Converged: the switchover gate answers (no switchover-ack: allowed).
      { side: 'source', from: 'migration', to: 'source', type: 'switchover.request', kind: 'event' },
      { side: 'source', from: 'source', to: 'migration', type: 'switchover.answer', kind: 'event' },
      { side: 'source', from: 'return-path', to: 'migration', type: 'shut', kind: 'message' },
      { side: 'source', from: 'migration', to: 'source', type: 'completed', kind: 'event' },
    ]);
    // The destination answers each PING as it comes in the stream, before the end of it.
    const answered = { side: 'destination', from: 'incoming', to: 'return-path', type: 'pong', kind: 'message' };
    expect(fromDestination.filter((m) => m.type === 'pong')).to.deep.equal(pongs.map(() => answered));
    const shut = fromDestination.findIndex((m) => m.type === 'shut');
    expect(fromDestination.slice(shut + 1).some((m) => m.type === 'pong'), 'no PONG after the SHUT').to.equal(false);
    expect(fromDestination.filter((m) => m.type !== 'pong' && m.kind !== 'transition')).to.deep.equal([
      { side: 'destination', from: 'incoming', to: 'destination', type: 'stream.arrived', kind: 'event' },
      { side: 'destination', from: 'incoming', to: 'return-path', type: 'shut', kind: 'message' },
      { side: 'destination', from: 'incoming', to: 'destination', type: 'load.done', kind: 'event' },
    ]);
  });

  it('shows the page requests of a postcopy migration on both sides: sent by the destination, served by the source', async function () {
    this.timeout(120_000);
    const ab: AbGuest = { start: 1 << 20, end: 17 << 20, smp: 1 };
    const [dst, src] = await Promise.all([
      startInstance([...abGuestArgs('32M', ab, false), ...POSTCOPY, '--cap', 'events', '--incoming', 'tcp:127.0.0.1:0'], { name: 'dst' }),
      // Background pages at 1 MB/s: the running destination guest must ask for what it touches.
      startInstance([...abGuestArgs('32M', ab), ...POSTCOPY, '--cap', 'events', ...postcopyLink(64_000_000, 1_000_000)], { name: 'src' }),
    ]);
    const { srcViz, dstViz, fromSource, fromDestination } = await traceBoth(src, dst);
    // Each connection gets its events in order: once it has seen `completed`, it has seen every message before it.
    const done = [srcViz, dstViz].map((viz) => viz.waitEvent('MIGRATION', (e) => e.data?.status === 'completed', 90_000));
    await migrateAndSwitch(src, dst, await boundTcpUri(dst.qmp), ab);
    const requested = (seen: Record<string, unknown>[]) => seen.filter((m) => m.type === 'req-pages-id' || m.type === 'req-pages');
    for (let i = 0; i < 200 && requested(fromSource).length === 0; i++) await new Promise((r) => setTimeout(r, 50));
    await src.qmp.execute('migrate-set-parameters', { 'max-postcopy-bandwidth': 0 });
    expect((await waitForMigration(src.qmp, ['completed', 'failed', 'postcopy-paused'], 60_000)).status).to.equal('completed');
    await Promise.all(done);

    // The first request names its block; each later one of the same block does not.
    expect(requested(fromDestination)[0]).to.deep.equal({ side: 'destination', from: 'incoming', to: 'return-path', type: 'req-pages-id', kind: 'message' });
    expect(requested(fromSource)[0]).to.deep.equal({ side: 'source', from: 'return-path', to: 'migration', type: 'req-pages-id', kind: 'message' });
    expect(requested(fromSource).length, 'every request sent arrives').to.equal(requested(fromDestination).length);
  });

  it('shows the write-protect faults of a background snapshot: the guest to the migration, page by page', async function () {
    this.timeout(60_000);
    const src = await startInstance(['--ram', '64M', '--smp', '2', '--workload', 'ab', '--ab-start', String(1 << 20), '--ab-end', String(60 << 20),
      '--cap', 'events', '--cap', 'background-snapshot'], { name: 'src' });
    const viz = await src.connect();
    const seen = recordMessages(viz);
    await viz.execute(TRACE_COMMAND, { enable: true });
    const done = viz.waitEvent('MIGRATION', (e) => e.data?.status === 'completed', 30_000);
    // A reader that sleeps first: the running guest meets its protected pages before the pass does.
    await src.qmp.execute('migrate', { uri: 'exec:sleep 0.5; cat > /dev/null' });
    await done;
    const faults = seen.filter((m) => String(m.type).startsWith('write-protect fault'));
    expect(faults.length, 'write-protect faults traced').to.be.above(0);
    expect(faults[0]).to.deep.include({ side: 'source', from: 'guest', to: 'migration', kind: 'message' });
    expect(faults[0]!.type).to.match(/^write-protect fault, page \d+$/);
  });

  it('shows COLO checkpoints on both sides: requested, stepped through on the return path, loaded', async function () {
    this.timeout(60_000);
    const guest = ['--ram', '32M', '--workload', 'ab', '--cap', 'events', '--cap', 'x-colo'];
    const src = await startInstance([...guest, '--param', 'x-checkpoint-delay=200'], { name: 'src' });
    const dst = await startInstance([...guest, '--incoming', 'tcp:127.0.0.1:0'], { name: 'dst' });
    const { fromSource, fromDestination } = await traceBoth(src, dst);
    await src.qmp.execute('migrate', { uri: await boundTcpUri(dst.qmp) });
    await waitForMigration(src.qmp, ['colo'], 30_000);
    const loaded = (seen: Record<string, unknown>[]) => seen.some((m) => /^checkpoint 2 loaded/.test(String(m.type)));
    const deadline = Date.now() + 30_000;
    while (!(loaded(fromSource) && loaded(fromDestination)) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    const first = (seen: Record<string, unknown>[], pattern: RegExp) => seen.find((m) => pattern.test(String(m.type)));
    expect(first(fromSource, /^checkpoint 1 /)).to.deep.include({ side: 'source', from: 'migration', to: 'colo', type: 'checkpoint 1 (periodic)' });
    expect(first(fromSource, /^colo vmstate-loaded$/)).to.deep.include({ side: 'source', from: 'return-path', to: 'migration' });
    expect(first(fromSource, /^checkpoint 1 loaded/)).to.deep.include({ from: 'colo', to: 'migration' });
    expect(first(fromDestination, /^checkpoint 1 requested$/)).to.deep.include({ side: 'destination', from: 'incoming', to: 'colo' });
    expect(first(fromDestination, /^checkpoint 1 loaded/)).to.deep.include({ from: 'colo', to: 'incoming' });
    // The secondary's output packets are data: they are not traced one by one.
    expect(fromSource.some((m) => m.type === 'colo-packets')).to.equal(false);
  });

  it('refuses an enable that is not a boolean, with QEMU\'s argument errors', async () => {
    const src = await startInstance(['--ram', '32M'], { name: 'src' });
    const refusal = (args: object) => src.qmp.execute(TRACE_COMMAND, args).then(() => null, (e: QmpError) => [e.code, e.desc]);
    expect(await refusal({ enable: 'yes' })).to.deep.equal(['GenericError', "Invalid parameter type for 'enable', expected: boolean"]);
    expect(await refusal({})).to.deep.equal(['GenericError', "Parameter 'enable' is missing"]);
  });
});

describe('__org.livemig_trace listener', () => {
  /** Just what the tracer touches of its host: a real ActorTrace whose roots are two stand-in refs, and a QMP server's counts. */
  function fakeHost(sessions: { count: number }) {
    const emitted: [string, unknown][] = [];
    const source = { id: 'x:0' };
    const destination = { id: 'x:1' };
    const actorTrace = new ActorTrace((ref: object) => (ref === source ? 'source' : ref === destination ? 'destination' : undefined));
    const qmp = {
      get sessionCount() {
        return sessions.count;
      },
      emitEvent: (name: string, data: unknown) => emitted.push([name, data]),
    };
    const host = { actorTrace, qmp } as unknown as Pick<MonitorHost, 'actorTrace' | 'qmp'>;
    const command = new Map(traceCommands(host)).get(TRACE_COMMAND)!;
    const set = (sessionId: number, enable: boolean) => command.run({ enable }, { sessionId, oob: false, takeFd: () => undefined, namedFds: new NamedFds() });
    return { actorTrace, source, emitted, set };
  }

  it("attaches to the instance's actor trace only while some session has tracing on", () => {
    const { actorTrace, set } = fakeHost({ count: 2 });
    expect(actorTrace.listenerCount('message')).to.equal(0);
    set(1, true);
    set(2, true);
    expect(actorTrace.listenerCount('message')).to.equal(1);
    set(1, false);
    expect(actorTrace.listenerCount('message')).to.equal(1);
    set(2, false);
    expect(actorTrace.listenerCount('message')).to.equal(0);
  });

  it('names root statecharts by their side, and detaches once the server has no session left', () => {
    const sessions = { count: 1 };
    const { actorTrace, source, emitted, set } = fakeHost(sessions);
    const inspect = (event: object) => actorTrace.inspect('source', event as Parameters<ActorTrace['inspect']>[1]);
    set(1, true);
    inspect({ type: '@xstate.event', sourceRef: { id: 'migration' }, actorRef: source, event: { type: 'setup.done' } });
    inspect({ type: '@xstate.snapshot', actorRef: source, event: { type: 'setup.done' } });
    actorTrace.message('incoming', 'return-path', 'shut');
    expect(emitted).to.deep.equal([
      [ACTOR_MESSAGE_EVENT, { side: 'source', from: 'migration', to: 'source', type: 'setup.done', kind: 'event' }],
      [ACTOR_MESSAGE_EVENT, { side: 'destination', from: 'incoming', to: 'return-path', type: 'shut', kind: 'message' }],
    ]);
    sessions.count = 0;
    actorTrace.message('return-path', 'migration', 'shut');
    expect(emitted).to.have.length(2);
    expect(actorTrace.listenerCount('message')).to.equal(0);
  });
});
