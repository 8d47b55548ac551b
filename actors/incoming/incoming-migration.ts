/**
 * The destination's `incoming` actor (QEMU's process_incoming_migration):
 * listen, accept the main channel, load the stream — pages into guest RAM
 * (long runs straight from the socket), then device state — and start the
 * guest only once everything sent before the device state is in place
 * (DESIGN rule 4). In postcopy the guest starts at POSTCOPY_RUN and pages
 * keep coming while it runs (postcopy-incoming.ts); any failure after that
 * pauses the migration instead of failing it, the guest waiting on its
 * faults, and `migrate-recover` listens for the source to reconnect: it asks
 * for the received bitmaps, then resumes (POSTCOPY_RESUME, answered by
 * RESUME_ACK).
 */
import { fromCallback } from 'xstate';
import type { IncomingActorCommand, IncomingActorReport } from '../../machines/events.js';
import type { IncomingActorInput } from '../../machines/destination.js';
import { ChannelKind } from '../../protocols/hello/constants.js';
import type { ChannelHello } from '../../protocols/hello/types.js';
import { StreamDecoder } from '../../protocols/stream/decode.js';
import type { StreamMessage } from '../../protocols/stream/messages.js';
import { IncomingListener, type IncomingConnection, type SocketAddress } from '../../protocols/transport/incoming.js';
import { YANKED } from '../../protocols/transport/outgoing.js';
import { RESUME_ACK_VALUE } from '../../protocols/return-path/constants.js';
import { MULTI_CHANNEL_REQUIRED, parseMigrationUri } from '../../protocols/transport/uri.js';
import type { FaultLatencySummary } from '../guest/fault-latency.js';
import type { RamBlock } from '../guest/ram-block.js';
import { MULTIFD_CONNECT_TIMEOUT_MS } from '../multifd/connect-timeout.js';
import { MultifdReceiver } from '../multifd/multifd-receiver.js';
import { logThreadRoles } from '../threads/thread-role.js';
import { PreemptReceiver } from '../postcopy-preempt/preempt-receiver.js';
import { POSTCOPY_KEEPALIVE_MS, POSTCOPY_STALL_MS } from '../return-path/postcopy-liveness.js';
import { GuestSink } from '../ram/guest-sink.js';
import { PostcopyIncoming } from './postcopy-incoming.js';
import { ColoSecondary } from '../colo/colo-secondary.js';
import type { TlsServerData } from '../objects/migration-tls.js';
import { DestinationReturnPath } from '../return-path/destination-return-path.js';
import { PageRequester, type FaultHandler } from '../return-path/page-requester.js';
import { checkHeader } from '../savevm/stream-header.js';
import { migrationAnnounceParameters } from '../net/announce.js';
import type { IncomingEnvironment } from './environment.js';

/** How long a failed destination waits for the source to hang up after saying why. */
const HANG_UP_GRACE_MS = 2000;
/**
 * A main connection that has not sent its channel hello by then is no
 * migration source (a port scan, a stuck peer): the migration fails (or,
 * in postcopy, pauses) rather than hold the one main-channel slot forever.
 */
export const HELLO_TIMEOUT_MS = 10_000;

/** What the destination's query-migrate shows under the livemig extension. */
export interface IncomingInfo {
  socketAddress: SocketAddress[];
  bytes: number;
  pages: number;
  zeroPages: number;
  startTime: number | undefined;
  endTime: number | undefined;
  /** With postcopy-blocktime, once postcopy ran: ms all vCPUs waited on missing pages at once, and each one in all. */
  blocktime?: { total: number; perVcpu: number[] };
  /** Page requests sent (postcopy). */
  postcopyRequests: number;
  /** Once postcopy ran: how long the guest's faults waited for their pages. */
  faultLatency?: FaultLatencySummary;
}

