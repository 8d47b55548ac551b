/**
 * QEMU's migration thread, as the source machine's `migration` actor:
 * setup (connect, header), iterations (send dirty pages, dirty-sync when the
 * pending estimate falls below the threshold), then either completion (stop
 * the guest, send what is left and the device state) or, once postcopy is
 * asked for, the switch to postcopy and its phase (postcopy-sender.ts); and
 * cleanup. It reports to the statechart with MigrationActorReport events;
 * the statechart decides the status.
 *
 * The point of no return is the postcopy package: before it, any failure
 * fails the migration and the source guest runs on; after it, a failure
 * pauses the migration (postcopy-paused) and the guest stays stopped here,
 * its pages kept, since the destination already runs it.
 */
import { fromCallback } from 'xstate';
import type { MigrationActorMessage, MigrationActorReport } from '../../machines/events.js';
import type { MigrationActorInput } from '../../machines/source.js';
import { ChannelKind } from '../../protocols/hello/constants.js';
import { encodeHello } from '../../protocols/hello/encode.js';
import { YANKED, openOutgoing, type OutgoingChannel } from '../../protocols/transport/outgoing.js';
import { AutoConverge } from './auto-converge.js';
import { DirtyLimitThrottle } from './dirty-limit-throttle.js';
import type { TlsClient } from '../../protocols/tls/session.js';
import { MULTI_CHANNEL_REQUIRED, parseMigrationUri, type MigrationUri } from '../../protocols/transport/uri.js';
import { TARGET_PAGE_SIZE } from '../guest/constants.js';
import { releasePages } from '../guest/release-pages.js';
import type { RunState } from '../guest/run-state.js';
import { MULTIFD_CONNECT_TIMEOUT_MS } from '../multifd/connect-timeout.js';
import type { ChannelAddress } from '../multifd/messages.js';
import { channelPath } from '../multifd/multifd-receiver.js';
import { MultifdSender } from '../multifd/multifd-sender.js';
import { PreemptSender } from '../postcopy-preempt/preempt-sender.js';
import { preemptPath } from '../postcopy-preempt/preempt-receiver.js';
import { MAX_DATA_PAGES } from '../ram/page-runs.js';
import type { PageBatch } from '../ram/page-runs.js';
import { RamSaver } from '../ram/ram-saver.js';
import { FIRST_PASS_END_SYNC, RamStats } from '../ram/ram-stats.js';
import type { XbzrleCounters } from '../ram/xbzrle-counters.js';
import { XbzrleSaver } from '../ram/xbzrle-saver.js';
import { POSTCOPY_STALL_MS } from '../return-path/postcopy-liveness.js';
import { SourceReturnPath } from '../return-path/source-return-path.js';
import { traceLabel } from '../../protocols/return-path/messages.js';
import { describeGuest } from '../savevm/stream-header.js';
import { CancelledError, abortable, sleep } from './abortable.js';
import type { SourceEnvironment } from './environment.js';
import { MainChannel } from './main-channel.js';
import { BackgroundSnapshot } from './background-snapshot.js';
import { ColoPrimary } from './colo-primary.js';
import { logThreadRoles } from '../threads/thread-role.js';
import { PipelineDrain } from './pipeline-drain.js';
import { CpuWait } from './cpu-wait.js';
import { PACKAGE_LOADED_PING, PostcopySender } from './postcopy-sender.js';
import { RATE_WINDOW_MS } from './rate-limit.js';
import { TransferMeter } from './transfer-meter.js';

/** What query-migrate shows of a source migration. */
export interface SourceMigrationInfo {
  startTime: number;
  setupTime: number | undefined;
  endTime: number | undefined;
  downtime: number | undefined;
  expectedDowntime: number;
  /** Postcopy: from the stop until the destination ran the guest (its PONG to the PING after the package). */
  stopToRun: number | undefined;
  /** release-ram: guest memory given back to the OS in postcopy. */
  releasedBytes: number;
  stats: RamStats;
  /** With the xbzrle capability: its counters (query-migrate's xbzrle-cache). */
  readonly xbzrle: XbzrleCounters | undefined;
  /** A `migrate resume=true` is connecting (the status is still postcopy-paused). */
  readonly resumeConnecting: boolean;
  /** auto-converge's throttle on the vCPUs, percent; 0 when none (query-migrate's cpu-throttle-percentage). */
  readonly cpuThrottlePercentage: number;
}

/** How long a broken channel waits for the destination's reason on the return path. */
const SHUT_GRACE_MS = 500;
/** Why a migration that failed after its whole stream went out leaves the guest stopped here. */
const IN_DOUBT =
  'the whole stream had been sent, so the destination may be running the guest: it stays stopped here; cont it only once the destination is known not to run it';
/**
 * How long a cancel that came after the whole stream was sent waits for the
 * destination's word: its SHUT (it loaded the guest and runs it) makes the
 * migration complete after all; silence or a failure lets the cancel go on.
 */
const LATE_CANCEL_MS = 3_000;
/** How long a recovery waits for each answer of the destination's (a received bitmap, RESUME_ACK). */
const RECOVERY_REPLY_MS = 30_000;
/** The longest the iteration loop runs without letting other events in. */
const EVENT_LOOP_TURN_MS = 20;
/** Pages per multifd batch handed to a channel: 4 MiB, one full packet. */
const MULTIFD_BATCH_PAGES = MAX_DATA_PAGES;

export class SourceMigration {
  readonly stats = new RamStats();
  readonly startTime = Date.now();
  setupTime: number | undefined;
  endTime: number | undefined;
  downtime: number | undefined;
  expectedDowntime = 0;
  stopToRun: number | undefined;
  releasedBytes = 0;

