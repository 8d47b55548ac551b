/**
 * QEMU's migration thread, as the source machine's `migration` actor:
 * setup (connect, header), iterations (send dirty pages, dirty-sync when the
 * pending estimate falls below the threshold), completion (stop the guest,
 * send what is left and the device state) and cleanup. It reports to the
 * statechart with MigrationActorReport events; the statechart decides the
 * status.
 */
import { fromCallback } from 'xstate';
import type { MigrationActorCommand, MigrationActorReport } from '../../machines/events.js';
import type { MigrationActorInput } from '../../machines/source.js';
import { ChannelKind } from '../../protocols/hello/constants.js';
import { encodeHello } from '../../protocols/hello/encode.js';
import { openOutgoing, type OutgoingChannel } from '../../protocols/transport/outgoing.js';
import { MULTI_CHANNEL_REQUIRED, parseMigrationUri, type MigrationUri } from '../../protocols/transport/uri.js';
import { TARGET_PAGE_SIZE } from '../guest/constants.js';
import type { RunState } from '../guest/run-state.js';
import { MULTIFD_CONNECT_TIMEOUT_MS } from '../multifd/connect-timeout.js';
import type { ChannelAddress } from '../multifd/messages.js';
import { channelPath } from '../multifd/multifd-receiver.js';
import { MultifdSender } from '../multifd/multifd-sender.js';
import { MAX_DATA_PAGES } from '../ram/page-runs.js';
import { RamSaver } from '../ram/ram-saver.js';
import { RamStats } from '../ram/ram-stats.js';
import { ReturnPathReader } from '../return-path/return-path-reader.js';
import { describeGuest } from '../savevm/stream-header.js';
import { CancelledError, abortable, sleep } from './abortable.js';
import type { SourceEnvironment } from './environment.js';
import { MainChannel } from './main-channel.js';
import { RATE_WINDOW_MS } from './rate-limit.js';
import { TransferMeter } from './transfer-meter.js';

/** What query-migrate shows of a source migration. */
export interface SourceMigrationInfo {
  startTime: number;
  setupTime: number | undefined;
  endTime: number | undefined;
  downtime: number | undefined;
  expectedDowntime: number;
  stats: RamStats;
}

/** How long a broken channel waits for the destination's reason on the return path. */
const SHUT_GRACE_MS = 500;
/** Pages per multifd batch handed to a channel: 4 MiB, one full packet. */
const MULTIFD_BATCH_PAGES = MAX_DATA_PAGES;

export class SourceMigration {
  readonly stats = new RamStats();
  readonly startTime = Date.now();
  setupTime: number | undefined;
  endTime: number | undefined;
  downtime: number | undefined;
  expectedDowntime = 0;

  private readonly abort = new AbortController();
  private channel: OutgoingChannel | undefined;
  private main!: MainChannel;
  private returnPath: ReturnPathReader | undefined;
  private continueSwitchover: (() => void) | undefined;
  private cancelled = false;
  private runStateBefore: RunState | undefined;
  private readonly meter: TransferMeter;
  private saver!: RamSaver;
  private multifd: MultifdSender | undefined;
  /** The dirty-sync round pages now being sent belong to (multifd SYNC packets end it). */
  private round = 0;

  constructor(
    private readonly env: SourceEnvironment,
    private readonly input: MigrationActorInput,
    private readonly report: (event: MigrationActorReport) => void,
  ) {
    // No rate limit during stop-and-copy.
    this.meter = new TransferMeter(this.stats, () => (this.stats.inDowntime ? Infinity : env.options.maxBandwidth()));
  }

  command(cmd: MigrationActorCommand): void {
    if (cmd.type === 'migrate_cancel') this.cancel();
    else if (cmd.type === 'migrate-continue') this.continueSwitchover?.();
  }

  /** migrate_fd_cancel: tear the channel down; the thread then restores the guest and reports. */
  cancel(): void {
    if (this.cancelled) return;
    this.cancelled = true;
    this.abort.abort(new CancelledError());
    this.channel?.abort();
  }

  /** Ends the migration with `err` from outside the thread's own awaits. */
  private fail(err: Error): void {
    if (this.abort.signal.aborted) return;
    this.abort.abort(err);
    this.channel?.abort();
  }