export class IncomingMigration {
  private listener: IncomingListener | undefined;
  /** The channel threads' TLS settings (tls-creds set). */
  private tlsData: TlsServerData | undefined;
  private main: IncomingConnection | undefined;
  private decoder: StreamDecoder | undefined;
  private sink: GuestSink | undefined;
  private returnPath: DestinationReturnPath | undefined;
  private postcopy: PostcopyIncoming | undefined;
  /** postcopy-preempt: the thread that owns the second connection, taking faults and placing the pages they ask for. */
  private preempt: PreemptReceiver | undefined;
  /** The guest's RAM blocks in the stream header's order. */
  private streamBlocks: readonly RamBlock[] = [];
  private multifd: MultifdReceiver | undefined;
  private channelsReady: Promise<void> = Promise.resolve();
  private channelTimer: NodeJS.Timeout | undefined;
  /** Control messages not yet handled, and whether a multifd round holds them. */
  private readonly queue: StreamMessage[] = [];
  private held = false;
  private mainEnded = false;
  private failed = false;
  private done = false;
  /** Bumped with each main connection and at each pause: a connection's late callbacks see they are stale. */
  private generation = 0;
  /** The fault handler on the return path (without preempt), kept across recoveries. */
  private requester: PageRequester | undefined;
  /** A recovery's connection is up and POSTCOPY_RESUME has not come yet. */
  private recovering = false;
  /** The preempt thread a migrate-recover started, until the source's connection takes it. */
  private pendingPreempt: Promise<PreemptReceiver> | undefined;
  /** The stream said ENABLE_COLO: once loaded, this side becomes the COLO secondary. */
  private coloEnabled = false;
  private colo: ColoSecondary | undefined;
  private helloTimer: NodeJS.Timeout | undefined;
  /** Postcopy-active: looks every second whether anything came from the source (postcopy-liveness.ts). */
  private liveness: NodeJS.Timeout | undefined;
  startTime: number | undefined;
  endTime: number | undefined;
  /** Resolves once a failed incoming migration has closed its connections. */
  quiesced: Promise<void> = Promise.resolve();

  constructor(
    private readonly env: IncomingEnvironment,
    private readonly input: IncomingActorInput,
    private readonly report: (event: IncomingActorReport) => void,
  ) {}

  info(): IncomingInfo {
    const preempt = this.preempt?.counters;
    return {
      socketAddress: this.listener?.socketAddresses() ?? [],
      bytes: (this.decoder?.bytesDecoded ?? 0) + (this.multifd?.bytes ?? 0) + (preempt?.bytes ?? 0),
      pages: (this.sink?.pageCount ?? 0) + (this.multifd?.pages ?? 0) + (preempt?.pages ?? 0),
      zeroPages: (this.sink?.zeroPageCount ?? 0) + (this.multifd?.zeroPages ?? 0) + (preempt?.zeroPages ?? 0),
      startTime: this.startTime,
      endTime: this.endTime,
      ...(this.postcopy?.listened && this.env.options.caps['postcopy-blocktime'] ? { blocktime: this.env.guest.blocktime() } : {}),
      postcopyRequests: this.postcopy?.requests ?? 0,
      ...(this.postcopy?.listened ? { faultLatency: this.env.guest.faultLatency() } : {}),
    };
  }