  /** Aborts every wait of the current connection (a new one for each recovery): a cancel, or a failure seen elsewhere. */
  private abort = new AbortController();
  private channel: OutgoingChannel | undefined;
  /** TLS settings of the current connection's channels (tls-creds set), else undefined. */
  private tls: TlsClient | undefined;
  private main!: MainChannel;
  private returnPath: SourceReturnPath | undefined;
  /** Measures how long the stream takes to drain (needs the return path's PONGs). */
  private drain: PipelineDrain | undefined;
  /** How much of its time the migration thread waits for a CPU. */
  private readonly cpuWait = new CpuWait();
  /** The share of its time the migration thread did not wait for a CPU, as expected-downtime last counted it. */
  private shareNotWaiting = 1;
  /** What the last dirty sync took, ms: the switchover does one more. */
  private syncMs = 0;
  /** What the last pass's dirty sync left to send that carries data (RamSaver.pendingDataPages), bytes. */
  private pendingBytes = 0;
  /** postcopy-preempt: the thread that owns the connection requested pages take, so they never queue behind bulk pages. */
  private preempt: PreemptSender | undefined;
  /** Asked for by migrate-start-postcopy; the switch waits for the first pass. */
  private postcopyRequested = false;
  private postcopy: PostcopySender | undefined;
  /** background-snapshot: the snapshot under way. */
  private snapshot: BackgroundSnapshot | undefined;
  /** x-colo: the checkpoint loop, once the first stream is through. */
  private coloPrimary: ColoPrimary | undefined;
  /** auto-converge, when the capability is on: throttles the vCPUs of a guest that dirties faster than pages go. */
  private autoConverge: AutoConverge | undefined;
  /** dirty-limit, when the capability is on: caps the vCPUs' dirty rates once the same trigger fires. */
  private dirtyLimit: DirtyLimitThrottle | undefined;
  /** When the guest stopped for the switch to postcopy (stop-to-run counts from it). */
  private postcopyStoppedAt = 0;
  /** The destination confirmed the postcopy package: failures pause from here on. */
  private pastPointOfNoReturn = false;
  /** Paused after the point of no return, waiting for `migrate resume=true`; `resuming` once it came. */
  private paused = false;
  private resuming = false;

  get resumeConnecting(): boolean {
    return this.resuming && this.paused;
  }
  private wakeIteration: (() => void) | undefined;
  private continueSwitchover: (() => void) | undefined;
  /** Waits for the statechart's answer to a switchover.request. */
  private switchoverAnswer: ((allowed: boolean) => void) | undefined;
  private cancelled = false;
  /** The whole stream is in the kernel's hands: from here the destination may hold the whole guest. */
  private streamSent = false;
  /** A cancel that came after the EOF, waiting for the destination's word (LATE_CANCEL_MS). */
  private lateCancel: NodeJS.Timeout | undefined;
  private runStateBefore: RunState | undefined;
  private readonly meter: TransferMeter;
  private saver!: RamSaver;
  /** xbzrle: re-sent pages as deltas against the page cache. */
  private xbzrleSaver: XbzrleSaver | undefined;
  private multifd: MultifdSender | undefined;
  /** The dirty-sync round pages now being sent belong to (multifd SYNC packets end it). */
  private round = 0;

  constructor(
    private readonly env: SourceEnvironment,
    private readonly input: MigrationActorInput,
    private readonly report: (event: MigrationActorReport) => void,
  ) {
    this.meter = new TransferMeter(this.stats, () => this.rateLimit());
  }

  command(cmd: MigrationActorMessage): void {
    if (cmd.type === 'switchover.answer') this.switchoverAnswer?.(cmd.allowed);
    else if (cmd.type === 'migrate_cancel') this.cancel();
    else if (cmd.type === 'migrate-continue') this.continueSwitchover?.();
    else if (cmd.type === 'migrate-start-postcopy' && this.input.capabilities['postcopy-ram']) {
      this.postcopyRequested = true;
      this.wakeIteration?.();
    } else if (cmd.type === 'migrate-pause') {
      // In postcopy-active, or in a recovery that hangs: break the connections off. Past the package the
      // migration pauses (settle); in the instant before it, it fails and the guest runs on here.
      if (!this.paused || this.resuming) this.fail(new Error('Postcopy migration is paused by the user'));
    } else if (cmd.type === 'migrate' && cmd.resume) {
      void this.resume(cmd.uri);
    } else if (cmd.type === 'x-colo-lost-heartbeat') {
      this.coloPrimary?.failover();
    } else if (cmd.type === 'colo-checkpoint') {
      this.coloPrimary?.requestCheckpoint('request');
    }
  }

  /** max-bandwidth in precopy, none during the switchover's downtime, max-postcopy-bandwidth (0: none) after it. */
  private rateLimit(): number {
    if (this.stats.inDowntime) return Infinity;
    if (this.stats.inPostcopy) return Number(this.env.options.params['max-postcopy-bandwidth']) || Infinity;
    return this.env.options.maxBandwidth();
  }

  /** The rate limit in force, for the log (JSON has no Infinity). */
  private rateLimitText(): number | 'none' {
    const limit = this.rateLimit();
    return Number.isFinite(limit) ? limit : 'none';
  }

  /** migrate_fd_cancel: tear the channel down; the thread then restores the guest and reports. */
  cancel(): void {
    if (this.cancelled) return;
    this.cancelled = true;
    if (this.streamSent) {
      // Tearing the channel down now could restart the guest here while the destination, which may
      // already hold all of it, runs it too: let its SHUT (or its silence) decide.
      this.env.log('migrate_cancel after the whole stream was sent: waiting for the destination to confirm or fail', { waitMs: LATE_CANCEL_MS });
      this.lateCancel = setTimeout(() => this.fail(new CancelledError()), LATE_CANCEL_MS);
      return;
    }
    this.fail(new CancelledError());
  }

  /**
   * query-migrationthreads: QEMU's migration thread is here the main
   * thread (the process's own id), and each multifd channel's worker.
   */
  threads(): { name: string; tid: number }[] {
    return [{ name: 'live_migration', tid: process.pid }, ...(this.multifd?.threads() ?? [])];
  }

  /** yank: every channel shut down at once; the migration fails, or past the package pauses (nothing is open while paused). */
  yank(): void {
    this.fail(new Error(YANKED));
  }

  /** Fault injection: ends the thread of multifd channel `channel`; false without multifd channels. @throws RangeError for no such channel */
  killMultifdThread(channel: number): boolean {
    this.multifd?.killThread(channel);
    return this.multifd !== undefined;
  }

  /** The current connection's channels went because of yank: that, not what they saw after, is why it failed. */
  private get yanked(): boolean {
    const reason: unknown = this.abort.signal.reason;
    return reason instanceof Error && reason.message === YANKED;
  }

  /** Ends the migration with `err` from outside the thread's own awaits. */
  private fail(err: Error): void {
    if (this.abort.signal.aborted) return;
    this.abort.abort(err);
    this.abortChannels();
  }

