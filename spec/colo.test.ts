/**
 * COLO with real processes: a primary and a secondary guest running side
 * by side, checkpointed into the secondary, their output compared before
 * it leaves (the net-out peer judges it: no gap, no duplicate, every
 * packet following from the last, so a packet of a diverged secondary
 * would show), and failover either way, with the process of the other
 * side killed at random moments, mid-checkpoint included.
 */
import { expect } from 'chai';
import { COLO_AB_END, COLO_AB_START, checkpointsSeen, startColoPair, type ColoPair, type ColoSide } from './support/colo-pair.js';
import { startInstance, stopAllInstances, type TestInstance } from './support/instances.js';
import { abCheckStopped, boundTcpUri, EVENTS, runState, sleep, waitForMigration } from './support/migration-driver.js';
import { logTail } from './support/multifd-pair.js';
import { refusal } from './support/qmp-expect.js';
import { connectionsOf, killLocalPort } from './support/sockets.js';
import { scratchDirPerTest } from './support/scratch-dir.js';

const PAGE = 4096;

interface ColoFigures {
  checkpoints: number;
  'last-checkpoint'?: { id: number; reason: string };
  compare?: { matched: number; releasedAtCheckpoint: number; mismatches: number };
  takeover?: { checkpoint: number; digest?: string };
}

const coloFigures = (side: ColoSide) => side.instance.qmp.execute<ColoFigures>('__org.livemig_query-colo');

async function until(what: string, ok: () => Promise<boolean> | boolean, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await ok())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

/** The ab check over the COLO guests' range, the guest stopped for it. */
async function abHolds(instance: TestInstance): Promise<void> {
  const report = await abCheckStopped(instance, COLO_AB_START, COLO_AB_END);
  expect(report.touched).to.equal(true);
  expect(report.badPages, `ab check of ${instance.name}`).to.deep.equal([]);
}

/** The peer received more packets within a while: the survivor's output flows. */
async function outputFlows(pair: ColoPair): Promise<void> {
  const before = pair.sink.received.length;
  await until('the guest output to flow again', () => pair.sink.received.length > before + 3);
}

