import { spawn } from 'node:child_process';
import { createReadStream, fstatSync } from 'node:fs';
import { unlink } from 'node:fs/promises';
import net from 'node:net';
import { EventEmitter } from 'node:events';
import type { Readable, Writable } from 'node:stream';
import { TransportError, childExit } from './outgoing.js';
import type { MigrationUri } from './uri.js';

/** One accepted connection (or the one-way stream of file:, exec:, fd:). */
export interface IncomingConnection {
  readonly source: Readable;
  /** The way back (return path); undefined on one-way transports. */
  readonly reverse: Writable | undefined;
  /** A socket the caller may re-wrap for zero-copy reads. */
  readonly socket: net.Socket | undefined;
  close(): void;
}

/** QMP's SocketAddress, as query-migrate's socket-address shows it. */
export type SocketAddress =
  | { type: 'inet'; host: string; port: string }
  | { type: 'unix'; path: string };

interface ListenerEvents {
  connection: [IncomingConnection];
  error: [Error];
}

/**
 * The destination's end of a transport (QEMU's *_start_incoming_migration):
 * for sockets a listener that accepts the main channel and any further
 * channels; for file:, exec: and fd: exactly one one-way connection.
 */
export class IncomingListener extends EventEmitter<ListenerEvents> {
  private server: net.Server | undefined;
  private readonly open = new Set<IncomingConnection>();
  private unixPath: string | undefined;
  private exited: Promise<void> | undefined;
  private closed = false;

  private constructor(readonly uri: MigrationUri) {
    super();
  }

  static async listen(uri: MigrationUri): Promise<IncomingListener> {
    const listener = new IncomingListener(uri);
    await listener.start();
    return listener;
  }

  /** The bound addresses (tcp: the real port when asked for port 0). */
  socketAddresses(): SocketAddress[] {
    const addr = this.server?.address();
    if (!addr) return [];
    if (typeof addr === 'string') return [{ type: 'unix', path: addr }];
    return [{ type: 'inet', host: addr.address, port: String(addr.port) }];
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
    for (const c of this.open) c.close();
    this.open.clear();
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
        const stream = createReadStream(uri.path, { start: uri.offset, highWaterMark: 4 << 20 });
        await new Promise<void>((resolve, reject) => {
          stream.once('open', () => resolve());
          stream.once('error', (err) => reject(new TransportError('CONNECT', `Failed to open file '${uri.path}': ${err.message}`)));
        });
        return this.deliverLater(oneWay(stream));
      }
      case 'exec': {
        const child = spawn('/bin/sh', ['-c', uri.command], { stdio: ['ignore', 'pipe', 'inherit'] });
        this.exited = childExit(child, uri.command);
        this.exited.catch(() => {});
        return this.deliverLater({ source: child.stdout!, reverse: undefined, socket: undefined, close: () => child.kill('SIGKILL') });
      }
      case 'fd': {
        let isSocket: boolean;
        try {
          isSocket = fstatSync(uri.fd).isSocket();
        } catch (err) {
          throw new TransportError('BAD_FD', `File descriptor ${uri.fd} is not usable: ${(err as Error).message}`);
        }
        const socket = new net.Socket({ fd: uri.fd, readable: true, writable: isSocket });
        return this.deliverLater(isSocket ? fromSocket(socket) : oneWay(socket));
      }
    }
  }

  private startServer(uri: MigrationUri & { scheme: 'tcp' | 'unix' }): Promise<void> {
    const server = net.createServer({ noDelay: true }, (socket) => {
      if (this.closed) return void socket.destroy();
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
        resolve();
      };
      if (uri.scheme === 'tcp') server.listen({ host: uri.host, port: uri.port }, ready);
      else {
        this.unixPath = uri.path;
        server.listen({ path: uri.path }, ready);
      }
    });
  }

  /** One-way transports have their only connection at once; hand it over after listen() returns. */
  private deliverLater(connection: IncomingConnection): void {
    this.open.add(connection);
    setImmediate(() => this.emit('connection', connection));
  }
}

function fromSocket(socket: net.Socket): IncomingConnection {
  return { source: socket, reverse: socket, socket, close: () => socket.destroy() };
}

function oneWay(stream: Readable): IncomingConnection {
  return { source: stream, reverse: undefined, socket: undefined, close: () => stream.destroy() };
}

function describe(uri: MigrationUri & { scheme: 'tcp' | 'unix' }): string {
  return uri.scheme === 'tcp' ? `${uri.host}:${uri.port}` : uri.path;
}