  /** Tears the migration's connections down at once (the multifd channels go with their pool). */
  private abortChannels(): void {
    this.channel?.abort();
    this.preempt?.close();
  }

  get xbzrle(): XbzrleCounters | undefined {
    return this.xbzrleSaver?.counters;
  }

  get cpuThrottlePercentage(): number {
    return this.autoConverge?.percentage ?? 0;
  }

  /** The actor is stopped (machine left the running states): nothing may outlive it. */
  dispose(): void {
    clearTimeout(this.lateCancel);
    this.autoConverge?.stop();
    this.dirtyLimit?.stop();
    this.snapshot?.stop();
    this.coloPrimary?.stop();
    if (!this.abort.signal.aborted) this.abort.abort(new CancelledError());
    this.abortChannels();
    void this.multifd?.abort();
    this.returnPath?.close();
  }

  async run(): Promise<void> {
    try {
      await this.setup();
      if (this.input.capabilities['background-snapshot']) {
        await this.backgroundSnapshot();
      } else {
        this.report({ type: 'setup.done' });
        const switchover = await this.iterate();
        if (switchover === 'postcopy') await this.postcopyComplete();
        else await this.complete();
        // QEMU lifts the throttle once the migration is over, however it ended; a COLO primary runs on unthrottled.
        this.autoConverge?.stop();
        this.dirtyLimit?.stop();
        if (this.input.capabilities['x-colo']) return await this.colo();
      }
      this.endTime = Date.now();
      this.report({ type: this.cancelled ? 'cancel.too-late' : 'completed' });
    } catch (err) {
      await this.settle(err);
    }
  }

  /**
   * How a migration that threw ends. Past the point of no return a broken
   * connection (or a bad return path, or migrate-pause) pauses it; only a
   * failure that is not I/O (a defect here) still fails it, as in QEMU.
   */
  private async settle(err: unknown): Promise<void> {
    // A snapshot's guest must not wait on its protected pages while the failure is looked into.
    this.snapshot?.stop();
    this.autoConverge?.stop();
    this.dirtyLimit?.stop();
    clearTimeout(this.lateCancel);
    if (this.pastPointOfNoReturn && !this.cancelled && !(err instanceof CancelledError) && !isDefect(err)) return this.pause(err);
    this.endTime = Date.now();
    // A destination that refused the stream says why on the return path;
    // that beats whichever channel noticed first.
    // Nor can a return path we shut down ourselves (cancel, yank) say why.
    const reason = this.cancelled || this.yanked ? undefined : await this.returnPath?.failureWithin(SHUT_GRACE_MS);
    // The whole stream went out and the destination never said how it ended: it may run the guest now.
    const inDoubt = this.streamSent && !this.cancelled && this.returnPath !== undefined && !this.returnPath.sawFailure;
    await this.cleanupAfterError(inDoubt);
    if (this.cancelled) {
      this.env.log('migration cancelled');
      this.report({ type: 'cancel.done' });
    } else {
      const cause = errorText(this.yanked ? YANKED : (reason ?? err));
      const error = inDoubt ? `${cause}; ${IN_DOUBT}` : cause;
      this.env.log('migration failed', { error });
      this.report({ type: 'failed', error });
    }
  }

  /**
   * `migrate URI resume=true` in postcopy-paused (QEMU's postcopy_do_resume):
   * a new main connection (and preempt channel), the destination's received
   * bitmap of every block, from which every page it lacks is to send again,
   * then POSTCOPY_RESUME; its RESUME_ACK brings postcopy back, and the
   * migration goes on to completion. Any failure on the way pauses again.
   */
  private async resume(uriText: string): Promise<void> {
    if (!this.paused || this.resuming) return;
    this.resuming = true;
    this.abort = new AbortController();
    try {
      const uri = parseMigrationUri(uriText, { direction: 'outgoing' });
      await this.connect(uri);
      if (!this.returnPath) throw new Error(`Postcopy recovery needs a return path, which '${uri.scheme}:' cannot carry`);
      this.paused = false;
      this.env.log('postcopy recovery: connected', { uri: uriText });
      this.report({ type: 'postcopy.recover' });
      await this.openMainChannel();
      if (this.input.capabilities['postcopy-preempt']) this.preempt = await this.openPreempt(uri);
      const blocks = this.env.guest.blocks;
      for (let i = 0; i < blocks.length; i++) {
        const block = blocks[i]!;
        await this.main.sendMessage({ type: 'recv-bitmap', block: block.name });
        const received = await abortable(this.abort.signal, this.returnPath.receivedBitmap(block.name, RECOVERY_REPLY_MS));
        this.saver.bitmap.resendUnreceived(i, received, block.pageCount);
      }
      this.saver.bitmap.recount();
      this.stats.remainingPages = this.saver.remaining;
      // Requests may follow RESUME_ACK at once: they are served from here on.
      this.servePageRequests();
      await this.main.sendMessage({ type: 'postcopy-resume' });
      await abortable(this.abort.signal, this.returnPath.resumeAck(RECOVERY_REPLY_MS));
      this.env.log('postcopy recovery: resumed', { remainingPages: this.saver.remaining, rateLimit: this.rateLimitText() });
      this.report({ type: 'postcopy.resumed' });
      // POSTCOPY_RUN may have been lost with the link (its PING was never answered); a destination that ran already ignores it.
      if (this.stopToRun === undefined) await this.sendRun();
      await this.finishPostcopy();
      this.endTime = Date.now();
      this.report({ type: 'completed' });
    } catch (err) {
      await this.settle(err);
    } finally {
      this.resuming = false;
    }
  }

