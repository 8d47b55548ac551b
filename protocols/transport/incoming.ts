import { spawn } from 'node:child_process';
import { createReadStream } from 'node:fs';
import { unlink } from 'node:fs/promises';
import net from 'node:net';
import { EventEmitter } from 'node:events';
import { Duplex, type Readable, type Writable } from 'node:stream';
import { childExit, oneWayTls } from './outgoing.js';
import { TransportError } from './transport-error.js';
import { secureServer, type TlsServer } from '../tls/session.js';
import type { MigrationUri } from './uri.js';
import { descriptorKind, type DescriptorPaths } from './descriptor-paths.js';

/**
 * Where incoming bytes go: `want()` names the memory the next bytes must land
 * in (for page data, a view into guest RAM), `commit(n)` says n arrived
 * there. The stream decoder is one.
 */
export interface ByteConsumer {
  /** `readAhead` false: the bytes are in memory already (a chunk), so a read ahead would only add a copy (pull-decoder.ts). */
  want(readAhead?: boolean): Uint8Array;
  /** Returning false pauses reading until the connection's resume(). */
  commit(n: number): void | boolean;
}

export interface ReadHandlers {
  /** The first bytes arrived. */
  data?(): void;
  /** The peer ended the stream. */
  end(): void;
  /** The transport failed, or the consumer threw (bad input: its error as it threw it). */
  error(err: Error): void;
}

/** One accepted connection (or the one-way stream of file:, exec:, fd:). */
export interface IncomingConnection {
  /**
   * Starts delivering bytes to `consumer`. On sockets the kernel copies
   * straight into the views `want()` returns (net.Socket's onread), which
   * are guest memory for long page runs; other transports copy each chunk in.
   */
  read(consumer: ByteConsumer, handlers: ReadHandlers): void;
  /** Reads on after the consumer paused it. */
  resume(): void;
  /** The way back (return path), once reading started; undefined on one-way transports. */
  readonly reverse: Writable | undefined;
  /** Resolves once the peer has hung up (or the connection was closed). */
  readonly closed: Promise<void>;
  close(): void;
}

/** How long a refused TLS client's connection stays for the refusal to reach it. */
const VERDICT_LINGER_MS = 1000;

/** QMP's SocketAddress, as query-migrate's socket-address shows it (QEMU flags the address family). */
export type SocketAddress =
  | { type: 'inet'; host: string; port: string; ipv4?: true; ipv6?: true }
  | { type: 'unix'; path: string };

interface ListenerEvents {
  connection: [IncomingConnection];
  /** A connection's TLS handshake or check of the client failed: why, in words for error-desc. */
  rejected: [Error];
  error: [Error];
}

export interface ListenOptions {
  /** tls-creds set: each connection is TLS, and is only handed over once the client passed its checks. */
  tls?: TlsServer;
  /** Opens `file:` paths that name a handed-over descriptor (`/dev/fdset/N`). */
  descriptorPaths?: DescriptorPaths;
}

/**
 * The destination's end of a transport (QEMU's *_start_incoming_migration):
 * for sockets a listener that accepts the main channel and any further
 * channels; for file:, exec: and fd: exactly one one-way connection.
 */
export class IncomingListener extends EventEmitter<ListenerEvents> {
  private server: net.Server | undefined;
  private readonly open = new Set<IncomingConnection>();
  /** Connections still in their TLS handshake. */
  private readonly handshakes = new Set<{ close(): void }>();
  private unixPath: string | undefined;
  private exited: Promise<void> | undefined;
  private closed = false;

  private constructor(
    readonly uri: MigrationUri,
    private readonly tls: TlsServer | undefined,
    private readonly descriptorPaths: DescriptorPaths | undefined,
  ) {
    super();
  }

  static async listen(uri: MigrationUri, options: ListenOptions = {}): Promise<IncomingListener> {
    const listener = new IncomingListener(uri, options.tls, options.descriptorPaths);
    await listener.start();
    return listener;
  }

