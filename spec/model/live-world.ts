/**
 * The world model's events done to real instances: a source and a
 * destination `livemig run`, a fault proxy between them, and the QMP
 * commands, faults and kills the model's events stand for. After each
 * step the real statuses and MIGRATION events of both sides, and the
 * monitor's answer to the step's command, must be the model's; at the end,
 * the guests' memory must be intact where the model says a guest survives.
 */
import { execFileSync } from 'node:child_process';
import { closeSync, constants as fsc, mkdtempSync, openSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { QmpClient } from '../../protocols/qmp/client.js';
import type { JsonObject } from '../../protocols/qmp/types.js';
import { FaultProxy } from '../support/fault-proxy.js';
import { recordEvents, startInstance, type TestInstance } from '../support/instances.js';
import {
  boundTcpUri, memoryKeepsChanging, queryMigrate, runState, sleep, unusedTcpUri,
} from '../support/migration-driver.js';
import type { PlannedPath, PlannedStep } from './path-plan.js';
import { eventLabel } from './path-plan.js';
import { statusOfQueryMigrate } from '../../protocols/qmp/migrate-status.js';
import {
  destinationListens, destinationStatusOf, SOURCE_STARTS_WITH_POSTCOPY_RAM, sourceRunState, sourceStatusOf, worldKey,
  type World, type WorldEvent,
} from './world-model.js';

const GUEST = ['--ram', '32M', '--smp', '1'];
/** Slow enough that a migration of the busy ab guest never converges: it stays `active` until lifted. */
const THROTTLED_BANDWIDTH = 2_000_000;
const THROTTLED = { 'max-bandwidth': THROTTLED_BANDWIDTH, 'downtime-limit': 300 };
/**
 * A migration with postcopy-ram switches once its first pass is through,
 * which at THROTTLED_BANDWIDTH would take 7 s (the 15 MiB the ab guest
 * writes): it runs at 64 MiB/s instead (a pass takes a quarter of a
 * second), with a downtime limit of 1 ms, so that the threshold (bandwidth
 * × limit, 64 KiB) stays below what the guest dirties in a pass and precopy
 * still never converges. After the switch pages go at 1 MiB/s and the
 * destination's guest is left stopped (it asks for no page): the 15 MiB
 * take well beyond the steps taken in postcopy, until lifted.
 */
const POSTCOPY_THROTTLED = { 'max-bandwidth': 64 << 20, 'downtime-limit': 1, 'max-postcopy-bandwidth': 1 << 20 };
/** Everything as fast as it goes: a precopy migration converges, a postcopy one sends its last pages. */
const LIFTED = { 'max-bandwidth': 100_000_000_000, 'downtime-limit': 300, 'max-postcopy-bandwidth': 0 };
const AB_START = 1 << 20;
const SOURCE_ARGS = [
  ...GUEST, '--workload', 'ab', '--ab-start', String(AB_START), '--ab-end', '16M', '--cap', 'events',
  // COLO checkpoints only when a step asks for one: a periodic one could leave the guest stopped behind a cut.
  '--param', 'x-checkpoint-delay=3600000',
  ...(SOURCE_STARTS_WITH_POSTCOPY_RAM ? ['--cap', 'postcopy-ram'] : []),
];
/** The destination's device that holds a switchover-ack migration until `device-ready` says it is ready. */
const ACK_DEVICE = 'vfio0';
const DESTINATION_ARGS = [...GUEST, '--incoming', 'defer', '--cap', 'events', '--switchover-ack-device', `${ACK_DEVICE}:never`];
/** The source's failover primary, whose guest unplugs it only on `guest-unplug`. */
const PRIMARY = 'hostdev0';
/** How long one step may take to show its consequences on a loaded machine: a bound, not a timing check. */
const STEP_BOUND_MS = 20_000;
/** Bytes a stalled active migration must write past the stall: more than every buffer on the way reads ahead. */
const HELD_BYTES = 256 * 1024;
/** After the last step: time for a late, unmodelled event or exit to show itself before the final look. */
const SETTLE_MS = 300;

/** The monitor's answer to a step's command: null when it accepted it (or the step is no command). */
type Answer = string | null;

/** What one side looks like now. */
interface SideView {
  status: string;
  /** MIGRATION events since the step began. */
  events: string[];
  detail: string;
}

export class StepMismatch extends Error {
  readonly code = 'MODEL_MISMATCH';
}

interface CheckAbReport {
  ok: boolean;
  'bad-pages': number;
  'first-bad-pages': number[];
}

/** The two instances a path starts with. */
export interface InstancePair {
  source: TestInstance;
  destination: TestInstance;
}

/**
 * The fresh pair a path starts from: a source running the ab workload with
 * its migrations throttled, and a destination waiting for migrate-incoming.
 */
export async function startPair(): Promise<InstancePair> {
  const [source, destination] = await Promise.all([
    startInstance([...SOURCE_ARGS, '--param', `max-bandwidth=${THROTTLED_BANDWIDTH}`], { name: 'model-src' }),
    startInstance(DESTINATION_ARGS, { name: 'model-dst' }),
  ]);
  return { source, destination };
}

/** One path's instances and link, driven step by step and compared with the model after each. */
export class LiveWorld {
  private readonly source: TestInstance;
  private destination: TestInstance;
  /** Every instance this path started, to stop at the end. */
  private readonly instances: TestInstance[] = [];
  /** Per destination (0 first): what its link needs. */
  private readonly links: readonly LinkPlan[];
  /** What the monitor answered the current step's command. */
  private answer: Answer = null;
  private destinationEvents: string[];
  private readonly sourceEvents: string[];
  /** Where `migrate` reaches the current destination: its fault proxy, or its own port. */
  private link: { uri: string; proxy?: FaultProxy } | undefined;
  private readonly proxies: FaultProxy[] = [];
  /** Which destination we are on (0 first); the path's faults tell which ones need a proxy. */
  private generation = 0;
  private readonly scratch = mkdtempSync(join(tmpdir(), 'livemig-model-'));
  private fifo: string | undefined;
  private marks = { source: 0, destination: 0 };
  /** What a mismatch reports: every step so far, with what both sides did. */
  private readonly log: string[] = [];

  constructor(pair: InstancePair, path: PlannedPath) {
    this.source = pair.source;
    this.destination = pair.destination;
    this.instances.push(pair.source, pair.destination);
    this.sourceEvents = recordEvents(pair.source.qmp);
    this.destinationEvents = recordEvents(pair.destination.qmp);
    this.links = linkPlans(path);
  }

  /** Drives every step of `path`, checking both sides after each, then the guests. */
  async drive(path: PlannedPath, onVerified: (step: PlannedStep) => void): Promise<void> {
    for (const [i, step] of path.steps.entries()) {
      const where = `step ${i + 1}/${path.steps.length} '${eventLabel(step.event)}'`;
      this.answer = null;
      await this.perform(step.event, step.before, step.after);
      await this.expect(step, where);
      onVerified(step);
    }
    const end = path.steps.at(-1)?.after;
    if (end) await this.expectEnd(end);
  }

  /** The real action behind each model event. */
  private async perform(event: WorldEvent, before: World, after: World): Promise<void> {
    this.marks = { source: this.sourceEvents.length, destination: this.destinationEvents.length };
    switch (event.type) {
      case 'migrate-incoming': {
        const plan = this.links[this.generation]!;
        if (plan.colo) await this.destination.qmp.execute('migrate-set-capabilities', { capabilities: [{ capability: 'x-colo', state: true }] });
        if (plan.postcopy) {
          await this.destination.qmp.execute('migrate-set-capabilities', { capabilities: [{ capability: 'postcopy-ram', state: true }] });
          // Before loading, `stop` only turns autostart off (QEMU's -S): after the switch the guest waits stopped.
          await this.destination.qmp.execute('stop');
        }
        await this.destination.qmp.execute('migrate-incoming', { uri: 'tcp:127.0.0.1:0', 'exit-on-error': false });
        const uri = await boundTcpUri(this.destination.qmp);
        if (!plan.faulted) {
          this.link = { uri };
          return;
        }
        const proxy = await FaultProxy.start({ host: '127.0.0.1', port: Number(uri.split(':')[2]) });
        this.proxies.push(proxy);
        this.link = { uri: proxy.uri, proxy };
        return;
      }
      case 'migrate': {
        await this.setCapabilities(event.pauseBeforeSwitchover, event.postcopy, event.colo, event.switchoverAck === true);
        await this.source.qmp.execute('migrate-set-parameters', event.postcopy ? POSTCOPY_THROTTLED : THROTTLED);
        // Where the destination does not listen, what the source meets is a port nobody listens on.
        const uri = destinationListens(before) ? this.requireLink().uri : await unusedTcpUri();
        await this.source.qmp.execute('migrate', { uri });
        return;
      }
      case 'migrate-blocked':
        // open() of a FIFO for writing waits for a reader that never comes; postcopy-ram is only checked after it.
        if (!this.fifo) {
          this.fifo = join(this.scratch, 'nobody-reads.fifo');
          execFileSync('mkfifo', ['-m', '600', this.fifo]);
        }
        await this.setCapabilities(false, true, false, false);
        await this.source.qmp.execute('migrate', { uri: `file:${this.fifo}` });
        return;
      case 'migrate-resume': {
        // Where the destination listens for it (behind its recovery proxy), or a port nobody listens on.
        const uri = before.recoverListening ? this.requireLink().uri : await unusedTcpUri();
        await this.command(this.source.qmp, 'migrate', { uri, resume: true });
        return;
      }
      case 'migrate-recover': {
        await this.command(this.destination.qmp, 'migrate-recover', { uri: 'tcp:127.0.0.1:0' });
        if (this.answer !== null) return;
        // The recovery gets a proxy of its own: the path may stall or cut it too. The old one stays (closed with
        // the path): a source still recovering through it, behind a stall, must not see its connection go.
        const uri = await boundTcpUri(this.destination.qmp);
        const proxy = await FaultProxy.start({ host: '127.0.0.1', port: Number(uri.split(':')[2]) });
        this.proxies.push(proxy);
        this.link = { uri: proxy.uri, proxy };
        return;
      }
      case 'migrate-pause':
        await this.command((event.side === 'source' ? this.source : this.destination).qmp, 'migrate-pause');
        return;
      case 'migrate_cancel':
        await this.command(this.source.qmp, 'migrate_cancel');
        return;
      case 'migrate-continue':
        await this.source.qmp.execute('migrate-continue', { state: 'pre-switchover' });
        return;
      case 'migrate-start-postcopy':
        await this.command(this.source.qmp, 'migrate-start-postcopy');
        if (after.switched && !before.switched) await this.switchSettled();
        return;
      case 'lift-max-bandwidth':
        await this.source.qmp.execute('migrate-set-parameters', LIFTED);
        return;
      case 'cont':
        await this.command(this.source.qmp, 'cont');
        return;
      case 'stall':
        this.requireProxy().stall();
        if (sourceStatusOf(before) === 'active') await this.holdBytes();
        return;
      case 'cut':
        this.requireProxy().cut();
        return;
      case 'corrupt':
        // A paused migration sends nothing: what it sent before must be through before the garbage starts.
        if (sourceStatusOf(before) === 'pre-switchover') await this.drainLink();
        this.requireProxy().corrupt();
        // In postcopy the stopped destination guest asks for nothing: run it, and its first page request brings garbage.
        if (sourceStatusOf(before) === 'postcopy-active') await this.destination.qmp.execute('cont');
        return;
      case 'kill-destination':
        this.destination.process.kill('SIGKILL');
        await this.destination.exited;
        // The model has the dead destination's close reach the source at once. Behind a stall the proxy's
        // sockets are paused and it may not see that close, so it passes it on as the kernel's reset would.
        if (before.link === 'stall' && before.connection === 'open') this.requireProxy().cut();
        return;
      case 'x-colo-lost-heartbeat':
        await this.command((event.side === 'source' ? this.source : this.destination).qmp, 'x-colo-lost-heartbeat');
        return;
      case 'colo-checkpoint': {
        const taken = async () => (await this.source.qmp.execute<{ checkpoints: number }>('__org.livemig_query-colo')).checkpoints;
        const taken0 = this.answer === null ? await taken() : 0;
        await this.command(this.source.qmp, '__org.livemig_colo-checkpoint');
        // With the secondary there, the checkpoint is seen through, so no later step meets the guest stopped for it.
        if (this.answer === null && before.connection === 'open' && destinationStatusOf(before) === 'colo') {
          const deadline = Date.now() + STEP_BOUND_MS;
          while ((await taken()) <= taken0) {
            if (Date.now() > deadline) throw new StepMismatch('the COLO checkpoint asked for was not taken');
            await sleep(20);
          }
        }
        return;
      }
      case 'plug-failover-primary':
        // One a completed migration left unplugged goes first: the new one takes its name.
        await this.source.qmp.execute('__org.livemig_device-del', { id: PRIMARY }).catch(() => {});
        await this.source.qmp.execute('__org.livemig_device-add', { id: PRIMARY, migratable: false, 'failover-pair-id': 'net0', 'unplug-delay': 'never' });
        return;
      case 'guest-unplug':
        await this.source.qmp.execute('__org.livemig_guest-unplug', { id: PRIMARY });
        return;
      case 'device-ready':
        await this.destination.qmp.execute('__org.livemig_device-ready', { id: ACK_DEVICE });
        return;
      case 'new-destination':
        await this.retireDestination(before);
        this.destination = await startInstance(DESTINATION_ARGS, { name: 'model-dst2' });
        this.instances.push(this.destination);
        this.destinationEvents = recordEvents(this.destination.qmp);
        this.marks.destination = 0;
        this.link = undefined;
        this.generation += 1;
        return;
    }
  }

  /** The source's capabilities for the next migration (set while none runs). */
  private async setCapabilities(pauseBeforeSwitchover: boolean, postcopy: boolean, colo: boolean, switchoverAck: boolean): Promise<void> {
    await this.source.qmp.execute('migrate-set-capabilities', {
      capabilities: [
        // switchover-ack needs return-path (and is turned off before it).
        ...(switchoverAck ? [{ capability: 'return-path', state: true }, { capability: 'switchover-ack', state: true }] : [{ capability: 'switchover-ack', state: false }]),
        { capability: 'pause-before-switchover', state: pauseBeforeSwitchover },
        { capability: 'postcopy-ram', state: postcopy },
        { capability: 'x-colo', state: colo },
      ],
    });
  }

  /** A command the monitor may refuse: its answer is the step's, compared with the model's. */
  private async command(qmp: QmpClient, name: string, args?: JsonObject): Promise<void> {
    try {
      await qmp.execute(name, args);
    } catch (err) {
      const desc = (err as { desc?: unknown }).desc;
      if (typeof desc !== 'string') throw err;
      this.answer = desc;
    }
  }

  /**
   * After migrate-start-postcopy: a source that switches shows postcopy-active
   * before the destination has answered its package (its point of no
   * return); wait for the answer (downtime set), so that the next event
   * meets a source past it, as the model has it.
   */
  private async switchSettled(): Promise<void> {
    const deadline = Date.now() + 15_000;
    for (;;) {
      const info = await queryMigrate(this.source.qmp);
      const switching = info.status === 'active' || (info.status === 'postcopy-active' && info.downtime === undefined);
      if (!switching) return;
      if (Date.now() > deadline) throw new StepMismatch(`the source still ${info.status} without its package answered 15 s after migrate-start-postcopy`);
      await sleep(20);
    }
  }

  /**
   * A stall is in force once the proxy holds bytes: a close queued behind
   * them cannot pass. Waits until the throttled source has written more.
   */
  private async holdBytes(): Promise<void> {
    const sent = async () => (await queryMigrate(this.source.qmp)).ram?.transferred ?? 0;
    const from = await sent();
    const deadline = Date.now() + STEP_BOUND_MS;
    while ((await sent()) < from + HELD_BYTES) {
      if (Date.now() > deadline) throw new StepMismatch(`the stalled source sent no more than ${(await sent()) - from} bytes`);
      await sleep(20);
    }
  }

  /** Waits until the proxy has forwarded every byte the source wrote. */
  private async drainLink(): Promise<void> {
    const proxy = this.requireProxy();
    const sent = (await queryMigrate(this.source.qmp)).ram?.transferred ?? 0;
    const deadline = Date.now() + STEP_BOUND_MS;
    while (proxy.forwarded < sent) {
      if (Date.now() > deadline) throw new StepMismatch(`the proxy forwarded ${proxy.forwarded} of the ${sent} bytes the paused source sent`);
      await sleep(20);
    }
  }

  /** Waits (bounded) for the step's events on both sides, then compares everything with the model. */
  private async expect(step: PlannedStep, where: string): Promise<void> {
    const want = {
      source: step.source.statuses.length,
      destination: step.destination.statuses.length,
    };
    const gone = destinationStatusOf(step.after) === 'gone';
    const deadline = Date.now() + STEP_BOUND_MS;
    while (Date.now() < deadline) {
      const sourceDone = this.sourceEvents.length - this.marks.source >= want.source;
      const destinationDone = gone
        ? this.destinationExited()
        : this.destinationEvents.length - this.marks.destination >= want.destination || this.destinationExited();
      if (sourceDone && destinationDone) break;
      await sleep(20);
    }
    await this.compare(step.after, step.source.statuses, step.destination.statuses, where, step.refusal);
  }

  private async compare(world: World, sourceStatuses: string[], destinationStatuses: string[], where: string, refusal: Answer = null): Promise<void> {
    const [source, destination] = await Promise.all([this.viewSource(), this.viewDestination()]);
    const model = {
      source: { status: sourceStatusOf(world), events: sourceStatuses },
      destination: { status: destinationStatusOf(world), events: destinationStatuses },
    };
    const line = (side: { status: string; events: string[] }) => `${side.status} [${side.events.join(', ')}]`;
    const answer = (a: Answer) => (a === null ? '' : ` | refused: ${a}`);
    const entry =
      `${where}\n    model: source ${line(model.source)} | destination ${line(model.destination)}${answer(refusal)}` +
      `\n    real:  source ${line(source)} | destination ${line(destination)}${answer(this.answer)}`;
    this.log.push(entry);
    const same = (a: { status: string; events: string[] }, b: { status: string; events: string[] }) =>
      a.status === b.status && a.events.join() === b.events.join();
    if (same(model.source, source) && same(model.destination, destination) && refusal === this.answer) return;
    throw new StepMismatch(
      `the real instances left the model at ${where} (model state: ${worldKey(world)})\n` +
        `${this.log.map((l) => `  ${l}`).join('\n')}\n` +
        `  source detail: ${source.detail}\n  destination detail: ${destination.detail}`,
    );
  }

  /**
   * After the last step: nothing more happens on either side, the source
   * guest is in the run state the model says, and every guest the model
   * says survives has its memory intact (the ab check on the stopped guest).
   */
  private async expectEnd(world: World): Promise<void> {
    this.marks = { source: this.sourceEvents.length, destination: this.destinationEvents.length };
    this.answer = null;
    await sleep(SETTLE_MS);
    await this.compare(world, [], [], 'the end (settled)');
    const source = sourceStatusOf(world);
    const run = await runState(this.source.qmp);
    // A failure after the end of the stream went into a stall: stopped if the kernel took it all, running if not.
    const expected = source === 'failed' && world.streamInStall ? ['running', 'postmigrate'] : [sourceRunState(world)];
    if (!expected.includes(run)) {
      throw new StepMismatch(`at the end the source guest is '${run}', the model says '${expected.join("' or '")}' (${worldKey(world)})`);
    }
    if (['none', 'failed', 'cancelled', 'completed'].includes(source)) await this.expectIntact(this.source, 'source');
    if (destinationStatusOf(world) === 'completed') await this.expectCompletedDestination();
  }

  /**
   * A completed destination runs the guest (one whose autostart the path
   * turned off holds it paused, and runs it on `cont`), and its memory is intact.
   */
  private async expectCompletedDestination(): Promise<void> {
    const autostart = !this.links[this.generation]!.postcopy;
    const run = await runState(this.destination.qmp);
    if (run !== (autostart ? 'running' : 'paused')) {
      throw new StepMismatch(`the completed destination's guest is '${run}', not ${autostart ? 'running' : 'paused (autostart off)'}`);
    }
    if (!autostart) await this.destination.qmp.execute('cont');
    await this.expectIntact(this.destination, 'destination');
  }

  /** A running guest still runs its workload; stopped, its every page passes the ab check. */
  private async expectIntact(instance: TestInstance, side: string): Promise<void> {
    if ((await runState(instance.qmp)) === 'running') {
      if (!(await memoryKeepsChanging(instance, AB_START, 64 * 1024))) {
        throw new StepMismatch(`the ${side} guest is 'running' but its memory does not change: its vCPUs do not run`);
      }
      await instance.qmp.execute('stop');
    }
    const report = await instance.qmp.execute<CheckAbReport>('__org.livemig_check-ab');
    if (!report.ok || report['bad-pages'] !== 0) {
      throw new StepMismatch(`the ${side} guest's memory is damaged: ${JSON.stringify(report)}`);
    }
  }

  /** Before a new destination replaces it: a completed one must hold the guest intact. */
  private async retireDestination(before: World): Promise<void> {
    if (destinationStatusOf(before) === 'completed') await this.expectCompletedDestination();
    await this.link?.proxy?.close();
    if (!this.destinationExited()) {
      this.destination.process.kill('SIGKILL');
      await this.destination.exited;
    }
  }

  /** Stops this path's instances and proxies, and lets go of a blocked FIFO open. */
  async close(): Promise<void> {
    await Promise.all(this.proxies.map((p) => p.close().catch(() => {})));
    // Let the source's open() of the FIFO (blocked in a libuv thread) return.
    if (this.fifo) closeSync(openSync(this.fifo, fsc.O_RDONLY | fsc.O_NONBLOCK));
    await Promise.all(this.instances.map(stopInstance));
    rmSync(this.scratch, { recursive: true, force: true });
  }

  private requireLink(): { uri: string; proxy?: FaultProxy } {
    if (!this.link) throw new Error('the model uses the link before the destination listens');
    return this.link;
  }

  private requireProxy(): FaultProxy {
    const proxy = this.requireLink().proxy;
    if (!proxy) throw new Error('a fault on a link the plan gave no proxy');
    return proxy;
  }

  private destinationExited(): boolean {
    return this.destination.process.exitCode !== null || this.destination.process.signalCode !== null;
  }

  private async viewSource(): Promise<SideView> {
    const events = this.sourceEvents.slice(this.marks.source);
    const info = await queryMigrate(this.source.qmp);
    return { status: info.status ?? 'none', events, detail: summarize(info, this.source) };
  }

  private async viewDestination(): Promise<SideView> {
    const events = this.destinationEvents.slice(this.marks.destination);
    if (this.destinationExited()) {
      const { exitCode, signalCode } = this.destination.process;
      return { status: 'gone', events, detail: `exited (${signalCode ?? `status ${exitCode}`}); log:\n${logTail(this.destination)}` };
    }
    try {
      const info = await queryMigrate(this.destination.qmp);
      return { status: statusOfQueryMigrate(info), events, detail: summarize(info, this.destination) };
    } catch (err) {
      // The process is on its way out: the monitor closed under the query.
      await Promise.race([this.destination.exited, sleep(2_000)]);
      return { status: this.destinationExited() ? 'gone' : `unreachable (${(err as Error).message})`, events, detail: logTail(this.destination) };
    }
  }
}

/**
 * Only this path's own instances: the next path's pair, started while this
 * one ran, must survive (stopAllInstances() is the suite's last resort).
 */
async function stopInstance(instance: TestInstance): Promise<void> {
  await instance.qmp.close().catch(() => {});
  if (instance.process.exitCode === null && instance.process.signalCode === null) {
    instance.process.kill('SIGKILL');
    await instance.exited;
  }
  rmSync(instance.dir, { recursive: true, force: true });
}

/** What a destination's link needs for the path's events. */
interface LinkPlan {
  /** The path stalls, cuts or corrupts it. */
  faulted: boolean;
  /**
   * A migration with postcopy-ram goes to it: the destination has the
   * capability too, and autostart off, so that after the switch its guest
   * asks for no page and the postcopy phase lasts until lifted.
   */
  postcopy: boolean;
  /** A migration with x-colo goes to it: the destination has the capability too. */
  colo: boolean;
}

/**
 * Per destination, what its link needs. Only a link the path stalls, cuts
 * or corrupts gets the fault proxy. The proxy tears a connection down on
 * the first FIN either way, so it cannot carry a migration to completion
 * (the source half-closes its stream, then waits for the destination's
 * SHUT); a link the path never faults is a plain connection to the
 * destination's port.
 */
function linkPlans(path: PlannedPath): LinkPlan[] {
  const plans: LinkPlan[] = [{ faulted: false, postcopy: false, colo: false }];
  for (const { event } of path.steps) {
    const current = plans[plans.length - 1]!;
    if (event.type === 'new-destination') plans.push({ faulted: false, postcopy: false, colo: false });
    else if (event.type === 'stall' || event.type === 'cut' || event.type === 'corrupt' || event.type === 'migrate-recover') current.faulted = true;
    else if (event.type === 'migrate' && event.postcopy) current.postcopy = true;
    else if (event.type === 'migrate' && event.colo) current.colo = true;
  }
  return plans;
}

function summarize(info: { status?: string; 'error-desc'?: string }, instance: TestInstance): string {
  return `${JSON.stringify({ status: info.status ?? 'none', 'error-desc': info['error-desc'] })}; log:\n${logTail(instance)}`;
}

/** The instance's last log lines, status changes and problems first of all. */
function logTail(instance: TestInstance, lines = 12): string {
  return instance
    .stderr()
    .split('\n')
    .filter((l) => l.trim() !== '')
    .slice(-lines)
    .map((l) => `      ${l.length > 400 ? `${l.slice(0, 400)}…` : l}`)
    .join('\n');
}