  private async setup(): Promise<void> {
    const uri = parseMigrationUri(this.input.uri, { direction: 'outgoing' });
    const guest = this.env.guest;
    this.stats.totalBytes = guest.blocks.reduce((n, b) => n + b.size, 0);
    await this.connect(uri);
    // The return path is the reverse direction of a socket, always used where
    // it exists; return-path and postcopy make it required (QEMU's error).
    const caps = this.input.capabilities;
    if ((caps['return-path'] || caps['postcopy-ram']) && !this.channel!.reverse) {
      throw new Error('Unable to open return-path for postcopy');
    }
    if (caps['x-colo'] && !this.channel!.reverse) throw new Error(`COLO needs a return path, which '${uri.scheme}:' cannot carry: use tcp: or unix:`);
    const capabilities = Object.entries(this.input.capabilities).filter(([, on]) => on).map(([name]) => name);
    // The return path opens first, so a destination that refuses the header can say why.
    await this.openMainChannel();
    if (this.returnPath) await this.main.sendMessage({ type: 'ping', value: 1 });
    await this.main.sendMessage(describeGuest(guest, {
      uuid: this.input.capabilities['validate-uuid'] ? this.env.uuid : undefined,
      capabilities,
    }));
    if (caps['postcopy-ram']) await this.main.sendMessage({ type: 'postcopy-advise', hostPageSize: TARGET_PAGE_SIZE, targetPageSize: TARGET_PAGE_SIZE });
    if (caps['x-colo']) await this.main.sendMessage({ type: 'enable-colo' });
    this.saver = new RamSaver(guest.blocks);
    if (caps.xbzrle) this.xbzrleSaver = new XbzrleSaver(guest.blocks, () => this.env.options.params['xbzrle-cache-size'], Date.now());
    if (caps['postcopy-preempt']) this.preempt = await this.openPreempt(uri);
    if (this.input.capabilities.multifd) this.multifd = await this.startMultifd(uri);
    this.saver.startDirtyLogging();
    if (caps['auto-converge']) this.autoConverge = new AutoConverge(guest, () => this.env.options.params, Date.now(), this.stats.transferred);
    if (caps['dirty-limit']) this.dirtyLimit = new DirtyLimitThrottle(this.env.dirtyLimits, () => this.env.options.params, Date.now(), this.stats.transferred);
    // The first sync (QEMU syncs while setting up the bitmaps): pass 1.
    this.countSync(0);
    await this.waitUnplug();
    this.setupTime = Date.now() - this.startTime;
  }

  /**
   * QEMU's qemu_savevm_wait_unplug: failover primaries still plugged into
   * the guest cannot be migrated, so the guest is asked to unplug them and
   * setup ends only once it has (a cancel ends the wait; cleanup plugs them back).
   */
  private async waitUnplug(): Promise<void> {
    const primaries = this.env.failoverPrimaries;
    if (!primaries.unplugPending) return;
    this.report({ type: 'unplug.wait' });
    await abortable(this.abort.signal, primaries.unplugAll());
  }

  /** Opens the main connection (at setup, and at each recovery), with the return path on its way back. */
  private async connect(uri: MigrationUri): Promise<void> {
    // Every channel of this connection's migration uses the same TLS settings (the host name is the URI's).
    this.tls = this.env.tlsClient(uri);
    const opening = openOutgoing(uri, { tls: this.tls, descriptorPaths: this.env.descriptorPaths });
    try {
      this.channel = await abortable(this.abort.signal, opening);
    } catch (err) {
      // Given up on (a cancel, migrate-pause): a connection that comes up later must not reach the destination as this one.
      void opening.then((channel) => channel.abort(), () => {});
      throw err;
    }
    // After the switch a write that never drains means a stalled link: postcopy pauses on it (postcopy-liveness.ts).
    this.main = new MainChannel(this.channel.sink, this.meter, this.abort.signal, async () => this.returnPath?.failureWithin(SHUT_GRACE_MS),
      () => (this.stats.inPostcopy ? POSTCOPY_STALL_MS : undefined));
    this.returnPath = undefined;
    this.drain = undefined;
    if (!this.channel.reverse) return;
    const returnPath = new SourceReturnPath(this.channel.reverse, this.env.guest.blocks, TARGET_PAGE_SIZE);
    this.returnPath = returnPath;
    this.drain = new PipelineDrain(returnPath);
    // A bad return path fails a precopy migration at once, and pauses a postcopy one (settle).
    returnPath.on('bad', (err) => {
      if (returnPath === this.returnPath) this.fail(err);
    });
    returnPath.on('message', (m) => {
      const label = traceLabel(m);
      if (label) this.env.trace('return-path', 'migration', label);
    });
    returnPath.on('page-request', (request) => this.postcopy!.request(request));
    returnPath.on('switchover-ack', () => {
      this.report({ type: 'switchover.acked' });
      // A migration held at the gate switches over at once.
      this.wakeIteration?.();
    });
  }

  /** The channel hello, then OPEN_RETURN_PATH where there is one. */
  private async openMainChannel(): Promise<void> {
    await this.main.write(encodeHello({ kind: ChannelKind.MAIN, channelId: 0, channelCount: 1, ...(this.env.uuid ? { uuid: this.env.uuid } : {}) }));
    if (!this.returnPath) return;
    await this.main.sendMessage({ type: 'open-return-path' });
    this.returnPath.open();
  }

  /**
   * The postcopy-preempt thread, connected where the destination's return
   * path says its preempt thread listens, from setup on so the switch does
   * not wait for it.
   */
  private async openPreempt(uri: MigrationUri): Promise<PreemptSender> {
    if (!this.returnPath || (uri.scheme !== 'tcp' && uri.scheme !== 'unix')) throw new Error(MULTI_CHANNEL_REQUIRED);
    const port = await abortable(this.abort.signal, this.returnPath.preemptPort(MULTIFD_CONNECT_TIMEOUT_MS));
    const caps = this.input.capabilities;
    const starting = PreemptSender.start({
      address: uri.scheme === 'tcp' ? { host: uri.host, port } : { path: preemptPath(uri.path) },
      tls: this.tls,
      uuid: this.env.uuid,
      blocks: this.env.guest.blocks,
      bitmap: this.saver.bitmap,
      resendSentPages: caps['release-ram'] !== true,
      releaseRam: caps['release-ram'] === true,
      onError: (err) => this.fail(err),
      trace: (from, to, event) => this.env.trace(from, to, event),
    });
    try {
      return await abortable(this.abort.signal, starting);
    } catch (err) {
      // Cancelled while the thread connected: it is closed once it has.
      void starting.then((sender) => sender.close(), () => {});
      throw err;
    }
  }

