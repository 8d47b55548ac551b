/**
 * QEMU's migration thread, as the source machine's `migration` actor:
 * setup (connect, header), iterations (send dirty pages, dirty-sync when the
 * pending estimate falls below the threshold), completion (stop the guest,
 * send what is left and the device state) and cleanup. It reports to the
 * statechart with MigrationActorReport events; the statechart decides the
 * status.
 */
import { once } from 'node:events';
import type { Writable } from 'node:stream';
import { fromCallback } from 'xstate';
import type { MigrationActorCommand, MigrationActorReport } from '../../machines/events.js';
import type { MigrationActorInput } from '../../machines/source.js';
import { encodeControl, encodeHello, encodePagesHeader } from '../../protocols/stream/encode.js';
import { ChannelKind } from '../../protocols/stream/constants.js';
import type { StreamMessage } from '../../protocols/stream/messages.js';
import { openOutgoing, type OutgoingChannel } from '../../protocols/transport/outgoing.js';
import { parseMigrationUri, type MigrationUri } from '../../protocols/transport/uri.js';
import type { ChannelAddress } from '../multifd/messages.js';
import { MultifdSender } from '../multifd/multifd-sender.js';
import { channelPath } from '../multifd/multifd-receiver.js';
import { TARGET_PAGE_SIZE } from '../guest/constants.js';
import type { RunState } from '../guest/run-state.js';
import { CancelledError, abortable, sleep } from './abortable.js';
import type { MigrationEnvironment } from './environment.js';
import { MAX_DATA_PAGES } from './page-runs.js';
import { RamSaver, type PageBatch } from './ram-saver.js';
import { RamStats } from './ram-stats.js';
import { BandwidthMeter, RATE_WINDOW_MS, RateLimiter } from './rate-limit.js';
import { ReturnPathReader } from './return-path-reader.js';
import { describeGuest } from './stream-header.js';

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
/** How long the source waits for the destination to say where its channels listen. */
const MULTIFD_CONNECT_TIMEOUT_MS = 30_000;

export class SourceMigration {
  readonly stats = new RamStats();
  readonly startTime = Date.now();
  setupTime: number | undefined;
  endTime: number | undefined;
  downtime: number | undefined;
  expectedDowntime = 0;

  private readonly abort = new AbortController();
  private channel: OutgoingChannel | undefined;
  private returnPath: ReturnPathReader | undefined;
  private continueSwitchover: (() => void) | undefined;
  private cancelled = false;
  private sinkError: Error | undefined;
  private runStateBefore: RunState | undefined;
  private readonly bandwidth = new BandwidthMeter();
  private readonly limiter: RateLimiter;

