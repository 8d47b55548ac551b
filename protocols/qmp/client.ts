/**
 * A QMP client for livemig's CLI, tests and orchestrators (and for QEMU
 * itself: it speaks the same protocol). `connect` reads the greeting and
 * negotiates; `execute` resolves with a command's `return` or rejects with a
 * QmpError carrying the server's class and desc. Every wait is bounded.
 *
 * @example
 * const qmp = await QmpClient.connect('unix:/run/src.qmp');
 * await qmp.execute('migrate-set-capabilities', { capabilities: [{ capability: 'events', state: true }] });
 * const done = qmp.waitEvent('MIGRATION', (e) => e.data?.status === 'completed', 60_000);
 * await qmp.execute('migrate', { uri: 'tcp:127.0.0.1:4444' });
 * await done;
 * await qmp.close();
 */
import { EventEmitter } from 'node:events';
import { createConnection, type Socket } from 'node:net';
import { parseQmpAddress } from './address.js';
import { sendWithDescriptors } from '../fd-passing.js';
import { QmpConnectionError, QmpError } from './errors.js';
import { encodeJson } from './json-encode.js';
import { JsonStreamer } from './json-streamer.js';
import type { JsonObject, JsonValue, QmpErrorClass, QmpEvent, QmpGreeting } from './types.js';

export interface QmpConnectOptions {
  /** Bound on connecting, on the greeting, and the default bound of every later wait. Default 10 s. */
  timeoutMs?: number;
  /** Run qmp_capabilities after the greeting (default true). */
  negotiate?: boolean;
  /** Capabilities to enable while negotiating, e.g. ['oob']. */
  enable?: string[];
}

export interface QmpExecuteOptions {
  timeoutMs?: number;
  /** Send as `exec-oob` (the session must have enabled `oob`). */
  oob?: boolean;
  /**
   * Descriptors to pass with the command (SCM_RIGHTS, on a unix monitor),
   * as getfd and add-fd take them; they stay the caller's to close.
   */
  fds?: number[];
}

interface Waiter<T> {
  resolve(value: T): void;
  reject(error: Error): void;
}

export class QmpClient {
  /**
   * Every event as 'event' (a QmpEvent), and again under its own name
   * ('MIGRATION', 'STOP', ...). `events.on(client.events, 'event')` from
   * node:events iterates them.
   */
  readonly events = new EventEmitter();
  private readonly pending = new Map<string, Waiter<JsonObject>>();
  /** Responses no execute() claimed (raw requests, unparseable input). */
  private readonly unclaimed: JsonObject[] = [];
  private readonly responseWaiters: Waiter<JsonObject>[] = [];
  /** The server's output, read as QEMU's monitor reads input (its own output ends lines, but nothing relies on it). */
  private readonly input = new JsonStreamer();
  private greetingWaiter: Waiter<QmpGreeting> | null = null;
  private nextId = 1;
  private failure: QmpConnectionError | null = null;
  private readonly closedPromise: Promise<void>;
  /** Settles every bounded wait when the connection fails. */
  private readonly failureWaiters = new Set<(error: QmpConnectionError) => void>();
  /** The server's greeting (`{"QMP": {...}}`). */
  greeting!: QmpGreeting;

  private constructor(
    private readonly socket: Socket,
    readonly timeoutMs: number,
  ) {
    socket.on('data', (chunk: Buffer) => this.receive(chunk));
    socket.on('error', (error) => this.fail(new QmpConnectionError('closed', `QMP connection failed: ${error.message}`)));
    this.closedPromise = new Promise((resolve) =>
      socket.on('close', () => {
        this.fail(new QmpConnectionError('closed', 'QMP connection closed'));
        resolve();
      }),
    );
  }

  /** Connects, reads the greeting and (unless `negotiate: false`) runs qmp_capabilities. */
  static async connect(address: string, options: QmpConnectOptions = {}): Promise<QmpClient> {
    const timeoutMs = options.timeoutMs ?? 10_000;
    const parsed = parseQmpAddress(address);
    const socket =
      parsed.transport === 'unix'
        ? createConnection({ path: parsed.path })
        : createConnection({ host: parsed.host === '' ? 'localhost' : parsed.host, port: parsed.port });
    const client = new QmpClient(socket, timeoutMs);
    try {
      const greeting = await client.bounded<QmpGreeting>(timeoutMs, 'QMP greeting', (waiter) => {
        client.greetingWaiter = waiter;
      });
      client.greeting = greeting;
      if (options.negotiate ?? true) {
        await client.execute('qmp_capabilities', options.enable ? { enable: options.enable } : undefined);
      }
      return client;
    } catch (error) {
      socket.destroy();
      throw error;
    }
  }