  async run(): Promise<void> {
    try {
      this.tlsData = this.env.tlsServerData();
      this.listener = this.env.takeListener()
        ?? (await IncomingListener.listen(parseMigrationUri(this.input.uri, { direction: 'incoming' }), {
          tls: this.env.tlsServer(),
          descriptorPaths: this.env.descriptorPaths,
        }));
    } catch (err) {
      return this.fail(err);
    }
    if (this.done) return this.listener.close();
    // A client that fails the TLS handshake or its checks fails the migration, as in QEMU.
    this.listener.on('rejected', (err) => this.fail(err));
    // Accept at once; reading waits until the multifd channels and the preempt thread listen.
    this.listener.on('connection', (c) => void this.accept(c));
    const starting: Promise<void>[] = [];
    if (this.env.options.caps.multifd) {
      starting.push(this.startMultifd().then((m) => {
        this.multifd = m;
        logThreadRoles((message, fields) => this.env.log(message, fields), 'channel', m.threads());
      }));
    }
    if (this.env.options.caps['postcopy-preempt']) starting.push(this.startPreempt().then((p) => void (this.preempt = p)));
    this.channelsReady = Promise.all(starting).then(() => {});
    this.channelsReady.catch((err) => this.fail(err));
    this.listener.on('error', (err) => this.fail(err));
    this.env.log('incoming migration listening', { addresses: this.listener.socketAddresses() });
  }

  /**
   * The statechart left the running states. After a failure the connection
   * is left to close on its own bounded schedule (see fail); otherwise
   * everything closes now.
   */
  dispose(): void {
    this.env.switchoverAckDevices.stop();
    clearInterval(this.liveness);
    clearTimeout(this.helloTimer);
    this.closeRecoveryListener();
    if (this.failed) return;
    this.done = true;
    this.postcopy?.stop();
    this.preempt?.close();
    this.listener?.close();
    this.multifd?.close();
    clearTimeout(this.channelTimer);
    // The COLO link, which no listener closes.
    if (this.colo) this.main?.close();
  }

  /**
   * switchover-ack: SWITCHOVER_ACK goes to the source once every device that
   * holds the switchover is ready (at once when none does). Either side's
   * capability is enough: a source that waits for the ack, or one that gets
   * it unasked (which QEMU's takes too).
   */
  private acknowledgeSwitchover(): void {
    const returnPath = this.returnPath;
    if (!returnPath) return;
    void this.env.switchoverAckDevices.allReady().then(() => {
      if (this.done || this.failed || returnPath !== this.returnPath) return;
      returnPath.send({ type: 'switchover-ack' });
      this.env.trace('incoming', 'return-path', 'switchover-ack');
    });
  }

  /** Where further channels listen: on the main listener's host, or beside its unix socket. */
  private besideMainListener(): { host: string } | { unixBase: string } {
    const address = this.listener!.socketAddresses()[0];
    if (!address) throw new Error(MULTI_CHANNEL_REQUIRED);
    return address.type === 'inet' ? { host: address.host } : { unixBase: address.path };
  }

  /** A listener per multifd channel, on the main listener's host (or beside its unix socket), on the channel threads. */
  private async startMultifd(): Promise<MultifdReceiver> {
    const params = this.env.options.params;
    const channels = params['multifd-channels'];
    return MultifdReceiver.start({
      channels,
      workers: this.env.multifdRecvWorkers(channels),
      listen: this.besideMainListener(),
      tls: this.tlsData,
      blocks: this.env.guest.blocks,
      compression: params['multifd-compression'],
      uuid: this.env.uuid,
      onError: (message) => this.fail(new Error(message)),
    });
  }

  /** The postcopy-preempt thread, listening beside the main listener (on its host, or beside its unix socket). */
  private async startPreempt(): Promise<PreemptReceiver> {
    return PreemptReceiver.start({
      guest: this.env.guest,
      listen: this.besideMainListener(),
      tls: this.tlsData,
      uuid: this.env.uuid,
      onError: (message) => this.fail(new Error(message)),
      trace: (from, to, event) => this.env.trace(from, to, event),
    });
  }

  private async accept(connection: IncomingConnection): Promise<void> {
    if (this.main || this.done) {
      // Only one main channel per incoming migration.
      connection.close();
      return;
    }
    this.attachMain(connection);
    this.listener!.stopListening();
    try {
      await this.channelsReady;
    } catch {
      return;
    }
    if (this.done) return;
    this.sink = new GuestSink([]);
    this.postcopy = new PostcopyIncoming(this.env.guest, this.sink, this.faultHandler(), () => this.env.options.caps['postcopy-ram']);
    this.readMain(connection, true);
  }

