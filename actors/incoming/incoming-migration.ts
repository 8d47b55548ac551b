/**
 * The destination's `incoming` actor (QEMU's process_incoming_migration):
 * listen, accept the main channel, load the stream — pages straight into
 * guest RAM, then device state — and start the guest only once everything
 * sent before the device state is in place (DESIGN rule 4).
 */
import { fromCallback, type EventObject } from 'xstate';
import type { IncomingActorReport } from '../../machines/events.js';
import type { IncomingActorInput } from '../../machines/destination.js';
import { ChannelKind } from '../../protocols/hello/constants.js';
import type { ChannelHello } from '../../protocols/hello/types.js';
import { StreamDecoder } from '../../protocols/stream/decode.js';
import type { StreamMessage } from '../../protocols/stream/messages.js';
import { IncomingListener, type IncomingConnection, type SocketAddress } from '../../protocols/transport/incoming.js';
import { MULTI_CHANNEL_REQUIRED, parseMigrationUri } from '../../protocols/transport/uri.js';
import type { RamBlock } from '../guest/ram-block.js';
import { MULTIFD_CONNECT_TIMEOUT_MS } from '../multifd/connect-timeout.js';
import { MultifdReceiver } from '../multifd/multifd-receiver.js';
import { GuestSink } from '../ram/guest-sink.js';
import { ReturnPathWriter } from '../return-path/return-path-writer.js';
import { checkHeader } from '../savevm/stream-header.js';
import type { IncomingEnvironment } from './environment.js';

/** How long a failed destination waits for the source to hang up after saying why. */
const HANG_UP_GRACE_MS = 2000;

/** What the destination's query-migrate shows under the livemig extension. */
export interface IncomingInfo {
  socketAddress: SocketAddress[];
  bytes: number;
  pages: number;
  zeroPages: number;
  startTime: number | undefined;
  endTime: number | undefined;
}

