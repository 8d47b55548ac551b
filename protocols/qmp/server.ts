/**
 * A QMP server: listens on any number of `unix:`/`tcp:` addresses, greets
 * each client as QEMU 8.2 does, runs the caller's command table for every
 * negotiated session, and broadcasts events to all of them.
 *
 * @example
 * const server = new QmpServer({ commands: new Map([['stop', stopCommand]]) });
 * const bound = await server.listen('tcp:127.0.0.1:0'); // 'tcp:127.0.0.1:40123'
 * server.emitEvent('STOP');
 * await server.close();
 */
import { chmod, lstat, rm } from 'node:fs/promises';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { formatQmpAddress, parseQmpAddress } from './address.js';
import { fdPassingMissing } from '../fd-passing.js';
import { secureServer, type TlsServer } from '../tls/session.js';
import { defineCommand, type QmpCommand, type QmpCommandTable } from './command.js';
import { livemigPackage, QEMU_COMPAT_VERSION, QMP_CAPABILITIES } from './constants.js';
import { QmpError } from './errors.js';
import { encodeJson } from './json-encode.js';
import type { JsonLimits } from './json-streamer.js';
import { NO_ARGUMENTS, qapi } from './schema.js';
import { QmpSession, type SessionHost } from './session.js';
import type { JsonObject, QmpEvent, QmpVersion } from './types.js';

export interface QmpServerOptions {
  commands: QmpCommandTable;
  /** The greeting's `package`; by default "livemig <version>". */
  package?: string;
  /** Bounds on one input message; QEMU's by default (64 MiB of tokens, 2Mi tokens, nesting 1024). */
  jsonLimits?: Partial<JsonLimits>;
}

/** Commands every server has; a caller's table may not redefine them. */
export const BUILTIN_COMMANDS = ['qmp_capabilities', 'query-commands', 'query-version'] as const;

interface Listener {
  server: Server;
  address: string;
  unixPath: string | null;
}

export class QmpServer {
  private readonly listeners: Listener[] = [];
  private readonly sessions = new Set<QmpSession>();
  private readonly commands: Map<string, QmpCommand>;
  private readonly host: SessionHost;
  private nextSessionId = 1;
  private closing: Promise<void> | null = null;

  constructor(options: QmpServerOptions) {
    const version: QmpVersion = { qemu: { ...QEMU_COMPAT_VERSION }, package: options.package ?? livemigPackage() };
    for (const name of BUILTIN_COMMANDS) {
      if (options.commands.has(name)) throw new Error(`command '${name}' is built into the QMP server`);
    }
    this.commands = new Map<string, QmpCommand>([
      ['query-commands', defineCommand({ args: NO_ARGUMENTS, run: () => this.commandNames().map((name) => ({ name })) })],
      ['query-version', defineCommand({ args: NO_ARGUMENTS, run: () => version })],
      ...options.commands,
    ]);
    this.host = {
      jsonLimits: options.jsonLimits ?? {},
      greetingLine: encodeJson({ QMP: { version, capabilities: [...QMP_CAPABILITIES] } }),
      lookup: (name) => this.commands.get(name),
      negotiationCommand,
    };
  }

  /**
   * Starts listening; resolves with the bound address (the real port for
   * `tcp:HOST:0`). A stale unix socket file at the path is replaced.
   */
  async listen(address: string, options: { tls?: TlsServer } = {}): Promise<string> {
    if (this.closing) throw new Error('QMP server is closed');
    const parsed = parseQmpAddress(address);
    const { tls } = options;
    // A unix monitor takes descriptors passed with requests (getfd, add-fd): its sockets are read by recvmsg, never by Node.
    const descriptors = parsed.transport === 'unix' && !tls && fdPassingMissing() === undefined;
    const server = createServer({ allowHalfOpen: true, pauseOnConnect: descriptors }, (socket) => {
      if (!tls) return this.accept(socket, descriptors);
      // A client that fails the handshake or its checks is dropped; no session ever sees it.
      secureServer(socket, tls, { verdict: false }).then((secure) => this.accept(secure), () => socket.destroy());
    });
    if (parsed.transport === 'unix') await removeStaleSocket(parsed.path);
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      const onListening = () => {
        server.off('error', reject);
        resolve();
      };
      if (parsed.transport === 'unix') {
        // Owner-only from the moment it exists: whoever can connect drives the guest and reads its memory.
        const umask = process.umask(0o177);
        try {
          server.listen(parsed.path, onListening);
        } finally {
          process.umask(umask);
        }
      } else {
        server.listen({ port: parsed.port, ...(parsed.host === '' ? {} : { host: parsed.host }) }, onListening);
      }
    });
    if (parsed.transport === 'unix') await chmod(parsed.path, 0o600);
    let bound = address;
    if (parsed.transport === 'tcp') {
      const info = server.address() as AddressInfo;
      bound = formatQmpAddress({ transport: 'tcp', host: info.address, port: info.port });
    }
    this.listeners.push({ server, address: bound, unixPath: parsed.transport === 'unix' ? parsed.path : null });
    return bound;
  }

  /** Bound addresses, in listen order. */
  get addresses(): string[] {
    return this.listeners.map((l) => l.address);
  }

  /** Connected sessions, negotiated or not. */
  get sessionCount(): number {
    return this.sessions.size;
  }

  /** Every command a negotiated session can run (what query-commands lists). */
  commandNames(): string[] {
    return ['qmp_capabilities', ...this.commands.keys()];
  }

  /** Sends an event to every negotiated session (none before negotiation, as in QEMU). */
  emitEvent(event: string, data?: JsonObject): void {
    const micros = Math.round((performance.timeOrigin + performance.now()) * 1000);
    const message: QmpEvent = {
      event,
      ...(data === undefined ? {} : { data }),
      timestamp: { seconds: Math.floor(micros / 1e6), microseconds: micros % 1e6 },
    };
    const line = encodeJson(message);
    for (const session of this.sessions) if (session.negotiated) session.writeLine(line);
  }

  /** Ends every connection, stops listening and removes unix socket files. */
  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  private async shutdown(): Promise<void> {
    const stopped = this.listeners.map(({ server }) => new Promise<void>((resolve) => server.close(() => resolve())));
    for (const session of this.sessions) session.end();
    await Promise.all(stopped);
    await Promise.all(this.listeners.flatMap((l) => (l.unixPath === null ? [] : [rm(l.unixPath, { force: true })])));
  }

  private accept(socket: Socket, descriptors = false): void {
    if (this.closing) {
      socket.destroy();
      return;
    }
    const session = new QmpSession(this.nextSessionId++, socket, this.host, descriptors);
    this.sessions.add(session);
    socket.on('close', () => this.sessions.delete(session));
  }
}

/**
 * qmp_capabilities, bound to its session: accepted once (enabling `oob` if
 * asked), then "already complete" like QEMU.
 */
function negotiationCommand(session: QmpSession): QmpCommand {
  return defineCommand({
    args: qapi.object({ enable: qapi.optional(qapi.array(qapi.enumOf(QMP_CAPABILITIES))) }),
    run: ({ enable }) => {
      if (session.negotiated) {
        throw new QmpError('CommandNotFound', 'Capabilities negotiation is already complete, command ignored');
      }
      session.oobEnabled = enable?.includes('oob') ?? false;
      session.negotiated = true;
    },
  });
}

/** QEMU unlinks a leftover socket before binding; anything else at the path is left for listen to refuse. */
async function removeStaleSocket(path: string): Promise<void> {
  const stat = await lstat(path).catch(() => null);
  if (stat?.isSocket()) await rm(path, { force: true });
}