  /** A main connection (the first, or a recovery's): the return path goes back on it. */
  private attachMain(connection: IncomingConnection): void {
    this.generation++;
    this.main = connection;
    clearTimeout(this.helloTimer);
    const generation = this.generation;
    this.helloTimer = setTimeout(() => {
      if (generation !== this.generation) return;
      this.fail(new Error(`the migration connection sent no channel hello within ${HELLO_TIMEOUT_MS / 1000} s: no migration source speaks on it`));
    }, HELLO_TIMEOUT_MS);
    this.helloTimer.unref();
    this.returnPath = new DestinationReturnPath(() => connection.reverse, (type) => this.env.trace('incoming', 'return-path', type));
  }

  /** Who turns faults into requests: the preempt thread, or a requester writing to the return path. */
  private faultHandler(): FaultHandler {
    if (this.preempt) return this.preempt;
    this.requester ??= new PageRequester(this.env.guest.faults, this.env.guest.blocks, (m) => {
      if (!this.returnPath) return false;
      this.returnPath.send(m);
      return true;
    });
    return this.requester;
  }

  /** Reads the stream from `connection`, until the connection is replaced (a pause) or ends. */
  private readMain(connection: IncomingConnection, first: boolean): void {
    const generation = this.generation;
    const current = () => generation === this.generation && !this.done;
    this.decoder = new StreamDecoder({
      sink: this.sink!,
      onHello: (hello) => this.onHello(hello),
      onMessage: (message) => this.onMessage(message),
    });
    if (!first) this.decoder.setLayout(layoutOf(this.streamBlocks));
    const decoder = this.decoder;
    connection.read(decoder, {
      data: () => {
        if (!current() || !first) return;
        this.startTime = Date.now();
        // Devices that hold the switchover start loading their initial data with the stream.
        this.env.switchoverAckDevices.start();
        this.report({ type: 'stream.arrived' });
      },
      end: () => {
        if (!current()) return;
        try {
          decoder.end();
        } catch (err) {
          return this.fail(err);
        }
        // Messages held behind a multifd round may still hold the EOF.
        this.mainEnded = true;
        this.pump();
      },
      error: (err) => {
        if (generation === this.generation) this.fail(err);
      },
    });
  }

  /** The listener of a migrate-recover the source has not reached yet, and the preempt thread started beside it. */
  private closeRecoveryListener(): void {
    if (!this.recoveryListening) return;
    this.listener?.close();
    this.listener = undefined;
    void this.pendingPreempt?.then((p) => p.close(), () => {});
    this.pendingPreempt = undefined;
  }

  /** A migrate-recover listener waits for the source (it has not connected yet). */
  get recoveryListening(): boolean {
    return this.done && this.listener !== undefined && this.main === undefined;
  }

  /** yank: the connected channels are shut down; the load fails, or in postcopy pauses. A listener with no connection has none. */
  yank(): void {
    if (this.main && !this.done) this.fail(new Error(YANKED));
  }

  /** Fault injection: ends the thread of multifd channel `channel`; false without multifd channels. @throws RangeError for no such channel */
  killMultifdThread(channel: number): boolean {
    this.multifd?.killThread(channel);
    return this.multifd !== undefined;
  }

  /** migrate-pause, migrate-recover and x-colo-lost-heartbeat, passed on by the statechart. */
  command(cmd: IncomingActorCommand): void {
    if (cmd.type === 'migrate-pause') {
      if (this.postcopy?.isCommitted && !this.done) this.pause(new Error('Postcopy migration is paused by the user'));
    } else if (cmd.type === 'x-colo-lost-heartbeat') {
      void this.coloFailover();
    } else {
      void this.recover();
    }
  }