  /**
   * The bound addresses (tcp: the real port when asked for port 0), kept
   * after listening stops: QEMU shows them until the migration is over.
   */
  socketAddresses(): SocketAddress[] {
    return this.bound;
  }

  private bound: SocketAddress[] = [];

  private rememberAddress(): void {
    const addr = this.server?.address();
    if (!addr) return;
    if (typeof addr === 'string') this.bound = [{ type: 'unix', path: addr }];
    else this.bound = [{ type: 'inet', host: addr.address, port: String(addr.port), ...(addr.family === 'IPv6' ? { ipv6: true as const } : { ipv4: true as const }) }];
  }

  /** Stops accepting; connections already accepted stay open until closed. */
  stopListening(): void {
    this.server?.close();
    if (this.unixPath) unlink(this.unixPath).catch(() => {});
    this.unixPath = undefined;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.stopListening();
    for (const c of [...this.open, ...this.handshakes]) c.close();
    this.open.clear();
    this.handshakes.clear();
  }

  /** exec: the command's exit status, which must be 0 once its output has been read. */
  exitStatus(): Promise<void> {
    return this.exited ?? Promise.resolve();
  }

  private async start(): Promise<void> {
    const uri = this.uri;
    switch (uri.scheme) {
      case 'tcp':
      case 'unix':
        return this.startServer(uri);
      case 'file': {
        if (this.tls) throw oneWayTls('file:');
        const handed = this.descriptorPaths?.(uri.path, 'incoming');
        if (handed) {
          const stream = createReadStream('', { fd: handed.fd, start: uri.offset, highWaterMark: 4 << 20 });
          stream.once('close', handed.release);
          return this.deliverLater(oneWay(stream));
        }
        const stream = createReadStream(uri.path, { start: uri.offset, highWaterMark: 4 << 20 });
        await new Promise<void>((resolve, reject) => {
          stream.once('open', () => resolve());
          stream.once('error', (err) => reject(new TransportError('CONNECT', `Failed to open file '${uri.path}': ${err.message}`)));
        });
        return this.deliverLater(oneWay(stream));
      }
      case 'exec': {
        // With TLS the command's stdout and stdin are the channel's two ways (QEMU's exec channel is two-way).
        const child = spawn('/bin/sh', ['-c', uri.command], { stdio: [this.tls ? 'pipe' : 'ignore', 'pipe', 'inherit'] });
        this.exited = childExit(child, uri.command);
        this.exited.catch(() => {});
        const kill = () => child.kill('SIGKILL');
        if (this.tls) return this.secureLater(Duplex.from({ readable: child.stdout!, writable: child.stdin! }), kill);
        return this.deliverLater({ ...oneWay(child.stdout!), close: kill });
      }
      case 'fd': {
        // The descriptor is now the migration's: a socket, a pipe, or a regular file read from its current offset.
        const kind = descriptorKind(uri.fd, 'incoming');
        if (this.tls && kind !== 'socket') throw oneWayTls(`fd:${uri.fd}, which is not a socket`);
        if (kind === 'file') return this.deliverLater(oneWay(createReadStream('', { fd: uri.fd, highWaterMark: 4 << 20 })));
        const socket = new net.Socket({ fd: uri.fd, readable: true, writable: kind === 'socket' });
        socket.pause();
        if (this.tls) return this.secureLater(socket, () => socket.destroy());
        return this.deliverLater(kind === 'socket' ? fromSocket(socket) : oneWay(socket));
      }
    }
  }