export class IncomingMigration {
  private listener: IncomingListener | undefined;
  private main: IncomingConnection | undefined;
  private decoder: StreamDecoder | undefined;
  private sink: GuestSink | undefined;
  private returnPath: ReturnPathWriter | undefined;
  private multifd: MultifdReceiver | undefined;
  private channelsReady: Promise<void> = Promise.resolve();
  private channelTimer: NodeJS.Timeout | undefined;
  /** Control messages not yet handled, and whether a multifd round holds them. */
  private readonly queue: StreamMessage[] = [];
  private held = false;
  private mainEnded = false;
  private failed = false;
  private done = false;
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
    return {
      socketAddress: this.listener?.socketAddresses() ?? [],
      bytes: (this.decoder?.bytesDecoded ?? 0) + (this.multifd?.bytes ?? 0),
      pages: (this.sink?.pageCount ?? 0) + (this.multifd?.pages ?? 0),
      zeroPages: (this.sink?.zeroPageCount ?? 0) + (this.multifd?.zeroPages ?? 0),
      startTime: this.startTime,
      endTime: this.endTime,
    };
  }

  async run(): Promise<void> {
    try {
      this.listener =
        this.env.takeListener() ?? (await IncomingListener.listen(parseMigrationUri(this.input.uri, { direction: 'incoming' })));
    } catch (err) {
      return this.fail(err);
    }
    if (this.done) return this.listener.close();
    // Accept at once; reading waits until the multifd channels listen.
    this.listener.on('connection', (c) => void this.accept(c));
    if (this.env.options.caps.multifd) {
      this.channelsReady = this.startMultifd().then((m) => {
        this.multifd = m;
      });
      this.channelsReady.catch((err) => this.fail(err));
    }
    this.listener.on('error', (err) => this.fail(err));
    this.env.log('incoming migration listening', { addresses: this.listener.socketAddresses() });
  }

  /**
   * The statechart left the running states. After a failure the connection
   * is left to close on its own bounded schedule (see fail); otherwise
   * everything closes now.
   */
  dispose(): void {
    if (this.failed) return;
    this.done = true;
    this.listener?.close();
    this.multifd?.close();
    clearTimeout(this.channelTimer);
  }

  /** One worker and listener per multifd channel, on the main listener's host (or beside its unix socket). */
  private async startMultifd(): Promise<MultifdReceiver> {
    const address = this.listener!.socketAddresses()[0];
    if (!address) throw new Error(MULTI_CHANNEL_REQUIRED);
    const params = this.env.options.params;
    return MultifdReceiver.start({
      workers: this.env.multifdRecvWorkers(params['multifd-channels']),
      listen: address.type === 'inet' ? { host: address.host } : { unixBase: address.path },
      blocks: this.env.guest.blocks,
      compression: params['multifd-compression'],
      uuid: this.env.uuid,
      onError: (message) => this.fail(new Error(message)),
    });
  }

  private async accept(connection: IncomingConnection): Promise<void> {
    if (this.main || this.done) {
      // Only one main channel per incoming migration.
      connection.close();
      return;
    }
    this.main = connection;
    this.returnPath = new ReturnPathWriter(() => connection.reverse, (type) => this.env.trace('incoming', 'return-path', type));
    this.listener!.stopListening();
    try {
      await this.channelsReady;
    } catch {
      return;
    }
    if (this.done) return;
    this.sink = new GuestSink([]);
    this.decoder = new StreamDecoder({
      sink: this.sink,
      onHello: (hello) => this.onHello(hello),
      onMessage: (message) => this.onMessage(message),
    });
    connection.read(this.decoder, {
      data: () => {
        if (this.done) return;
        this.startTime = Date.now();
        this.report({ type: 'stream.arrived' });
      },
      end: () => {
        if (this.done) return;
        try {
          this.decoder!.end();
        } catch (err) {
          return this.fail(err);
        }
        // Messages held behind a multifd round may still hold the EOF.
        this.mainEnded = true;
        this.pump();
      },
      error: (err) => this.fail(err),
    });
  }

  private onHello(hello: ChannelHello): void {
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

  private handle(message: StreamMessage): void {
    const guest = this.env.guest;
    switch (message.type) {
      case 'header': {
        const problem = checkHeader(message, guest, this.env.uuid);
        if (problem) throw new Error(problem);
        const multifd = message.capabilities.includes('multifd');
        if (multifd !== Boolean(this.multifd)) {
          throw new Error(`Capability multifd is ${this.multifd ? 'on' : 'off'}, but received capability is ${multifd ? 'on' : 'off'}`);
        }
        const blocks = message.blocks.map((b) => guest.block(b.name)!);
        this.sink!.setBlocks(blocks);
        this.decoder!.setLayout({ blocks: blocks.map((b: RamBlock) => ({ pageCount: b.pageCount })) });
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
        return;
      case 'ping':
        this.returnPath?.send({ type: 'pong', value: message.value });
        return;
      case 'round-end':
        if (this.multifd) {
          this.held = true;
          this.multifd.roundDone(message.round).then(() => {
            this.env.trace('multifd', 'incoming', `round ${message.round} placed`);
            this.held = false;
            this.pump();
          });
        }
        return;
      case 'ram-complete':
        return;
      case 'device':
        guest.devices.load(message);
        return;
      case 'eof':
        return this.finish();
      default:
        throw new Error(`unexpected '${message.type}' message in a precopy stream`);
    }
  }

  /** process_incoming_migration_bh: everything is loaded; run the guest as the source had it. */
  private finish(): void {
    this.done = true;
    this.endTime = Date.now();
    this.multifd?.close();
    clearTimeout(this.channelTimer);
    this.returnPath?.send({ type: 'shut', status: 0 });
    this.returnPath?.close();
    this.listener?.close();
    const guest = this.env.guest;
    const sourceRunState = guest.incomingRunState ?? 'running';
    if (sourceRunState === 'running') {
      if (this.env.autostart()) guest.start();
      else guest.setRunState('paused');
    } else {
      guest.setRunState(sourceRunState === 'prelaunch' ? 'prelaunch' : 'paused');
    }
    this.env.log('incoming migration completed', { runState: guest.runState });
    this.report({ type: 'load.done' });
  }

  private fail(err: unknown): void {
    if (this.done) return;
    this.done = true;
    this.failed = true;
    this.endTime = Date.now();
    this.multifd?.close();
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

/** The destination machine's `incoming` actor, bound to an instance. */
export function incomingActor(env: IncomingEnvironment, created: (m: IncomingMigration) => void) {
  return fromCallback<EventObject, IncomingActorInput>(({ input, sendBack }) => {
    const incoming = new IncomingMigration(env, input, (e) => sendBack(e));
    created(incoming);
    void incoming.run();
    return () => incoming.dispose();
  });
}