  /**
   * migrate-recover: the instance has opened the new listener; the first
   * connection to it is the source's new main channel. With preempt, a new
   * preempt thread listens beside it.
   */
  private async recover(): Promise<void> {
    const listener = this.env.takeListener();
    if (!listener) return;
    // A later migrate-recover replaces an earlier one the source never reached (QEMU 8.2 does the same).
    this.closeRecoveryListener();
    this.listener = listener;
    const preempt = this.env.options.caps['postcopy-preempt'] ? this.startPreempt() : undefined;
    preempt?.catch(() => {});
    this.pendingPreempt = preempt;
    listener.on('error', (err) => this.env.log('postcopy recovery listener failed', { error: err.message }));
    // Still paused: the source may try again, with the right credentials.
    listener.on('rejected', (err) => this.env.log('postcopy recovery connection refused', { error: err.message }));
    listener.on('connection', (connection) => {
      if (!this.done || this.main) return connection.close();
      listener.stopListening();
      void this.acceptRecovery(connection, preempt);
    });
    this.env.log('postcopy recovery listening', { addresses: listener.socketAddresses() });
  }

  private async acceptRecovery(connection: IncomingConnection, preempt: Promise<PreemptReceiver> | undefined): Promise<void> {
    this.attachMain(connection);
    this.done = false;
    this.recovering = true;
    this.report({ type: 'postcopy.recover' });
    try {
      if (preempt) this.preempt = await preempt;
    } catch (err) {
      return this.fail(err);
    } finally {
      this.pendingPreempt = undefined;
    }
    if (this.done) {
      // Paused again while its preempt thread started: that thread goes with the attempt.
      this.preempt?.close();
      this.preempt = undefined;
      return;
    }
    this.preempt?.setLayout(this.streamBlocks.map((b) => this.env.guest.blocks.indexOf(b)));
    this.sink = new GuestSink(this.streamBlocks);
    this.postcopy!.reconnect(this.sink, this.faultHandler());
    this.readMain(connection, false);
  }

  private onHello(hello: ChannelHello): void {
    clearTimeout(this.helloTimer);
    if (hello.kind !== ChannelKind.MAIN) throw new Error(`expected the main channel first, got channel kind ${hello.kind}`);
  }

  /**
   * Control messages are handled in order; with multifd a `round-end` holds
   * the ones after it until every channel has placed that round's pages.
   */
  private onMessage(message: StreamMessage): void {
    this.queue.push(message);
    this.pump();
  }

  private pump(): void {
    try {
      while (!this.held && !this.done && this.queue.length > 0) this.handle(this.queue.shift()!);
    } catch (err) {
      this.fail(err);
    }
    if (this.mainEnded && !this.held && !this.done) this.fail(new Error('the migration stream ended before its EOF'));
  }

  /** The messages after this one wait until `done` (a multifd round placed, a stop, the preempt channel's end). */
  private holdUntil(done: Promise<unknown>): void {
    this.held = true;
    done.then(() => {
      this.held = false;
      this.pump();
    }, (err) => this.fail(err));
  }