  /**
   * Connects the multifd channels where the destination's return path says
   * they listen, one worker each.
   */
  private async startMultifd(uri: MigrationUri): Promise<MultifdSender> {
    const params = this.env.options.params;
    const channels = params['multifd-channels'];
    if (!this.returnPath || (uri.scheme !== 'tcp' && uri.scheme !== 'unix')) {
      throw new Error(MULTI_CHANNEL_REQUIRED);
    }
    const ports = await abortable(this.abort.signal, this.returnPath.multifdPorts(channels, MULTIFD_CONNECT_TIMEOUT_MS));
    this.env.trace('return-path', 'migration', `multifd-channels ×${channels}`);
    const addresses: ChannelAddress[] = ports.map((port, i) =>
      uri.scheme === 'tcp' ? { host: uri.host, port } : { path: channelPath(uri.path, i) },
    );
    const compression = params['multifd-compression'];
    const sender = MultifdSender.start({
      pool: this.env.multifdPool(channels),
      addresses,
      tls: this.tls,
      uuid: this.env.uuid,
      blocks: this.env.guest.blocks,
      compression,
      level: compression === 'zstd' ? params['multifd-zstd-level'] : params['multifd-zlib-level'],
    });
    const started = await abortable(this.abort.signal, sender);
    this.env.trace('migration', 'multifd', `${channels} channels connected`);
    logThreadRoles((m, f) => this.env.log(m, f), 'channel', started.channelThreads());
    return started;
  }

  /** Ends the current round on every multifd channel, then tells the main stream (QEMU's MULTIFD_FLUSH). */
  private async endRound(): Promise<void> {
    if (!this.multifd) return;
    this.env.trace('migration', 'multifd', `sync round ${this.round}`);
    await abortable(this.abort.signal, this.multifd.sync(this.round));
    this.env.trace('multifd', 'migration', `round ${this.round} synced`);
    this.accountMultifd();
    await this.main.sendMessage({ type: 'round-end', round: this.round });
    this.round++;
  }

  /** Multifd bytes are counted by the channel workers as they write them; the sender says what is new. */
  private accountMultifd(): void {
    const m = this.multifd!;
    const { wireBytes, clearedBytes, charge } = m.progress();
    this.stats.multifdBytes = m.bytes;
    this.stats.multifdCompression = m.compression;
    this.stats.normal = m.normalPages;
    this.stats.duplicate = m.zeroPages;
    this.stats.remainingPages = this.saver.remaining;
    this.meter.account(wireBytes, clearedBytes, charge);
  }

  /** Sends the next batch, on the main channel or a multifd channel; false when nothing is left. */
  private async sendNext(): Promise<boolean> {
    const limiter = this.meter.limiter;
    if (!this.multifd) {
      const batch = this.saver.nextBatch(limiter.windowPages(MAX_DATA_PAGES, TARGET_PAGE_SIZE));
      // XBZRLE from the second pass on (QEMU's xbzrle_started), not in COLO checkpoints (the secondary stages their pages aside).
      if (batch && this.xbzrleSaver && this.saver.completeRound && !this.coloPrimary) await this.sendEncoded(batch);
      else if (batch) await this.sendBatch(batch);
      return batch !== null;
    }
    const next = this.saver.nextRanges(MULTIFD_BATCH_PAGES, limiter.windowPages(MULTIFD_BATCH_PAGES, TARGET_PAGE_SIZE));
    if (next) await abortable(this.abort.signal, this.multifd.sendPages(next.block, this.round, next.ranges, next.dataPages * TARGET_PAGE_SIZE));
    this.accountMultifd();
    return next !== null;
  }

  /**
   * Counts a batch's pages and sends it, on the main channel unless told
   * otherwise. With release-ram, a batch sent in postcopy gives its pages'
   * memory back once the kernel has them: nothing here needs them again.
   */
  private async sendBatch(batch: PageBatch, channel = this.main): Promise<void> {
    this.stats.normal += batch.normalPages;
    this.stats.duplicate += batch.zeroPages;
    this.stats.remainingPages = this.saver.remaining;
    const release = this.stats.inPostcopy && this.input.capabilities['release-ram'] === true;
    await channel.sendPages(batch, release ? () => this.release(batch) : undefined);
  }

  /** A batch through the page cache: hits go as deltas in an XBZRLE frame, the rest as PAGES frames. */
  private async sendEncoded(batch: PageBatch): Promise<void> {
    for (const frame of this.xbzrleSaver!.save(batch, this.stats.dirtySyncCount)) {
      if (frame instanceof Uint8Array) await this.main.write(frame);
      else await this.sendBatch(frame);
    }
    this.stats.remainingPages = this.saver.remaining;
  }

  /** What the preempt thread sent since the last look, counted as if sent here (and charged to the rate limit). */
  private countPreempt(): void {
    if (!this.preempt) return;
    const sent = this.preempt.progress();
    this.stats.normal += sent.normalPages;
    this.stats.duplicate += sent.zeroPages;
    this.stats.postcopyRequests += sent.requests;
    this.releasedBytes += sent.releasedBytes;
    this.meter.account(sent.bytes);
  }

  private release(batch: PageBatch): void {
    for (const view of batch.data) this.releasedBytes += releasePages(view);
  }

  /**
   * migration_iteration_run, repeated: send pages while the estimate of what
   * is pending exceeds the threshold; below it, sync for the exact figure and
   * switch over once it fits in the downtime limit, but not before the
   * first pass of dirty pages is through. Asked for postcopy, it switches
   * to postcopy instead once the first pass is through.
   */
  private async iterate(): Promise<'precopy' | 'postcopy'> {
    let turnAt = performance.now();
    for (;;) {
      // The stop-and-copy sends scattered dirty pages, slow until that code has run hot (README, downtime sweep):
      // the first pass of dirty pages goes out whole before a sync may decide. It costs at most a threshold's worth.
      const firstDirtyPass = this.stats.dirtySyncCount === FIRST_PASS_END_SYNC && this.saver.remaining > 0;
      const due = !firstDirtyPass && this.saver.remaining * TARGET_PAGE_SIZE <= this.thresholdBytes();
      if (due && this.drain?.firstPending) {
        // The first drain probe is out: decide once its answer says how long the stream drains. Until then pages go on
        // (no bubble in the stream); with none left, wait for it.
        if (this.saver.remaining === 0) await this.drain.firstAnswer(this.abort.signal);
      } else if (due) {
        const roundEnd = performance.now();
        await this.endRound();
        await this.drain?.probe(roundEnd, (value) => this.main.sendMessage({ type: 'ping', value }));
        if (this.drain?.firstPending) continue;
        const sync = this.syncDirty();
        this.countSync(sync.rate);
        this.estimateDowntime();
        this.autoConverge?.onSync(Date.now(), sync.dirtied, this.stats.transferred);
        this.dirtyLimit?.onSync(Date.now(), sync.dirtied, this.stats.transferred);
        const pending = this.pendingBytes;
        // Asked for postcopy, a sync that finds little pending completes in precopy, as QEMU's does.
        const decides = this.stats.dirtySyncCount > FIRST_PASS_END_SYNC || this.postcopyRequested;
        if (pending === 0 || (decides && pending < this.thresholdBytes())) {
          if (await this.maySwitchOver()) return 'precopy';
          // Held at the switchover-ack gate: go on sending what the guest dirties, and ask again.
          await this.nap(RATE_WINDOW_MS);
        }
      }
      if (this.postcopyRequested && this.stats.dirtySyncCount >= FIRST_PASS_END_SYNC) return 'postcopy';
      // Re-check at least every window, so a raised max-bandwidth or a postcopy request applies at once.
      for (let wait = this.meter.limiter.delay(); wait > 0 && !this.postcopyRequested; wait = this.meter.limiter.delay()) {
        await this.nap(Math.min(wait, RATE_WINDOW_MS));
      }
      await this.sendNext();
      // Small frames (XBZRLE deltas, zero runs) may never make the socket push back, and the rate limit may
      // never nap: give the monitor and the return path a turn now and then.
      if (performance.now() - turnAt > EVENT_LOOP_TURN_MS) {
        await new Promise(setImmediate);
        turnAt = performance.now();
      }
    }
  }