  /** Runs a command; resolves with its `return`, rejects with a QmpError for an `error` answer. */
  async execute<T = JsonValue>(command: string, args?: object, options: QmpExecuteOptions = {}): Promise<T> {
    const id = `livemig-${this.nextId++}`;
    const request = { [options.oob ? 'exec-oob' : 'execute']: command, arguments: args, id };
    const response = await this.bounded<JsonObject>(
      options.timeoutMs ?? this.timeoutMs,
      `reply to '${command}'`,
      (waiter) => {
        this.pending.set(id, waiter);
        if (options.fds === undefined || options.fds.length === 0) return this.sendRaw(encodeJson(request));
        if (this.failure) throw this.failure;
        sendWithDescriptors(this.socket, Buffer.from(encodeJson(request)), options.fds).catch((err: Error) =>
          waiter.reject(new QmpConnectionError('closed', `could not pass descriptors with '${command}': ${err.message}`)));
      },
      () => this.pending.delete(id),
    );
    if (Object.hasOwn(response, 'error')) {
      const error = response.error as { class: QmpErrorClass; desc: string };
      throw new QmpError(error.class, error.desc);
    }
    return response.return as T;
  }

  /**
   * Writes text exactly as given; its answer comes from nextResponse(). Like
   * QEMU's own Python library, nothing is added: the server ends a message
   * where its braces balance, so only a bare number or keyword needs a byte
   * after it.
   */
  sendRaw(text: string | Uint8Array): void {
    if (this.failure) throw this.failure;
    this.socket.write(text);
  }

  /** The next response that no execute() is waiting for, e.g. the answer to a raw line. */
  nextResponse(timeoutMs = this.timeoutMs): Promise<JsonObject> {
    const queued = this.unclaimed.shift();
    if (queued) return Promise.resolve(queued);
    let waiter: Waiter<JsonObject> | undefined;
    return this.bounded<JsonObject>(
      timeoutMs,
      'QMP response',
      (w) => {
        waiter = w;
        this.responseWaiters.push(w);
      },
      () => {
        const i = this.responseWaiters.indexOf(waiter!);
        if (i !== -1) this.responseWaiters.splice(i, 1);
      },
    );
  }

  /**
   * The next event named `name` (that satisfies `predicate`) arriving after
   * this call; so call it before the action that causes the event.
   */
  waitEvent(name: string, predicate: (event: QmpEvent) => boolean = () => true, timeoutMs = this.timeoutMs): Promise<QmpEvent> {
    let listener: ((event: QmpEvent) => void) | undefined;
    return this.bounded<QmpEvent>(
      timeoutMs,
      `${name} event`,
      (waiter) => {
        listener = (event) => {
          if (predicate(event)) waiter.resolve(event);
        };
        this.events.on(name, listener);
      },
      () => this.events.off(name, listener!),
    );
  }

  /**
   * Closes the connection without waiting for pending replies: they reject
   * with a 'closed' QmpConnectionError. Lines already sent are flushed first.
   */
  async close(): Promise<void> {
    this.fail(new QmpConnectionError('closed', 'QMP connection closed by the client'), false);
    this.socket.destroySoon();
    await this.closedPromise;
  }

  /** Runs `start` with a waiter that settles once: by the peer, by the bound, or by the connection failing. */
  private bounded<T>(timeoutMs: number, what: string, start: (waiter: Waiter<T>) => void, cleanup = () => {}): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      if (this.failure) {
        reject(this.failure);
        return;
      }
      const settle = (fn: () => void) => {
        clearTimeout(timer);
        this.failureWaiters.delete(onFailure);
        cleanup();
        fn();
      };
      const onFailure = (error: QmpConnectionError) => settle(() => reject(error));
      const timer = setTimeout(
        () => settle(() => reject(new QmpConnectionError('timeout', `no ${what} within ${timeoutMs} ms`))),
        timeoutMs,
      );
      this.failureWaiters.add(onFailure);
      start({ resolve: (value) => settle(() => resolve(value)), reject: (error) => settle(() => reject(error)) });
    });
  }

  private fail(error: QmpConnectionError, destroy = true): void {
    if (this.failure) return;
    this.failure = error;
    if (destroy) this.socket.destroy();
    for (const onFailure of [...this.failureWaiters]) onFailure(error);
  }

  private receive(chunk: Buffer): void {
    for (const message of this.input.push(chunk)) {
      if ('error' in message) {
        this.fail(new QmpConnectionError('protocol', `QMP server sent bad JSON: ${message.error.message}`));
        return;
      }
      this.dispatch(message.value);
    }
  }

  private dispatch(value: JsonValue): void {
    if (typeof value !== 'object' || value === null || Array.isArray(value)) {
      this.fail(new QmpConnectionError('protocol', `QMP server sent a non-object: ${encodeJson(value)}`));
      return;
    }
    if (Object.hasOwn(value, 'QMP') && this.greetingWaiter) {
      this.greetingWaiter.resolve(value as unknown as QmpGreeting);
      this.greetingWaiter = null;
    } else if (Object.hasOwn(value, 'event')) {
      const event = value as unknown as QmpEvent;
      this.events.emit('event', event);
      this.events.emit(event.event, event);
    } else {
      const waiter = typeof value.id === 'string' ? this.pending.get(value.id) : undefined;
      if (waiter) waiter.resolve(value);
      else {
        const next = this.responseWaiters.shift();
        if (next) next.resolve(value);
        else this.unclaimed.push(value);
      }
    }
  }
}