  constructor(
    private readonly env: MigrationEnvironment,
    private readonly input: MigrationActorInput,
    private readonly report: (event: MigrationActorReport) => void,
  ) {
    this.limiter = new RateLimiter(() => (this.stats.inDowntime ? Infinity : env.options.maxBandwidth()));
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
    // Kept, and surfaced by the write or drain that finds the channel broken.
    this.channel.sink.on('error', (err) => (this.sinkError ??= err));
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
    await this.write(encodeHello({ kind: ChannelKind.MAIN, channelId: 0, channelCount: 1, ...(this.env.uuid ? { uuid: this.env.uuid } : {}) }));
    // The return path opens first, so a destination that refuses the header can say why.
    if (this.returnPath) await this.sendMessage({ type: 'open-return-path' });
    await this.sendMessage(describeGuest(guest, {
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

  private saver!: RamSaver;
  private multifd: MultifdSender | undefined;
  /** The dirty-sync round pages now being sent belong to (multifd SYNC packets end it). */
  private round = 0;
  private multifdBytesSeen = 0;
  /** What max-bandwidth has been charged for multifd so far (see accountMultifd). */
  private multifdCharged = 0;

  /**
   * Connects the multifd channels where the destination's return path says
   * they listen, one worker each.
   */
  private async startMultifd(uri: MigrationUri): Promise<MultifdSender> {
    const params = this.env.options.params;
    const channels = params['multifd-channels'];
    if (!this.returnPath || (uri.scheme !== 'tcp' && uri.scheme !== 'unix')) {
      throw new Error('Migration requires multi-channel URIs (e.g. tcp)');
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
    await this.sendMessage({ type: 'round-end', round: this.round });
    this.round++;
  }

  /** Multifd bytes are counted by the channel workers as they write them. */
  private accountMultifd(): void {
    const m = this.multifd!;
    const total = m.bytes;
    const delta = total - this.multifdBytesSeen;
    const pageDelta = (m.normalPages - this.stats.normal) * TARGET_PAGE_SIZE;
    this.multifdBytesSeen = total;
    this.stats.multifdBytes = total;
    this.stats.normal = m.normalPages;
    this.stats.duplicate = m.zeroPages;
    this.stats.remainingPages = this.saver.remaining;
    // The channels write at full speed once they hold a batch, so
    // max-bandwidth is charged as batches are handed out (by their page
    // bytes) and trued up to what was written once they are; charged only as
    // written, the batches queued on every channel would leave in one burst.
    const due = total + m.queuedBytes;
    const charge = due - this.multifdCharged;
    this.multifdCharged = due;
    // Compressed, the wire carries far fewer bytes than the pages it clears;
    // the switchover threshold weighs pages, so it measures page bytes.
    this.account(delta, this.env.options.params['multifd-compression'] === 'none' ? delta : pageDelta, charge);
  }

  /** Sends the next batch, on the main channel or a multifd channel; false when nothing is left. */
  private async sendNext(): Promise<boolean> {
    if (!this.multifd) {
      const batch = this.saver.nextBatch(this.limiter.windowPages(MAX_DATA_PAGES, TARGET_PAGE_SIZE));
      if (batch) await this.sendBatch(batch);
      return batch !== null;
    }
    const next = this.saver.nextRanges(MULTIFD_BATCH_PAGES, this.limiter.windowPages(MULTIFD_BATCH_PAGES, TARGET_PAGE_SIZE));
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
      for (let wait = this.limiter.delay(); wait > 0; wait = this.limiter.delay()) {
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
    await this.sendMessage({ type: 'ram-complete' });
    for (const saved of guest.devices.saveAll()) await this.sendMessage({ type: 'device', ...saved });
    await this.sendMessage({ type: 'eof' });
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
    const bytesPerMs = avail > 0 ? avail / 1000 : this.bandwidth.bytesPerMs;
    return bytesPerMs * this.env.options.downtimeLimit();
  }

  private countSync(rate: number): void {
    const stats = this.stats;
    stats.dirtySyncCount++;
    stats.dirtyPagesRate = rate;
    stats.remainingPages = this.saver.remaining;
    const bytesPerMs = this.bandwidth.bytesPerMs;
    this.expectedDowntime = bytesPerMs > 0 ? Math.round((this.saver.remaining * TARGET_PAGE_SIZE) / bytesPerMs) : 0;
    stats.mbps = (bytesPerMs * 8) / 1000;
    stats.pagesPerSecond = (bytesPerMs * 1000) / TARGET_PAGE_SIZE;
    this.env.onPass(stats.dirtySyncCount);
  }

  private async sendBatch(batch: PageBatch): Promise<void> {
    const header = encodePagesHeader(batch.block, batch.runs);
    const sink = this.channel!.sink;
    // One writev for the frame: a header written alone leaves as a segment of its own.
    let ok = true;
    let bytes = header.length;
    sink.cork();
    try {
      ok = sink.write(header);
      for (const view of batch.data) {
        ok = sink.write(view) && ok;
        bytes += view.length;
      }
    } finally {
      sink.uncork();
    }
    this.stats.normal += batch.normalPages;
    this.stats.duplicate += batch.zeroPages;
    this.stats.remainingPages = this.saver.remaining;
    this.account(bytes);
    if (!ok) await this.drain(sink);
  }

  private async sendMessage(message: StreamMessage): Promise<void> {
    await this.write(encodeControl(message));
  }

  private async write(bytes: Uint8Array): Promise<void> {
    const sink = this.channel!.sink;
    const ok = sink.write(bytes);
    this.account(bytes.length);
    if (!ok) await this.drain(sink);
  }

  /**
   * Counts bytes put on the wire; `clearedBytes` is how much RAM they moved,
   * for the switchover bandwidth; `charged`, what max-bandwidth is charged.
   */
  private account(bytes: number, clearedBytes = bytes, charged = bytes): void {
    this.stats.countBytes(bytes);
    this.bandwidth.account(clearedBytes);
    this.limiter.account(charged);
  }

  private async drain(sink: Writable): Promise<void> {
    if (sink.destroyed) throw await this.brokenChannel();
    // Both waits are removed once either ends: one per backpressure wait would pile up.
    const waiting = new AbortController();
    const drained = once(sink, 'drain', { signal: waiting.signal });
    const closed = once(sink, 'close', { signal: waiting.signal });
    drained.catch(() => {});
    closed.catch(() => {});
    try {
      const first = await abortable(this.abort.signal, Promise.race([drained.then(() => 'drain'), closed.then(() => 'close')]));
      if (first === 'close') throw new Error('closed');
    } catch {
      // A cancel, or a failure seen elsewhere (the return path), explains itself.
      if (this.abort.signal.aborted) throw this.abort.signal.reason;
      throw await this.brokenChannel();
    } finally {
      waiting.abort();
    }
  }

  /**
   * The error for a channel that broke under a write. A destination that
   * refused the stream says why on the return path just before it closes:
   * that reason, when it comes, is the one a person can act on.
   */
  private async brokenChannel(): Promise<Error> {
    const reason = await this.returnPath?.failureWithin(SHUT_GRACE_MS);
    if (reason) return reason;
    const err = this.sinkError as NodeJS.ErrnoException | undefined;
    if (!err) return new Error('The migration channel was closed');
    return new Error(err.syscall === 'write' ? `Unable to write to the migration channel: ${err.message}` : `The migration channel failed: ${err.message}`);
  }
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** The source machine's `migration` actor, bound to an instance. */
export function migrationActor(env: MigrationEnvironment, created: (m: SourceMigration) => void) {
  return fromCallback<MigrationActorCommand, MigrationActorInput>(({ input, sendBack, receive }) => {
    const migration = new SourceMigration(env, input, (e) => sendBack(e));
    created(migration);
    receive((cmd) => migration.command(cmd));
    void migration.run();
    return () => migration.dispose();
  });
}