  /** Asks the statechart whether the converged migration may switch over (the switchover-ack gate). */
  private async maySwitchOver(): Promise<boolean> {
    const answer = new Promise<boolean>((resolve) => (this.switchoverAnswer = resolve));
    this.report({ type: 'switchover.request', guestRunning: this.env.guest.runState === 'running' });
    try {
      return await abortable(this.abort.signal, answer);
    } finally {
      this.switchoverAnswer = undefined;
    }
  }

  /** Sleeps `ms`, cut short by migrate-start-postcopy or SWITCHOVER_ACK (or ended by an abort). */
  private async nap(ms: number): Promise<void> {
    const woken = new Promise<void>((resolve) => (this.wakeIteration = resolve));
    try {
      await Promise.race([sleep(this.abort.signal, ms), woken]);
    } finally {
      this.wakeIteration = undefined;
    }
  }

  /** migration_completion: stop-and-copy, with no rate limit. */
  private async complete(): Promise<void> {
    const guest = this.env.guest;
    const stoppedAt = await this.stopForSwitchover(false);
    // Where the downtime goes, beside what it was expected to be (the log's 'switchover' line).
    const phases = { stop: Date.now() - stoppedAt, sync: 0, send: 0, drain: 0 };
    let mark = performance.now();
    const phase = (name: 'sync' | 'send' | 'drain') => {
      const now = performance.now();
      phases[name] = Math.round(now - mark);
      mark = now;
    };
    if (this.xbzrleSaver) this.xbzrleSaver.lastStage = true;
    await this.endRound();
    this.countSync(this.saver.sync().rate);
    const pendingBytes = this.saver.pendingDataPages() * TARGET_PAGE_SIZE;
    phase('sync');
    while (await this.sendNext());
    phase('send');
    // Every channel synced and the destination told, before any device state (DESIGN rule 4).
    await this.endRound();
    await this.multifd?.finish();
    await this.main.sendMessage({ type: 'ram-complete' });
    for (const saved of guest.devices.saveAll()) await this.main.sendMessage({ type: 'device', ...saved });
    // With x-colo the connection stays: the checkpoints follow on it (colo()).
    const colo = this.input.capabilities['x-colo'] === true;
    await this.main.sendMessage({ type: 'eof' });
    if (!colo) {
      await abortable(this.abort.signal, this.channel!.finish());
      // The kernel has the whole stream: from here the destination may hold all of it. (Before, some of it
      // still waited here, so the destination cannot have completed.)
      this.streamSent = true;
      // With a return path, completed means the destination loaded everything.
      if (this.returnPath) await abortable(this.abort.signal, this.returnPath.shut());
      if (this.lateCancel) {
        clearTimeout(this.lateCancel);
        this.env.log('migrate_cancel came too late: the destination confirmed it has the whole guest, so the migration completed');
      }
    }
    phase('drain');
    this.downtime = Date.now() - stoppedAt;
    this.env.log('switchover', {
      downtimeMs: this.downtime, expectedDowntimeMs: this.expectedDowntime, pendingBytes, phasesMs: phases,
      switchoverBytesPerMs: Math.round(this.switchoverBytesPerMs()), drainMs: this.drain?.ms && Math.round(this.drain.ms), dirtySyncMs: Math.round(this.syncMs),
      dirtySyncCount: this.stats.dirtySyncCount, shareNotWaiting: Math.round(this.shareNotWaiting * 100) / 100,
    });
    this.finishFigures(!colo);
  }

  /**
   * x-colo: the destination has the guest and becomes the secondary; this
   * thread runs the checkpoints (colo-primary.ts) until a failover, after
   * which the guest runs on here alone and the migration is completed.
   */
  private async colo(): Promise<void> {
    const env = this.env;
    this.report({ type: 'colo.start' });
    this.coloPrimary = new ColoPrimary({
      guest: env.guest,
      main: this.main,
      returnPath: this.returnPath!,
      network: env.network,
      status: env.colo,
      delayMs: () => env.options.params['x-checkpoint-delay'],
      dropSecondary: () => this.abortChannels(),
      sendDirtyPages: () => this.sendCheckpointRam(),
      digests: env.coloDigests,
      announceCheckpoint: (data) => env.announceColoCheckpoint(data),
      log: (message, fields) => env.log(message, fields),
      trace: (from, to, type) => env.trace(from, to, type),
    });
    if (!(await this.coloPrimary.run())) return;
    this.abortChannels();
    this.returnPath?.close();
    this.endTime = Date.now();
    this.report({ type: 'colo.failover' });
    env.colo.failedOver();
  }

  /** A COLO checkpoint's RAM: a dirty sync, then every dirty page, with no rate limit (the guest is stopped). */
  private async sendCheckpointRam(): Promise<{ pages: number; bytes: number }> {
    const pages = this.stats.normal + this.stats.duplicate;
    const bytes = this.stats.transferred;
    this.stats.inDowntime = true;
    try {
      this.countSync(this.saver.sync().rate);
      while (await this.sendNext());
    } finally {
      this.stats.inDowntime = false;
    }
    return { pages: this.stats.normal + this.stats.duplicate - pages, bytes: this.stats.transferred - bytes };
  }

