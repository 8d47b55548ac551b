import { spawn, type ChildProcess } from 'node:child_process';
import fs, { constants as fsc, promises as fsp } from 'node:fs';
import { promisify } from 'node:util';
import { accessMode as accessModeOf, fdPassingMissing } from '../fd-passing.js';
import net from 'node:net';
import { Duplex, Writable, type Readable } from 'node:stream';
import { once } from 'node:events';
import { secureClient, type TlsClient } from '../tls/session.js';
import type { MigrationUri } from './uri.js';
import { TransportError } from './transport-error.js';
import { descriptorKind, type DescriptorPaths } from './descriptor-paths.js';

/**
 * The source's end of the main migration channel, whatever the transport:
 * a byte sink with backpressure, plus the reverse direction (the return
 * path) where the transport has one.
 */
export interface OutgoingChannel {
  readonly sink: Writable;
  /** The destination's direction of a socket; undefined on one-way transports. */
  readonly reverse: Readable | undefined;
  /** Flushes everything written and closes the sending side; rejects if the transport failed. */
  finish(): Promise<void>;
  /** Tears the channel down at once (cancel, failure). */
  abort(): void;
}


/** Why a migration's channels went when the orchestrator yanked them (QMP yank). */
export const YANKED = 'Migration channels shut down by yank';

/** A listening peer answers at once; this only bounds a lost SYN or an unreachable host. */
export const CONNECT_TIMEOUT_MS = 10_000;

export interface OutgoingOptions {
  connectTimeoutMs?: number;
  /** tls-creds set: the channel is TLS, as the destination's must be. */
  tls?: TlsClient;
  /** Opens `file:` paths that name a handed-over descriptor (`/dev/fdset/N`). */
  descriptorPaths?: DescriptorPaths;
}

/** Opens the source side of `uri` (QEMU's *_start_outgoing_migration, then its TLS upgrade). */
export async function openOutgoing(uri: MigrationUri, options: OutgoingOptions = {}): Promise<OutgoingChannel> {
  const { tls } = options;
  switch (uri.scheme) {
    case 'tcp':
    case 'unix':
      return socketChannel(await connectChannel(uri, options.connectTimeoutMs ?? CONNECT_TIMEOUT_MS, tls));
    case 'file':
      if (tls) throw oneWayTls('file:');
      return fileChannel(uri.path, uri.offset, options.descriptorPaths);
    case 'exec':
      return tls ? secureExecChannel(uri.command, tls) : execChannel(uri.command);
    case 'fd':
      return fdChannel(uri.fd, tls);
  }
}

/** TLS needs answers from the peer: a file or a pipe cannot give any (QEMU's handshake fails on them too). */
export function oneWayTls(what: string): TransportError {
  return new TransportError('CONNECT', `TLS cannot run over ${what}, as a TLS handshake needs a two-way channel: use tcp:, unix:, exec: or fd: on a socket, or leave tls-creds empty`);
}

/**
 * What a migration channel (socket or file) may hold queued in user space
 * before a write reports backpressure. Node's 16 KiB default made the sender wait for a
 * full flush after every frame, leaving the socket idle while the next one
 * was made; 8 MiB (two 4 MiB frames) keeps it fed (measured ~10 % faster
 * here, with 1 MiB frames then).
 */
const WRITE_BUFFER = 8 << 20;

/** Connects a socket for `uri`; used for the main channel and every multifd channel. */
export function connect(uri: MigrationUri & { scheme: 'tcp' | 'unix' }, timeoutMs: number): Promise<net.Socket> {
  // tcp::PORT: QEMU resolves the empty host and fails; Node would connect to localhost.
  if (uri.scheme === 'tcp' && uri.host === '') {
    return Promise.reject(new TransportError('CONNECT', `address resolution failed for :${uri.port}: Name or service not known`));
  }
  return new Promise((resolve, reject) => {
    const where = uri.scheme === 'tcp' ? `${uri.host}:${uri.port}` : uri.path;
    const buffer = { writableHighWaterMark: WRITE_BUFFER };
    const socket = uri.scheme === 'tcp' ? net.connect({ host: uri.host, port: uri.port, ...buffer }) : net.connect({ path: uri.path, ...buffer });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new TransportError('CONNECT', `Failed to connect to '${where}': timed out after ${timeoutMs} ms`));
    }, timeoutMs);
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.setNoDelay(true);
      resolve(socket);
    });
    socket.once('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      reject(new TransportError('CONNECT', `Failed to connect to '${where}': ${err.message}`));
    });
  });
}

/** connect(), then the TLS handshake when `tls` is given: every channel of a TLS migration is TLS. */
export async function connectChannel(uri: MigrationUri & { scheme: 'tcp' | 'unix' }, timeoutMs: number, tls: TlsClient | undefined): Promise<net.Socket> {
  const socket = await connect(uri, timeoutMs);
  return tls ? upgrade(socket, tls) : socket;
}

/** The TLS handshake over `raw`; on failure `raw` goes, and the error is the handshake's. */
async function upgrade(raw: Duplex, tls: TlsClient): Promise<net.Socket> {
  try {
    return await secureClient(raw, tls);
  } catch (err) {
    raw.destroy();
    throw new TransportError('CONNECT', (err as Error).message);
  }
}

function socketChannel(socket: net.Socket): OutgoingChannel {
  return {
    sink: socket,
    reverse: socket,
    finish: () => finishWritable(socket),
    abort: () => socket.destroy(),
  };
}