  private startServer(uri: MigrationUri & { scheme: 'tcp' | 'unix' }): Promise<void> {
    // Paused on connect: nothing is read until the socket is re-wrapped with onread.
    const server = net.createServer({ noDelay: true, pauseOnConnect: true }, (socket) => {
      if (this.closed) return void socket.destroy();
      if (this.tls) return this.secure(socket, () => socket.destroy());
      const connection = fromSocket(socket);
      this.open.add(connection);
      socket.once('close', () => this.open.delete(connection));
      this.emit('connection', connection);
    });
    this.server = server;
    return new Promise((resolve, reject) => {
      server.once('error', (err) => reject(new TransportError('CONNECT', `Failed to listen on '${describe(uri)}': ${err.message}`)));
      const ready = () => {
        server.on('error', (err) => this.emit('error', err));
        this.rememberAddress();
        resolve();
      };
      if (uri.scheme === 'tcp') server.listen({ host: uri.host, port: uri.port }, ready);
      else {
        this.unixPath = uri.path;
        server.listen({ path: uri.path }, ready);
      }
    });
  }

  /**
   * The TLS handshake and checks on an accepted socket (or exec:'s pipes);
   * the connection is handed over only if the client passed. `drop` ends
   * what is underneath, should the listener close meanwhile.
   */
  private secure(raw: Duplex, drop: () => void): void {
    const pending = { close: drop };
    this.handshakes.add(pending);
    secureServer(raw, this.tls!).then(
      (secure) => {
        this.handshakes.delete(pending);
        if (this.closed) return void secure.destroy();
        const connection = { ...streamConnection(secure, secure), close: () => closeEnded(secure, () => {
          secure.destroy();
          drop();
        }) };
        this.open.add(connection);
        secure.once('close', () => this.open.delete(connection));
        this.emit('connection', connection);
      },
      (err: Error) => {
        this.handshakes.delete(pending);
        // Not at once: a refused client is still being told so (secureServer ends that session itself).
        setTimeout(drop, VERDICT_LINGER_MS).unref();
        if (!this.closed) this.emit('rejected', err);
      },
    );
  }

  /** A one-way transport's only connection, made TLS: after listen() returns, as deliverLater. */
  private secureLater(raw: Duplex, drop: () => void): void {
    setImmediate(() => this.secure(raw, drop));
  }

  /** One-way transports have their only connection at once; hand it over after listen() returns. */
  private deliverLater(connection: IncomingConnection): void {
    this.open.add(connection);
    setImmediate(() => this.emit('connection', connection));
  }
}

/** How long a connection whose sending side was ended may take to deliver what it holds before it is destroyed. */
const ENDED_LINGER_MS = 1_000;

/**
 * Closes a TLS connection: at once, unless its sending side was ended (the
 * return path after SHUT). TLS records still queued behind an end would be
 * thrown away by destroy(), and the source would read an end with no SHUT;
 * so such a connection closes once the peer hangs up, or after ENDED_LINGER_MS.
 */
function closeEnded(secure: Duplex, destroy: () => void): void {
  if (secure.destroyed || !secure.writableEnded) return destroy();
  const timer = setTimeout(destroy, ENDED_LINGER_MS);
  secure.once('close', () => {
    clearTimeout(timer);
    destroy();
  });
}

/**
 * A socket read with `onread`, so page bytes land where the consumer wants
 * them with no copy in user space, short runs apart (measured here: 4.0–4.2
 * GB/s against 1.4 with 'data' events and a copy). Node 20's net.Server cannot give an
 * accepted socket `onread`, so the paused socket's handle is moved into a new
 * net.Socket that has it — Socket's documented-by-code `handle` option.
 */
const SCRATCH = new Uint8Array(4096);