  /**
   * postcopy_start, then the postcopy phase: stop the guest, drain multifd,
   * send the discard list and the package (the point of no return), then
   * every page still here, requested ones first, while the destination runs
   * the guest. `downtime` is QEMU's: from the stop until the package is sent.
   */
  private async postcopyComplete(): Promise<void> {
    const guest = this.env.guest;
    const stoppedAt = await this.stopForSwitchover(true);
    this.report({ type: 'postcopy.start' });
    // Multifd carries precopy pages only: every channel synced and drained before the discard list (DESIGN §10).
    await this.endRound();
    await this.multifd?.finish();
    this.countSync(this.saver.sync().rate);
    const postcopy = this.servePageRequests();
    await postcopy.sendDiscard();
    await this.main.sendMessage({ type: 'ping', value: 2 });
    // The point of no return comes only once the destination says it loaded the package: a package
    // lost on a broken link then fails the migration here, with the guest still ours to run.
    const loaded = this.returnPath!.pongOf(PACKAGE_LOADED_PING, POSTCOPY_STALL_MS,
      `the destination did not confirm the postcopy package within ${POSTCOPY_STALL_MS / 1000} s`);
    loaded.catch(() => {});
    await postcopy.sendPackage(guest.devices.saveAll().map((saved) => ({ type: 'device', ...saved })));
    await abortable(this.abort.signal, loaded);
    this.pastPointOfNoReturn = true;
    this.downtime = Date.now() - stoppedAt;
    this.stats.inDowntime = false;
    this.stats.inPostcopy = true;
    this.postcopyStoppedAt = stoppedAt;
    await this.sendRun();
    await this.finishPostcopy();
  }

  /** POSTCOPY_RUN, and a PING whose answer says the guest runs there (stop-to-run). */
  private async sendRun(): Promise<void> {
    const ran = (value: number) => {
      if (value !== 4) return;
      this.stopToRun = Date.now() - this.postcopyStoppedAt;
      this.returnPath?.off('pong', ran);
    };
    this.returnPath!.on('pong', ran);
    await this.main.sendMessage({ type: 'postcopy-run' });
    await this.main.sendMessage({ type: 'ping', value: 4 });
  }

  /**
   * From the switch (or a resume) on, page requests are served, on the
   * return path and on the preempt channel; the sender of the connection
   * now up takes them.
   */
  private servePageRequests(): PostcopySender {
    this.postcopy = new PostcopySender({
      saver: this.saver,
      main: this.main,
      meter: this.meter,
      stats: this.stats,
      signal: this.abort.signal,
      sendBatch: (batch) => this.sendBatch(batch),
      progress: () => this.countPreempt(),
      resendSentPages: this.input.capabilities['release-ram'] !== true,
    });
    this.returnPath!.acceptPageRequests = true;
    this.preempt?.openRequests();
    return this.postcopy;
  }

  /** Every page still here, requested ones first, then the end of the stream once the destination has them all. */
  private async finishPostcopy(): Promise<void> {
    await this.postcopy!.run();
    // Requested pages may be on the preempt channel only: it ends first, and the destination reads it to its end before EOF counts.
    if (this.preempt) await abortable(this.abort.signal, this.preempt.finish());
    await this.main.sendMessage({ type: 'ram-complete' });
    await this.main.sendMessage({ type: 'eof' });
    await abortable(this.abort.signal, this.channel!.finish());
    await abortable(this.abort.signal, this.returnPath!.shut());
    if (this.preempt) await abortable(this.abort.signal, this.preempt.drained());
    this.countPreempt();
    // What went how: a postcopy that ends sooner than its rate limit allows shows here whether requests pulled its pages.
    const { normal, duplicate, postcopyRequests, postcopyBytes } = this.stats;
    this.env.log('postcopy sent its last page', { normal, duplicate, postcopyRequests, postcopyBytes, rateLimit: this.rateLimitText() });
    this.finishFigures();
  }

  /**
   * background-snapshot: the guest's state as of now, written while it runs
   * on (background-snapshot.ts). `active` means the instant is taken: the
   * devices are saved aside and every page is write-protected (QEMU goes
   * active just before that). One pass, unlimited by max-bandwidth as in
   * QEMU, then the device state; `downtime` is the moment the guest stopped.
   */
  private async backgroundSnapshot(): Promise<void> {
    const snapshot = new BackgroundSnapshot({
      guest: this.env.guest,
      saver: this.saver,
      sendBatch: (batch) => this.sendBatch(batch),
      signal: this.abort.signal,
      traceFault: (page) => this.env.trace('guest', 'migration', `write-protect fault, page ${page}`),
    });
    this.snapshot = snapshot;
    await snapshot.start();
    this.downtime = snapshot.downtime;
    this.report({ type: 'setup.done' });
    await snapshot.run();
    await this.main.sendMessage({ type: 'ram-complete' });
    for (const device of snapshot.devices) await this.main.sendMessage(device);
    await this.main.sendMessage({ type: 'eof' });
    await abortable(this.abort.signal, this.channel!.finish());
    if (this.returnPath) await abortable(this.abort.signal, this.returnPath.shut());
    snapshot.stop();
    this.env.log('background snapshot written', { faultedPages: snapshot.faultedPages, downtime: snapshot.downtime });
    // The guest ran on: unlike a migration, a snapshot leaves it as it is.
    this.finishFigures(false);
  }

  /**
   * Stops the guest for the switchover, and with pause-before-switchover
   * waits for migrate-continue (told whether the pause is for postcopy).
   * Returns when the guest stopped.
   */
  private async stopForSwitchover(postcopy: boolean): Promise<number> {
    const guest = this.env.guest;
    this.runStateBefore = guest.runState;
    const stoppedAt = Date.now();
    await guest.stop('finish-migrate');
    this.stats.inDowntime = true;
    if (this.input.capabilities['pause-before-switchover']) {
      const released = new Promise<void>((resolve) => (this.continueSwitchover = resolve));
      this.report({ type: 'switchover.pause', ...(postcopy ? { postcopy } : {}) });
      await abortable(this.abort.signal, released);
    }
    return stoppedAt;
  }