  private handle(message: StreamMessage): void {
    const guest = this.env.guest;
    if (this.colo) {
      const stopping = this.colo.handle(message);
      if (stopping) this.holdUntil(stopping);
      return;
    }
    switch (message.type) {
      case 'header': {
        const problem = checkHeader(message, guest, this.env.uuid);
        if (problem) throw new Error(problem);
        for (const cap of ['multifd', 'postcopy-preempt'] as const) {
          const here = this.env.options.caps[cap];
          const there = message.capabilities.includes(cap);
          if (here !== there) throw new Error(`Capability ${cap} is ${here ? 'on' : 'off'}, but received capability is ${there ? 'on' : 'off'}`);
        }
        if (this.env.options.caps['switchover-ack'] || message.capabilities.includes('switchover-ack')) this.acknowledgeSwitchover();
        const blocks = message.blocks.map((b) => guest.block(b.name)!);
        this.streamBlocks = blocks;
        this.sink!.setBlocks(blocks);
        this.decoder!.setLayout(layoutOf(blocks));
        // As in QEMU, the source's capability is enough: the destination needs no page cache of its own.
        if (message.capabilities.includes('xbzrle')) this.decoder!.setXbzrle(this.sink!);
        this.preempt?.setLayout(blocks.map((b) => guest.blocks.indexOf(b)));
        if (this.multifd) {
          this.multifd.setLayout(blocks.map((b) => guest.blocks.indexOf(b)));
          this.channelTimer = setTimeout(() => {
            const missing = this.multifd?.missing() ?? [];
            if (missing.length > 0) this.fail(new Error(`multifd channel(s) ${missing.join(', ')} did not connect within ${MULTIFD_CONNECT_TIMEOUT_MS} ms`));
          }, MULTIFD_CONNECT_TIMEOUT_MS);
        }
        return;
      }
      case 'open-return-path':
        this.returnPath!.open();
        if (this.multifd) {
          const ports = this.multifd.ports();
          for (let first = 0; first < ports.length; first += 64) {
            this.returnPath?.send({ type: 'multifd-channels', first, count: ports.length, ports: ports.slice(first, first + 64) });
          }
        }
        if (this.preempt) this.returnPath?.send({ type: 'preempt-channel', port: this.preempt.port ?? 0 });
        return;
      case 'ping':
        this.returnPath?.send({ type: 'pong', value: message.value });
        return;
      case 'round-end':
        if (this.multifd) {
          this.holdUntil(this.multifd.roundDone(message.round).then(() => this.env.trace('multifd', 'incoming', `round ${message.round} placed`)));
        }
        return;
      case 'ram-complete':
        return;
      case 'enable-colo':
        if (!this.env.options.caps['x-colo']) throw new Error('ENABLE_COLO came in the migration stream, but the x-colo capability is not set here');
        this.coloEnabled = true;
        return;
      case 'device':
        guest.devices.load(message);
        return;
      case 'postcopy-advise':
        this.postcopy!.advise(message);
        return;
      case 'postcopy-discard':
        this.postcopy!.discard(message, this.streamBlocks);
        return;
      case 'packaged':
        for (const inner of this.postcopy!.unpack(message.data)) this.handlePackaged(inner);
        this.postcopy!.packageLoaded();
        return;
      case 'postcopy-run':
        // After the package, once the source heard it was loaded; again after a recovery when its answer was lost.
        if (!this.postcopy?.isCommitted) throw new Error('POSTCOPY_RUN came before a postcopy package was loaded');
        if (!this.postcopy.isRunning) this.handlePackaged(message);
        return;
      case 'recv-bitmap': {
        if (!this.recovering) throw new Error("unexpected 'recv-bitmap' message outside a postcopy recovery");
        const ram = this.streamBlocks.find((b) => b.name === message.block);
        if (!ram) throw new Error(`The source asked for the received bitmap of RAM block '${message.block}', which the stream does not have`);
        const words = ram.received.words;
        this.returnPath?.send({ type: 'recv-bitmap', block: ram.name, bitmap: new Uint8Array(words.buffer, words.byteOffset, words.byteLength) });
        return;
      }
      case 'postcopy-resume':
        if (!this.recovering) throw new Error("unexpected 'postcopy-resume' message outside a postcopy recovery");
        this.recovering = false;
        this.returnPath?.send({ type: 'resume-ack', value: RESUME_ACK_VALUE });
        this.postcopy!.resume();
        this.watchLiveness();
        this.env.log('postcopy migration resumed');
        this.report({ type: 'postcopy.resumed' });
        return;
      case 'eof': {
        // Requested pages may have come on the preempt channel only: read it to its end first.
        const preempt = this.preempt;
        if (preempt && !preempt.ended && this.postcopy?.isListening) {
          this.queue.unshift(message);
          this.holdUntil(new Promise<void>((resolve) => preempt.whenEnded(resolve)));
          return;
        }
        return this.coloEnabled ? this.startColo() : this.finish();
      }
      default:
        throw new Error(`unexpected '${message.type}' message in the migration stream`);
    }
  }

