/**
 * The destination's `incoming` actor (QEMU's process_incoming_migration):
 * listen, accept the main channel, load the stream — pages straight into
 * guest RAM, then device state — and start the guest only once everything
 * sent before the device state is in place (DESIGN rule 4).
 */
import { fromCallback, type EventObject } from 'xstate';
import type { IncomingActorReport } from '../../machines/events.js';
import type { IncomingActorInput } from '../../machines/destination.js';
import { encodeReturnPath } from '../../protocols/return-path/encode.js';
import type { ReturnPathMessage } from '../../protocols/return-path/messages.js';
import { ChannelKind } from '../../protocols/stream/constants.js';
import { StreamDecoder } from '../../protocols/stream/decode.js';
import type { ChannelHello } from '../../protocols/stream/types.js';
import type { StreamMessage } from '../../protocols/stream/messages.js';
import { IncomingListener, type IncomingConnection, type SocketAddress } from '../../protocols/transport/incoming.js';
import { parseMigrationUri } from '../../protocols/transport/uri.js';
import type { RamBlock } from '../guest/ram-block.js';
import type { MigrationEnvironment } from './environment.js';
import { GuestSink } from './guest-sink.js';
import { checkHeader } from './stream-header.js';

export interface IncomingEnvironment extends MigrationEnvironment {
  /** False with -S (until `cont` during inmigrate sets it): the guest then stays paused. */
  autostart(): boolean;
  /** The listener migrate-incoming already opened (undefined: open it here). */
  takeListener(): IncomingListener | undefined;
}

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
  private returnPathOpen = false;
  private done = false;
  startTime: number | undefined;
  endTime: number | undefined;

  constructor(
    private readonly env: IncomingEnvironment,
    private readonly input: IncomingActorInput,
    private readonly report: (event: IncomingActorReport) => void,
  ) {}

  info(): IncomingInfo {
    return {
      socketAddress: this.listener?.socketAddresses() ?? [],
      bytes: this.decoder?.bytesDecoded ?? 0,
      pages: this.sink?.pageCount ?? 0,
      zeroPages: this.sink?.zeroPageCount ?? 0,
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
    this.listener.on('connection', (c) => this.accept(c));
    this.listener.on('error', (err) => this.fail(err));
    this.env.log('incoming migration listening', { addresses: this.listener.socketAddresses() });
  }

  dispose(): void {
    this.done = true;
    this.listener?.close();
  }

  private accept(connection: IncomingConnection): void {
    if (this.main || this.done) {
      // Only one main channel per incoming migration.
      connection.close();
      return;
    }
    this.main = connection;
    this.listener!.stopListening();
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
        this.fail(new Error('the migration stream ended before its EOF'));
      },
      error: (err) => this.fail(err),
    });
  }

  private onHello(hello: ChannelHello): void {
    if (hello.kind !== ChannelKind.MAIN) throw new Error(`expected the main channel first, got channel kind ${hello.kind}`);
  }

  private onMessage(message: StreamMessage): void {
    const guest = this.env.guest;
    switch (message.type) {
      case 'header': {
        const problem = checkHeader(message, guest, this.env.uuid);
        if (problem) throw new Error(problem);
        const blocks = message.blocks.map((b) => guest.block(b.name)!);
        this.sink!.setBlocks(blocks);
        this.decoder!.setLayout({ blocks: blocks.map((b: RamBlock) => ({ pageCount: b.pageCount })) });
        return;
      }
      case 'open-return-path':
        if (!this.main!.reverse) throw new Error('the source asked for a return path on a one-way channel');
        this.returnPathOpen = true;
        return;
      case 'ping':
        this.send({ type: 'pong', value: message.value });
        return;
      case 'round-end':
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
    this.send({ type: 'shut', status: 0 });
    this.main?.reverse?.end();
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
    this.endTime = Date.now();
    const error = err instanceof Error ? err.message : String(err);
    this.send({ type: 'shut', status: 1, error: error.slice(0, 400) });
    this.main?.reverse?.end();
    this.listener?.close();
    this.env.log('incoming migration failed', { error });
    this.report({ type: 'failed', error: `load of migration failed: ${error}` });
  }

  private send(message: ReturnPathMessage): void {
    const reverse = this.main?.reverse;
    if (!this.returnPathOpen || !reverse || reverse.destroyed) return;
    reverse.write(encodeReturnPath(message));
    this.env.trace('incoming', 'return-path', message.type);
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