  /** The last figures of a completed migration, and (unless a snapshot left the guest running) the guest's postmigrate. */
  private finishFigures(postmigrate = true): void {
    this.stats.remainingPages = 0;
    const elapsed = Date.now() - this.startTime - (this.setupTime ?? 0);
    this.stats.mbps = elapsed > 0 ? (this.stats.transferred * 8) / elapsed / 1000 : 0;
    if (postmigrate) this.env.guest.setRunState('postmigrate');
  }

  /**
   * A failure after the point of no return pauses the migration (QEMU's
   * postcopy_pause): the channels go, the guest stays stopped here with
   * every page it had, and the migration waits for recovery.
   */
  private pause(err: unknown): void {
    const error = errorText(err);
    this.abortChannels();
    this.preempt = undefined;
    this.returnPath?.pause(error);
    this.paused = true;
    this.env.log('Detected IO failure for postcopy. Migration paused.', { error });
    this.report({ type: 'postcopy.paused', error });
  }

  /**
   * After a failure or cancel the source guest runs on with its memory intact
   * (DESIGN rule 5): restart it if migration stopped it while running.
   */
  private async cleanupAfterError(inDoubt = false): Promise<void> {
    // A snapshot cut short must not leave the guest's writes waiting on pages nobody will save.
    this.snapshot?.stop();
    this.abortChannels();
    await this.multifd?.abort();
    this.returnPath?.close();
    // QEMU plugs failover primaries back into a guest that stays here.
    if (!this.pastPointOfNoReturn) this.env.failoverPrimaries.replug();
    const guest = this.env.guest;
    // Past the point of no return the guest runs on the destination: this copy never runs again.
    if (this.pastPointOfNoReturn) return guest.setRunState('postmigrate');
    // Maybe it runs there: this copy waits, whole, for the orchestrator's word (cont) rather than risk two running.
    if (inDoubt && guest.runState === 'finish-migrate') return guest.setRunState('postmigrate');
    if (guest.runState === 'finish-migrate') {
      const before = this.runStateBefore ?? 'running';
      if (before === 'running') guest.start();
      else guest.setRunState(before === 'prelaunch' ? 'prelaunch' : 'paused');
    }
  }

  /** A dirty sync, timed (the switchover's own sync costs about as much). */
  private syncDirty(): ReturnType<RamSaver['sync']> {
    const start = performance.now();
    const sync = this.saver.sync();
    this.syncMs = performance.now() - start;
    return sync;
  }

  /** What the switchover moves pages at: avail-switchover-bandwidth when set, else what the migration measures. */
  private switchoverBytesPerMs(): number {
    const avail = this.env.options.availSwitchoverBandwidth();
    return avail > 0 ? avail / 1000 : this.meter.bandwidth.bytesPerMs;
  }

  /**
   * The downtime the switchover spends on anything but sending what is
   * pending: its dirty sync, and draining what is already under way.
   */
  private switchoverOverheadMs(): number {
    return this.syncMs + (this.drain?.ms ?? 0);
  }

  /**
   * QEMU's threshold_size (bandwidth × downtime-limit), less what the
   * overhead takes from the limit: what may be pending at the switchover.
   */
  private thresholdBytes(): number {
    return this.switchoverBytesPerMs() * Math.max(0, this.env.options.downtimeLimit() - this.switchoverOverheadMs());
  }

  /**
   * expected-downtime after a pass's dirty sync: the switchover's dirty
   * sync, then the pending pages that carry data at the switchover
   * bandwidth, and the drain. A running guest's vCPUs give back the CPU
   * the migration thread waited for in precopy once they stop, so sending
   * and drain shrink by that wait (cpu-wait.ts; only the main thread's, so
   * with multifd the shrink is smaller than the channels' waits would
   * give); sending does not when avail-switchover-bandwidth says what the
   * switchover gets. The sync stays whole: the switchover's own took
   * longer than precopy's in the runs measured. The threshold keeps the
   * unshrunk figures, a margin for the decision, so expected-downtime may
   * be under the limit while precopy goes on. Only passes set it (as
   * QEMU's iterations do), so after the switchover it still says what the
   * switchover was decided on.
   */
  private estimateDowntime(): void {
    const bytesPerMs = this.switchoverBytesPerMs();
    this.pendingBytes = this.saver.pendingDataPages() * TARGET_PAGE_SIZE;
    if (bytesPerMs <= 0) {
      this.expectedDowntime = 0;
      return;
    }
    this.shareNotWaiting = this.env.guest.runState === 'running' ? this.cpuWait.shareNotWaiting() : 1;
    const sendShare = this.env.options.availSwitchoverBandwidth() > 0 ? 1 : this.shareNotWaiting;
    const sendMs = (this.pendingBytes / bytesPerMs) * sendShare;
    this.expectedDowntime = Math.round(this.syncMs + sendMs + (this.drain?.ms ?? 0) * this.shareNotWaiting);
  }

  private countSync(rate: number): void {
    const stats = this.stats;
    stats.dirtySyncCount++;
    this.cpuWait.sample(stats.dirtySyncCount > FIRST_PASS_END_SYNC);
    stats.dirtyPagesRate = rate;
    stats.remainingPages = this.saver.remaining;
    const bytesPerMs = this.meter.bandwidth.bytesPerMs;
    stats.mbps = (bytesPerMs * 8) / 1000;
    stats.pagesPerSecond = (bytesPerMs * 1000) / TARGET_PAGE_SIZE;
    this.xbzrleSaver?.onSync(Date.now(), stats.normal + stats.duplicate);
    this.env.onPass(stats.dirtySyncCount);
  }
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** A failure of this program rather than of a connection or a peer: postcopy fails on it instead of pausing (QEMU). */
function isDefect(err: unknown): boolean {
  return err instanceof TypeError || err instanceof RangeError || err instanceof ReferenceError || err instanceof SyntaxError;
}

/** The source machine's `migration` actor, bound to an instance. */
export function migrationActor(env: SourceEnvironment, created: (m: SourceMigration) => void) {
  return fromCallback<MigrationActorMessage, MigrationActorInput>(({ input, sendBack, receive }) => {
    const migration = new SourceMigration(env, input, (e) => sendBack(e));
    created(migration);
    receive((cmd) => migration.command(cmd));
    void migration.run();
    return () => migration.dispose();
  });
}