function fromSocket(accepted: net.Socket): IncomingConnection {
  let socket: net.Socket = accepted;
  let hungUp!: () => void;
  const closed = new Promise<void>((resolve) => (hungUp = resolve));
  return {
    closed,
    get reverse() {
      return socket;
    },
    read(consumer, handlers) {
      const handle = (accepted as unknown as { _handle: unknown })._handle;
      if (!handle) return handlers.error(new Error('the migration connection closed before it was read'));
      (accepted as unknown as { _handle: unknown })._handle = null;
      let first = true;
      let broken = false;
      // After a consumer error the socket stays open and what still arrives
      // is read and dropped: closing with unread data makes the kernel send
      // a reset, which would throw away the reason the return path carries.
      const fail = (err: unknown) => {
        if (broken) return;
        broken = true;
        handlers.error(err as Error);
      };
      // `handle` is not in @types/node's SocketConstructorOpts, but net.Socket takes it.
      socket = new net.Socket({
        handle,
        readable: true,
        writable: true,
        // The source half-closes after its last byte and waits for SHUT:
        // our sending side must outlive its end.
        allowHalfOpen: true,
        onread: {
          // After a failure libuv may still ask for a buffer before the
          // destroy lands: hand it scratch space rather than throw.
          buffer: () => {
            if (broken) return SCRATCH;
            try {
              return consumer.want();
            } catch (err) {
              fail(err);
              return SCRATCH;
            }
          },
          callback: (n: number) => {
            if (broken) return true;
            if (first) {
              first = false;
              handlers.data?.();
            }
            try {
              // false pauses the socket (Node's onread contract) until resume().
              return consumer.commit(n) !== false;
            } catch (err) {
              fail(err);
              return true;
            }
          },
        },
      } as net.SocketConstructorOpts);
      socket.once('end', () => {
        hungUp();
        if (!broken) handlers.end();
      });
      socket.once('close', () => hungUp());
      socket.once('error', (err) => {
        hungUp();
        if (!broken) handlers.error(channelFailed(err));
      });
      socket.resume();
    },
    resume: () => socket.resume(),
    close: () => {
      socket.destroy();
      accepted.destroy();
      hungUp();
    },
  };
}

/** A one-way stream (file:, exec:, fd: on a pipe): each chunk is copied into place. */
function oneWay(stream: Readable): IncomingConnection {
  return streamConnection(stream, undefined);
}

/**
 * A stream read with a copy of each chunk into place: one-way transports,
 * and TLS, whose bytes are decrypted in user space anyway.
 */
function streamConnection(stream: Readable, reverse: Writable | undefined): IncomingConnection {
  let consumer: ByteConsumer | undefined;
  let handlers: ReadHandlers | undefined;
  /** What is left of a chunk when the consumer paused in the middle of it. */
  let leftover: Buffer | undefined;
  const deliver = (chunk: Buffer): void => {
    try {
      for (let at = 0; at < chunk.length; ) {
        const into = consumer!.want(false);
        const n = Math.min(into.length, chunk.length - at);
        into.set(chunk.subarray(at, at + n));
        at += n;
        if (consumer!.commit(n) === false) {
          leftover = at < chunk.length ? chunk.subarray(at) : undefined;
          stream.pause();
          return;
        }
      }
    } catch (err) {
      handlers!.error(err as Error);
      stream.destroy();
    }
  };
  const closed = new Promise<void>((resolve) => stream.once('close', () => resolve()));
  return {
    closed,
    reverse,
    read(c, h) {
      consumer = c;
      handlers = h;
      let first = true;
      stream.on('data', (chunk: Buffer) => {
        if (first) {
          first = false;
          h.data?.();
        }
        deliver(chunk);
      });
      stream.once('end', () => h.end());
      stream.once('error', (err) => h.error(channelFailed(err)));
      stream.resume();
    },
    resume() {
      const rest = leftover;
      leftover = undefined;
      if (rest) deliver(rest);
      if (!leftover) stream.resume();
    },
    close: () => stream.destroy(),
  };
}

function describe(uri: MigrationUri & { scheme: 'tcp' | 'unix' }): string {
  return uri.scheme === 'tcp' ? `${uri.host}:${uri.port}` : uri.path;
}

function channelFailed(err: Error): Error {
  return new TransportError('IO', `the migration channel failed: ${err.message}`);
}