describe('COLO', function () {
  this.timeout(120_000);
  const scratch = scratchDirPerTest('livemig-colo-', stopAllInstances);
  let pair: ColoPair | undefined;
  afterEach(async function () {
    if (this.currentTest?.state === 'failed' && pair) {
      console.log(logTail(pair.primary.instance), logTail(pair.secondary.instance), pair.sink.violations.slice(0, 5));
    }
    await pair?.sink.close();
    pair = undefined;
  });

  it('checkpoints many times: after each the secondary holds exactly the primary at that checkpoint, and only matched output leaves', async () => {
    // Back to back (1 ms apart): the secondary's steps often reach the primary two in one read.
    pair = await startColoPair(scratch(), { smp: 2, delayMs: 1 });
    expect(pair.primary.migration).to.deep.equal(['setup', 'active', 'colo']);
    expect(pair.secondary.migration.slice(-2)).to.deep.equal(['active', 'colo']);
    await checkpointsSeen(pair.secondary, 60);
    const primary = new Map(pair.primary.checkpoints.map((c) => [c.checkpoint, c.digest]));
    for (const c of pair.secondary.checkpoints) expect(c.digest, `checkpoint ${c.checkpoint}`).to.be.a('string').and.equal(primary.get(c.checkpoint));
    expect(pair.sink.violations).to.deep.equal([]);
    expect(pair.sink.received.length).to.be.above(0);
    const figures = await coloFigures(pair.primary);
    expect(figures.compare!.mismatches).to.equal(0);
    expect(figures.compare!.matched, 'packets released because the secondary sent the same').to.be.above(0);
    expect(await pair.primary.instance.qmp.execute('query-colo-status')).to.deep.equal({ mode: 'primary', 'last-mode': 'none', reason: 'none' });
    expect(await pair.secondary.instance.qmp.execute('query-colo-status')).to.deep.equal({ mode: 'secondary', 'last-mode': 'none', reason: 'none' });
    expect(await runState(pair.secondary.instance.qmp)).to.be.oneOf(['running', 'colo']);
  });

  it('a secondary made to differ forces a checkpoint at once; its output never leaves', async () => {
    pair = await startColoPair(scratch(), { delayMs: 20_000 });
    await until('output matched', async () => ((await coloFigures(pair!.primary)).compare?.matched ?? 0) > 10);
    // vCPU 0 sends a packet made of this page's byte each pass: raise the secondary's copy by 128.
    const address = COLO_AB_START + 4096 * PAGE;
    const file = `${pair.secondary.instance.dir}/byte.bin`;
    await pair.secondary.instance.qmp.execute('pmemsave', { val: address, size: 1, filename: file });
    const { readFileSync } = await import('node:fs');
    await pair.secondary.instance.qmp.execute('__org.livemig_guest-write', { address, value: (readFileSync(file)[0]! + 128) & 0xff });
    await until('a checkpoint forced by the mismatch', async () => (await coloFigures(pair!.primary)).checkpoints >= 1, 10_000);
    const figures = await coloFigures(pair.primary);
    expect(figures.compare!.mismatches).to.be.at.least(1);
    expect(figures['last-checkpoint']!.reason).to.equal('mismatch');
    await checkpointsSeen(pair.secondary, 1);
    const c = pair.secondary.checkpoints[0]!;
    expect(c.digest).to.equal(pair.primary.checkpoints.find((p) => p.checkpoint === c.checkpoint)!.digest);
    // After the checkpoint the two agree again, and nothing of the secondary's own went out.
    const matched = figures.compare!.matched;
    await until('output matched again', async () => (await coloFigures(pair!.primary)).compare!.matched > matched + 5);
    expect(pair.sink.violations).to.deep.equal([]);
  });

  it('x-checkpoint-delay is live: setting it takes a checkpoint at once', async () => {
    pair = await startColoPair(scratch(), { delayMs: 60_000, digests: false });
    expect((await coloFigures(pair.primary)).checkpoints).to.equal(0);
    await pair.primary.instance.qmp.execute('migrate-set-parameters', { 'x-checkpoint-delay': 400 });
    await until('checkpoints at the new delay', async () => (await coloFigures(pair!.primary)).checkpoints >= 3, 20_000);
    expect((await coloFigures(pair.primary))['last-checkpoint']!.reason).to.be.oneOf(['request', 'periodic', 'timeout']);
    await pair.primary.instance.qmp.execute('__org.livemig_colo-checkpoint');
    expect(pair.sink.violations).to.deep.equal([]);
  });

  // Each side killed mid-checkpoint (right after the primary stopped for one) and at random moments.
  const kills: { victim: 'primary' | 'secondary'; moment: 'mid-checkpoint' | 'random' }[] = [
    { victim: 'primary', moment: 'mid-checkpoint' },
    { victim: 'primary', moment: 'random' },
    { victim: 'primary', moment: 'random' },
    { victim: 'secondary', moment: 'mid-checkpoint' },
    { victim: 'secondary', moment: 'random' },
  ];
  for (const { victim, moment } of kills) {
    const survivorName = victim === 'primary' ? 'secondary' : 'primary';
    it(`${victim} killed (${moment}): the ${survivorName} fails over on the lost heartbeat, its RAM and output exact`, async () => {
      pair = await startColoPair(scratch(), { delayMs: 250 });
      await checkpointsSeen(pair.secondary, 2 + Math.floor(Math.random() * 4));
      if (moment === 'mid-checkpoint') {
        // The primary announces a checkpoint once stopped, before it sends it.
        const seen = pair.primary.checkpoints.length;
        await until('a checkpoint to start', () => pair!.primary.checkpoints.length > seen);
      } else {
        await sleep(Math.random() * 400);
      }
      const killed = pair[victim];
      const survivor = pair[survivorName];
      killed.instance.process.kill('SIGKILL');
      await killed.instance.exited;
      const qmp = survivor.instance.qmp;
      await until(`COLO_EXIT on the ${survivorName}`, () => survivor.exits.length > 0);
      expect(survivor.exits).to.deep.equal([{ mode: survivorName, reason: 'error' }]);
      expect(await qmp.execute('query-migrate')).to.include({ status: 'colo' });
      await qmp.execute('x-colo-lost-heartbeat');
      await waitForMigration(qmp, ['completed'], 10_000);
      expect(await qmp.execute('query-colo-status')).to.deep.equal({ mode: 'none', 'last-mode': survivorName, reason: 'request' });
      expect(survivor.exits, 'COLO_EXIT comes once').to.have.length(1);
      if (survivorName === 'secondary') {
        const { takeover } = await coloFigures(survivor);
        expect(takeover!.checkpoint, 'the last checkpoint the secondary completed').to.equal(survivor.checkpoints.at(-1)!.checkpoint);
        const primaryDigest = pair.primary.checkpoints.find((c) => c.checkpoint === takeover!.checkpoint)!.digest;
        expect(takeover!.digest, "the secondary's RAM at takeover against the primary's at that checkpoint").to.equal(primaryDigest);
      }
      expect(await runState(qmp)).to.equal('running');
      await outputFlows(pair);
      expect(pair.sink.violations).to.deep.equal([]);
      await abHolds(survivor.instance);
    });
  }

  it('a link cut with both sides alive: both leave checkpointing (COLO_EXIT error) and hold their output until one is told to fail over', async () => {
    pair = await startColoPair(scratch(), { delayMs: 250, digests: false });
    await until('checkpoints', async () => (await coloFigures(pair!.primary)).checkpoints >= 2);
    const listening = Number(pair.uri.split(':').at(-1));
    expect(connectionsOf(pair.secondary.instance.process.pid!).some((c) => c.local.port === listening)).to.equal(true);
    killLocalPort(listening);
    await until('COLO_EXIT on both sides', () => pair!.primary.exits.length > 0 && pair!.secondary.exits.length > 0);
    expect(pair.primary.exits).to.deep.equal([{ mode: 'primary', reason: 'error' }]);
    expect(pair.secondary.exits).to.deep.equal([{ mode: 'secondary', reason: 'error' }]);
    for (const side of [pair.primary, pair.secondary]) expect(await side.instance.qmp.execute('query-migrate')).to.include({ status: 'colo' });
    // Neither knows whether the other is alive: nothing leaves until the heartbeat's owner decides.
    await sleep(300);
    const held = pair.sink.received.length;
    await sleep(500);
    expect(pair.sink.received.length).to.equal(held);
    await pair.secondary.instance.qmp.execute('x-colo-lost-heartbeat');
    await waitForMigration(pair.secondary.instance.qmp, ['completed'], 10_000);
    await outputFlows(pair);
    expect(pair.sink.violations).to.deep.equal([]);
  });

  it('a secondary that hangs while a checkpoint is being sent: the lost heartbeat on the primary breaks the send off and the guest runs on', async () => {
    pair = await startColoPair(scratch(), { delayMs: 250, proxy: true });
    await checkpointsSeen(pair.secondary, 2);
    // 2 MB/s: the next checkpoint's ~47 MiB take far longer than any step here, and the secondary stops reading.
    pair.proxy!.throttle(2_000_000);
    const seen = pair.primary.checkpoints.length;
    await until('a checkpoint to start', () => pair!.primary.checkpoints.length > seen);
    pair.secondary.instance.process.kill('SIGSTOP');
    await sleep(300);
    const primary = pair.primary.instance.qmp;
    expect(await runState(primary), 'the primary, stopped for the checkpoint it sends').to.equal('colo');
    await primary.execute('x-colo-lost-heartbeat');
    expect((await refusal(primary.execute('x-colo-lost-heartbeat'))).desc).to.be.oneOf(['COLO failover is already activated', "The feature 'colo' is not enabled"]);
    await waitForMigration(primary, ['completed'], 10_000);
    expect(await runState(primary)).to.equal('running');
    expect(pair.primary.exits).to.deep.equal([{ mode: 'primary', reason: 'request' }]);
    await outputFlows(pair);
    expect(pair.sink.violations).to.deep.equal([]);
    await abHolds(pair.primary.instance);
    pair.secondary.instance.process.kill('SIGKILL');
    await pair.proxy!.close();
  });

  it('after a failover the survivor migrates again, and its output goes on from the new host', async () => {
    const dir = scratch();
    pair = await startColoPair(dir, { delayMs: 250, digests: false });
    await until('checkpoints', async () => (await coloFigures(pair!.primary)).checkpoints >= 2);
    pair.primary.instance.process.kill('SIGKILL');
    const survivor = pair.secondary.instance;
    await until('COLO_EXIT', () => pair!.secondary.exits.length > 0);
    await survivor.qmp.execute('x-colo-lost-heartbeat');
    await waitForMigration(survivor.qmp, ['completed'], 10_000);
    await survivor.qmp.execute('migrate-set-capabilities', { capabilities: [{ capability: 'x-colo', state: false }] });
    // As for the first migration (startColoPair): the default max-bandwidth does not converge on ab's 47 MiB.
    await survivor.qmp.execute('migrate-set-parameters', { 'max-bandwidth': 10 * 1024 ** 3 });
    const next = await startInstance(['--ram', '64M', '--workload', 'ab', '--ab-start', String(COLO_AB_START), '--ab-end', String(COLO_AB_END),
      '--net-out', `unix:${dir}/net.sock`, '--incoming', 'tcp:127.0.0.1:0', ...EVENTS], { name: 'next' });
    await survivor.qmp.execute('migrate', { uri: await boundTcpUri(next.qmp) });
    expect((await waitForMigration(survivor.qmp, ['completed', 'failed'], 60_000)).status).to.equal('completed');
    await waitForMigration(next.qmp, ['completed'], 10_000);
    expect(await runState(next.qmp)).to.equal('running');
    await outputFlows(pair);
    expect(pair.sink.violations).to.deep.equal([]);
    await abHolds(next);
  });

  it('refuses what it cannot do, with clear errors', async () => {
    const plain = await startInstance(['--ram', '64M'], { name: 'plain' });
    expect(await refusal(plain.qmp.execute('x-colo-lost-heartbeat'))).to.deep.equal({ class: 'GenericError', desc: "The feature 'colo' is not enabled" });
    expect((await refusal(plain.qmp.execute('__org.livemig_colo-checkpoint'))).desc).to.match(/not one/);
    for (const clash of ['multifd', 'postcopy-ram']) {
      expect((await refusal(plain.qmp.execute('migrate-set-capabilities', {
        capabilities: [{ capability: 'x-colo', state: true }, { capability: clash, state: true }],
      }))).desc).to.equal(`x-colo is not compatible with ${clash}: COLO checkpoints travel on the main channel of a precopy migration`);
    }
    await plain.qmp.execute('migrate-set-capabilities', { capabilities: [{ capability: 'x-colo', state: true }] });
    await plain.qmp.execute('migrate', { uri: `exec:cat > ${scratch()}/colo.mig` });
    const failed = await waitForMigration(plain.qmp, ['failed', 'completed', 'colo'], 10_000);
    expect(failed['error-desc']).to.equal("COLO needs a return path, which 'exec:' cannot carry: use tcp: or unix:");
    expect(await runState(plain.qmp)).to.equal('running');
  });

  it('a destination without x-colo refuses a COLO stream; in colo a second migration and capability changes are refused, migrate_cancel does nothing', async () => {
    const source = await startInstance(['--ram', '64M', '--workload', 'ab', '--cap', 'x-colo'], { name: 'src' });
    const dest = await startInstance(['--ram', '64M', '--workload', 'ab', '--incoming', 'tcp:127.0.0.1:0'], { name: 'dst' });
    await source.qmp.execute('migrate', { uri: await boundTcpUri(dest.qmp) });
    const failed = await waitForMigration(source.qmp, ['failed', 'colo'], 20_000);
    expect(failed['error-desc']).to.match(/ENABLE_COLO came in the migration stream, but the x-colo capability is not set here/);
    expect(await runState(source.qmp)).to.equal('running');

    pair = await startColoPair(scratch(), { delayMs: 20_000, digests: false });
    for (const side of [pair.primary, pair.secondary]) {
      expect((await refusal(side.instance.qmp.execute('migrate-set-capabilities', { capabilities: [{ capability: 'events', state: false }] }))).desc)
        .to.equal("There's a migration process in progress");
    }
    expect((await refusal(pair.primary.instance.qmp.execute('migrate', { uri: 'tcp:127.0.0.1:1' }))).desc).to.equal("There's a migration process in progress");
    await pair.primary.instance.qmp.execute('migrate_cancel');
    await sleep(200);
    expect(await pair.primary.instance.qmp.execute('query-migrate')).to.include({ status: 'colo' });
    expect(pair.sink.violations).to.deep.equal([]);
  });
});