  /** The postcopy package, in order: LISTEN, PINGs, the devices (postcopy-incoming.ts checked its shape); then RUN. */
  private handlePackaged(message: StreamMessage): void {
    switch (message.type) {
      case 'postcopy-listen':
        this.postcopy!.listen();
        this.watchLiveness();
        this.report({ type: 'postcopy.listen' });
        return;
      case 'postcopy-run':
        this.postcopy!.run();
        this.announceSelf();
        this.handOver();
        return;
      default:
        this.handle(message);
    }
  }

  /**
   * In postcopy-active the source sends something at least every second: a
   * main connection that brings nothing for POSTCOPY_STALL_MS is a stalled
   * link, and postcopy pauses as on a broken one.
   */
  private watchLiveness(): void {
    clearInterval(this.liveness);
    const generation = this.generation;
    let seen = -1;
    let since = Date.now();
    this.liveness = setInterval(() => {
      if (generation !== this.generation || this.done) return clearInterval(this.liveness);
      const bytes = this.decoder?.bytesDecoded ?? 0;
      if (bytes !== seen) {
        seen = bytes;
        since = Date.now();
      } else if (Date.now() - since >= POSTCOPY_STALL_MS) {
        clearInterval(this.liveness);
        this.fail(new Error(`the migration stream stalled: nothing came from the source for ${POSTCOPY_STALL_MS / 1000} s`));
      }
    }, POSTCOPY_KEEPALIVE_MS);
    this.liveness.unref();
  }

  /**
   * qemu_announce_self as process_incoming_migration_bh (and, in postcopy,
   * loadvm_postcopy_handle_run_bh) calls it: once the guest is sure to run
   * here, just before it does, with the announce-* parameters set here.
   */
  private announceSelf(): void {
    this.env.network.migrationAnnounce.start(migrationAnnounceParameters(this.env.options.params));
  }

  /** The guest runs as the source had it: running (unless -S kept autostart off), or paused. */
  private handOver(): void {
    const guest = this.env.guest;
    const sourceRunState = guest.incomingRunState ?? 'running';
    if (sourceRunState === 'running') {
      if (this.env.autostart()) guest.start();
      else guest.setRunState('paused');
    } else {
      guest.setRunState(sourceRunState === 'prelaunch' ? 'prelaunch' : 'paused');
    }
  }

  /**
   * process_incoming_migration_bh: everything is loaded; run the guest as
   * the source had it (in postcopy it runs already, and every page must be in).
   */
  private finish(): void {
    const postcopy = this.postcopy?.isListening === true;
    if (postcopy) this.postcopy!.complete(this.streamBlocks);
    this.done = true;
    this.endTime = Date.now();
    this.multifd?.close();
    clearTimeout(this.channelTimer);
    this.returnPath?.send({ type: 'shut', status: 0 });
    this.returnPath?.close();
    this.preempt?.close();
    this.listener?.close();
    if (!postcopy) {
      this.announceSelf();
      this.handOver();
    }
    this.env.log('incoming migration completed', { runState: this.env.guest.runState });
    this.report({ type: 'load.done' });
  }