  /** The actor is stopped (machine left the running states): nothing may outlive it. */
  dispose(): void {
    if (!this.abort.signal.aborted) this.abort.abort(new CancelledError());
    this.channel?.abort();
    void this.multifd?.abort();
    this.returnPath?.close();
  }

  async run(): Promise<void> {
    try {
      await this.setup();
      this.report({ type: 'setup.done' });
      await this.iterate();
      await this.complete();
      this.endTime = Date.now();
      this.report({ type: 'completed' });
    } catch (err) {
      this.endTime = Date.now();
      // A destination that refused the stream says why on the return path;
      // that beats whichever channel noticed first.
      const reason = this.cancelled ? undefined : await this.returnPath?.failureWithin(SHUT_GRACE_MS);
      await this.cleanupAfterError();
      if (this.cancelled) {
        this.env.log('migration cancelled');
        this.report({ type: 'cancel.done' });
      } else {
        const error = errorText(reason ?? err);
        this.env.log('migration failed', { error });
        this.report({ type: 'failed', error });
      }
    }
  }

  private async setup(): Promise<void> {
    const uri = parseMigrationUri(this.input.uri, { direction: 'outgoing' });
    const guest = this.env.guest;
    this.stats.totalBytes = guest.blocks.reduce((n, b) => n + b.size, 0);
    this.channel = await abortable(this.abort.signal, openOutgoing(uri));
    this.main = new MainChannel(this.channel.sink, this.meter, this.abort.signal, async () => this.returnPath?.failureWithin(SHUT_GRACE_MS));
    // The return path is the reverse direction of a socket, always used where
    // it exists; the return-path capability makes it required (QEMU's error).
    if (this.input.capabilities['return-path'] && !this.channel.reverse) {
      throw new Error('Unable to open return-path for postcopy');
    }
    if (this.channel.reverse) {
      this.returnPath = new ReturnPathReader(this.channel.reverse);
      // A bad return path fails a precopy migration at once.
      this.returnPath.on('error', (err) => this.fail(err));
      this.returnPath.on('message', (m) => this.env.trace('return-path', 'migration', m.type));
    }
    const capabilities = Object.entries(this.input.capabilities).filter(([, on]) => on).map(([name]) => name);
    await this.main.write(encodeHello({ kind: ChannelKind.MAIN, channelId: 0, channelCount: 1, ...(this.env.uuid ? { uuid: this.env.uuid } : {}) }));
    // The return path opens first, so a destination that refuses the header can say why.
    if (this.returnPath) await this.main.sendMessage({ type: 'open-return-path' });
    await this.main.sendMessage(describeGuest(guest, {
      uuid: this.input.capabilities['validate-uuid'] ? this.env.uuid : undefined,
      capabilities,
    }));
    if (this.input.capabilities.multifd) this.multifd = await this.startMultifd(uri);
    this.saver = new RamSaver(guest.blocks);
    this.saver.startDirtyLogging();
    // The first sync (QEMU syncs while setting up the bitmaps): pass 1.
    this.countSync(0);
    this.setupTime = Date.now() - this.startTime;
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
      uuid: this.env.uuid,
      blocks: this.env.guest.blocks,
      compression,
      level: compression === 'zstd' ? params['multifd-zstd-level'] : params['multifd-zlib-level'],
    });
    const started = await abortable(this.abort.signal, sender);
    this.env.trace('migration', 'multifd', `${channels} channels connected`);
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
      if (!batch) return false;
      this.stats.normal += batch.normalPages;
      this.stats.duplicate += batch.zeroPages;
      this.stats.remainingPages = this.saver.remaining;
      await this.main.sendPages(batch);
      return true;
    }
    const next = this.saver.nextRanges(MULTIFD_BATCH_PAGES, limiter.windowPages(MULTIFD_BATCH_PAGES, TARGET_PAGE_SIZE));
    if (next) await abortable(this.abort.signal, this.multifd.sendPages(next.block, this.round, next.ranges, next.dataPages * TARGET_PAGE_SIZE));
    this.accountMultifd();
    return next !== null;
  }

  /**
   * migration_iteration_run, repeated: send pages while the estimate of what
   * is pending exceeds the threshold; below it, sync for the exact figure and
   * switch over once it fits in the downtime limit.
   */
  private async iterate(): Promise<void> {
    for (;;) {
      const threshold = this.thresholdBytes();
      if (this.saver.remaining * TARGET_PAGE_SIZE <= threshold) {
        await this.endRound();
        this.countSync(this.saver.sync().rate);
        const pending = this.saver.remaining * TARGET_PAGE_SIZE;
        if (pending === 0 || pending < threshold) return;
      }
      // Re-check at least every window, so a raised max-bandwidth applies at once.
      for (let wait = this.meter.limiter.delay(); wait > 0; wait = this.meter.limiter.delay()) {
        await sleep(this.abort.signal, Math.min(wait, RATE_WINDOW_MS));
      }
      await this.sendNext();
    }
  }

  /** migration_completion: stop-and-copy, with no rate limit. */
  private async complete(): Promise<void> {
    const guest = this.env.guest;
    this.runStateBefore = guest.runState;
    const stoppedAt = Date.now();
    await guest.stop('finish-migrate');
    this.stats.inDowntime = true;
    if (this.input.capabilities['pause-before-switchover']) {
      const released = new Promise<void>((resolve) => (this.continueSwitchover = resolve));
      this.report({ type: 'switchover.pause' });
      await abortable(this.abort.signal, released);
    }
    await this.endRound();
    this.countSync(this.saver.sync().rate);
    while (await this.sendNext());
    // Every channel synced and the destination told, before any device state (DESIGN rule 4).
    await this.endRound();
    await this.multifd?.finish();
    await this.main.sendMessage({ type: 'ram-complete' });
    for (const saved of guest.devices.saveAll()) await this.main.sendMessage({ type: 'device', ...saved });
    await this.main.sendMessage({ type: 'eof' });
    await abortable(this.abort.signal, this.channel!.finish());
    // With a return path, completed means the destination loaded everything.
    if (this.returnPath) await abortable(this.abort.signal, this.returnPath.shut());
    this.downtime = Date.now() - stoppedAt;
    this.stats.remainingPages = 0;
    const elapsed = Date.now() - this.startTime - (this.setupTime ?? 0);
    this.stats.mbps = elapsed > 0 ? (this.stats.transferred * 8) / elapsed / 1000 : 0;
    guest.setRunState('postmigrate');
  }

  /**
   * After a failure or cancel the source guest runs on with its memory intact
   * (DESIGN rule 5): restart it if migration stopped it while running.
   */
  private async cleanupAfterError(): Promise<void> {
    this.channel?.abort();
    await this.multifd?.abort();
    this.returnPath?.close();
    const guest = this.env.guest;
    if (guest.runState === 'finish-migrate') {
      const before = this.runStateBefore ?? 'running';
      if (before === 'running') guest.start();
      else guest.setRunState(before === 'prelaunch' ? 'prelaunch' : 'paused');
    }
  }

  private thresholdBytes(): number {
    const avail = this.env.options.availSwitchoverBandwidth();
    const bytesPerMs = avail > 0 ? avail / 1000 : this.meter.bandwidth.bytesPerMs;
    return bytesPerMs * this.env.options.downtimeLimit();
  }

  private countSync(rate: number): void {
    const stats = this.stats;
    stats.dirtySyncCount++;
    stats.dirtyPagesRate = rate;
    stats.remainingPages = this.saver.remaining;
    const bytesPerMs = this.meter.bandwidth.bytesPerMs;
    this.expectedDowntime = bytesPerMs > 0 ? Math.round((this.saver.remaining * TARGET_PAGE_SIZE) / bytesPerMs) : 0;
    stats.mbps = (bytesPerMs * 8) / 1000;
    stats.pagesPerSecond = (bytesPerMs * 1000) / TARGET_PAGE_SIZE;
    this.env.onPass(stats.dirtySyncCount);
  }
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** The source machine's `migration` actor, bound to an instance. */
export function migrationActor(env: SourceEnvironment, created: (m: SourceMigration) => void) {
  return fromCallback<MigrationActorCommand, MigrationActorInput>(({ input, sendBack, receive }) => {
    const migration = new SourceMigration(env, input, (e) => sendBack(e));
    created(migration);
    receive((cmd) => migration.command(cmd));
    void migration.run();
    return () => migration.dispose();
  });
}