/** file:PATH,offset=N: write from the offset; bytes before it stay as they were. */
/** What fileChannel writes through: an opened FileHandle, or a handed-over descriptor. */
interface PositionalFile {
  write(buffer: Buffer, offset: number, length: number, position: number): Promise<{ bytesWritten: number }>;
  truncate(length: number): Promise<void>;
  close(): Promise<void>;
}

/** A descriptor as a PositionalFile; `close` also gives it back to whoever handed it over. */
function descriptorFile(fd: number, release: () => void): PositionalFile {
  return {
    write: (buffer, offset, length, position) => promisify(fs.write)(fd, buffer, offset, length, position),
    truncate: (length) => promisify(fs.ftruncate)(fd, length),
    close: () => promisify(fs.close)(fd).finally(release),
  };
}

async function fileChannel(path: string, offset: number, descriptorPaths: DescriptorPaths | undefined): Promise<OutgoingChannel> {
  let handle: PositionalFile;
  try {
    const handed = descriptorPaths?.(path, 'outgoing');
    // Created if missing, never truncated on open: bytes before the offset are kept.
    handle = handed ? descriptorFile(handed.fd, handed.release) : await fsp.open(path, fsc.O_CREAT | fsc.O_WRONLY);
  } catch (err) {
    if (err instanceof TransportError) throw err;
    throw new TransportError('CONNECT', `Failed to open file '${path}': ${(err as Error).message}`);
  }
  let position = offset;
  let closed = false;
  const sink = new Writable({
    highWaterMark: WRITE_BUFFER,
    write(chunk: Buffer, _enc, done) {
      handle.write(chunk, 0, chunk.length, position).then(({ bytesWritten }) => {
        position += bytesWritten;
        done();
      }, done);
    },
    final(done) {
      // Cut off whatever an earlier, longer stream left after ours.
      handle.truncate(position).then(() => handle.close()).then(() => {
        closed = true;
        done();
      }, done);
    },
  });
  return {
    sink,
    reverse: undefined,
    finish: () => finishWritable(sink),
    abort: () => {
      sink.destroy();
      if (!closed) handle.close().catch(() => {});
    },
  };
}

/** exec:CMD: the stream goes to the command's stdin; a non-zero exit fails the migration. */
function execChannel(command: string): OutgoingChannel {
  const child = spawn('/bin/sh', ['-c', command], { stdio: ['pipe', 'ignore', 'inherit'] });
  const exited = childExit(child, command);
  return {
    sink: child.stdin!,
    reverse: undefined,
    finish: async () => {
      await finishWritable(child.stdin!);
      await exited;
    },
    abort: () => {
      child.stdin!.destroy();
      child.kill('SIGKILL');
      exited.catch(() => {});
    },
  };
}

/**
 * exec:CMD with TLS: the command's stdin and stdout are the two ways of one
 * channel, as QEMU's exec channel is, so the handshake (and a return path)
 * can cross it.
 */
async function secureExecChannel(command: string, tls: TlsClient): Promise<OutgoingChannel> {
  const child = spawn('/bin/sh', ['-c', command], { stdio: ['pipe', 'pipe', 'inherit'] });
  const exited = childExit(child, command);
  exited.catch(() => {});
  const secure = await upgrade(Duplex.from({ readable: child.stdout!, writable: child.stdin! }), tls).catch((err: unknown) => {
    child.kill('SIGKILL');
    throw err;
  });
  return {
    sink: secure,
    reverse: secure,
    finish: async () => {
      await finishWritable(secure);
      await exited;
    },
    abort: () => {
      secure.destroy();
      child.kill('SIGKILL');
    },
  };
}

/** fd:N: a descriptor inherited from the parent; a socket keeps its return path. */
/**
 * fd:N, the descriptor now the migration's: a socket (both ways, TLS if
 * asked), a pipe, or a regular file written from its current offset.
 */
async function fdChannel(fd: number, tls: TlsClient | undefined): Promise<OutgoingChannel> {
  const kind = descriptorKind(fd, 'outgoing');
  if (kind === 'socket') {
    const socket = new net.Socket({ fd, readable: true, writable: true });
    return socketChannel(tls ? await upgrade(socket, tls) : socket);
  }
  if (tls) throw oneWayTls(`fd:${fd}, which is not a socket`);
  // QEMU writes to a descriptor open read-only and fails there, with these words: refuse it before a byte is sent.
  if (fdPassingMissing() === undefined && accessModeOf(fd) === fsc.O_RDONLY) throw new TransportError('IO', 'Unable to write to file: Bad file descriptor');
  const sink = kind === 'pipe'
    ? new net.Socket({ fd, readable: false, writable: true })
    : fs.createWriteStream('', { fd, highWaterMark: WRITE_BUFFER });
  return { sink, reverse: undefined, finish: () => finishWritable(sink), abort: () => sink.destroy() };
}

export function childExit(child: ChildProcess, command: string): Promise<void> {
  return new Promise((resolve, reject) => {
    child.once('error', (err) => reject(new TransportError('IO', `exec '${command}' failed: ${err.message}`)));
    child.once('exit', (code, signal) => {
      if (code === 0) resolve();
      else reject(new TransportError('EXEC_STATUS', `exec '${command}' ended with ${signal ? `signal ${signal}` : `status ${code}`}`));
    });
  });
}

async function finishWritable(sink: Writable): Promise<void> {
  if (sink.destroyed) throw new TransportError('IO', 'the migration channel was closed');
  const failed = once(sink, 'error').then(([err]) => {
    throw new TransportError('IO', `Unable to write to the migration channel: ${(err as Error).message}`);
  });
  sink.end();
  await Promise.race([once(sink, 'finish'), failed]);
}