  /**
   * x-colo: the stream is loaded and this side becomes the COLO secondary
   * (colo-secondary.ts): the guest runs, the connection stays for the
   * checkpoints, until a failover.
   */
  private startColo(): void {
    clearTimeout(this.channelTimer);
    // Nobody else may connect; the main connection stays for the checkpoints.
    this.listener?.stopListening();
    const env = this.env;
    this.colo = new ColoSecondary({
      guest: env.guest,
      blocks: this.streamBlocks,
      sink: this.sink!,
      returnPath: this.returnPath!,
      network: env.network,
      status: env.colo,
      digests: env.coloDigests,
      announceCheckpoint: (data) => env.announceColoCheckpoint(data),
      log: (message, fields) => env.log(message, fields),
      trace: (from, to, type) => env.trace(from, to, type),
      closeLink: () => {
        this.generation++;
        this.main?.close();
      },
    });
    this.env.log('incoming migration loaded: COLO secondary');
    this.report({ type: 'colo.start' });
    this.colo.start();
  }

  /** x-colo-lost-heartbeat on the secondary: take over from the last checkpoint and run on alone. */
  private async coloFailover(): Promise<void> {
    const colo = this.colo;
    if (!colo || !(await colo.failover())) return;
    this.done = true;
    this.listener?.close();
    this.endTime = Date.now();
    this.report({ type: 'colo.failover' });
    this.env.colo.failedOver();
  }

  /**
   * Once the package is loaded and answered, any failure pauses the
   * migration instead of failing it, as QEMU's load loop does once the
   * guest runs here: the guest keeps running (or, if POSTCOPY_RUN was lost
   * on the way, waits for it), its vCPUs waiting on the pages they miss, and
   * its requests are kept for a recovery. Before that answer the source has
   * not committed the guest here, and keeps it: the migration fails.
   */
  private pause(err: unknown): void {
    const error = err instanceof Error ? err.message : String(err);
    this.done = true;
    this.generation++;
    this.recovering = false;
    this.postcopy!.stop();
    this.multifd?.close();
    this.multifd = undefined;
    this.returnPath?.pause(error);
    this.returnPath = undefined;
    this.main?.close();
    this.main = undefined;
    this.preempt?.close();
    this.preempt = undefined;
    this.listener?.close();
    this.listener = undefined;
    // What the broken connection left half-read goes with it.
    this.queue.length = 0;
    this.held = false;
    this.mainEnded = false;
    clearTimeout(this.channelTimer);
    this.env.log('postcopy migration paused: the stream from the source stopped', { error });
    this.report({ type: 'postcopy.paused', error });
  }

  private fail(err: unknown): void {
    if (this.done) return;
    if (this.postcopy?.isCommitted) return this.pause(err);
    if (this.colo) return this.colo.lost(err);
    this.done = true;
    this.failed = true;
    this.endTime = Date.now();
    this.multifd?.close();
    this.postcopy?.stop();
    this.preempt?.close();
    clearTimeout(this.channelTimer);
    const error = err instanceof Error ? err.message : String(err);
    this.returnPath?.send({ type: 'shut', status: 1, error: error.slice(0, 400) });
    this.returnPath?.close();
    // The source hangs up once it has read why; only then (or after a bound) close.
    this.listener?.stopListening();
    const main = this.main;
    this.quiesced = main
      ? Promise.race([main.closed, new Promise<void>((r) => setTimeout(r, HANG_UP_GRACE_MS))]).then(() => this.listener?.close())
      : Promise.resolve(this.listener?.close());
    this.env.log('incoming migration failed', { error });
    this.report({ type: 'failed', error: `load of migration failed: ${error}` });
  }
}

function layoutOf(blocks: readonly RamBlock[]): { blocks: { pageCount: number }[] } {
  return { blocks: blocks.map((b) => ({ pageCount: b.pageCount })) };
}

/** The destination machine's `incoming` actor, bound to an instance. */
export function incomingActor(env: IncomingEnvironment, created: (m: IncomingMigration) => void) {
  return fromCallback<IncomingActorCommand, IncomingActorInput>(({ input, sendBack, receive }) => {
    const incoming = new IncomingMigration(env, input, (e) => sendBack(e));
    created(incoming);
    receive((cmd) => incoming.command(cmd));
    void incoming.run();
    return () => incoming.dispose();
  });
}
