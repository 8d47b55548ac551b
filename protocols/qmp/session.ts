/**
 * One QMP connection on the server side: greeting, capabilities
 * negotiation, and the request queue. In-band requests run one at a time in
 * arrival order, so responses come back in order; `exec-oob` requests (once
 * the client enabled `oob`) run as soon as they arrive. Like QEMU, the
 * session stops reading its socket while its queue is full.
 */
import type { Socket } from 'node:net';
import { closeDescriptors, DescriptorReader } from '../fd-passing.js';
import { NamedFds } from './named-fds.js';
import type { QmpCommand } from './command.js';
import { MAX_INPUT_WITHOUT_MESSAGE_BYTES, MAX_PENDING_OUTPUT_BYTES, REQUEST_QUEUE_MAX } from './constants.js';
import { genericError, QmpError } from './errors.js';
import { encodeJson } from './json-encode.js';
import { JsonStreamer, type JsonLimits } from './json-streamer.js';
import { checkRequest, isOobRequest, requestId } from './request.js';
import { validateArguments } from './validate-arguments.js';
import type { JsonObject, JsonValue } from './types.js';

/** What a session needs from its server. */
export interface SessionHost {
  /** Bounds on one input message (QEMU's by default). */
  readonly jsonLimits: Partial<JsonLimits>;
  /** The greeting, already encoded. */
  readonly greetingLine: string;
  /** Commands of a negotiated session, built-ins included. */
  lookup(name: string): QmpCommand | undefined;
  /** Built on the session (qmp_capabilities reads and flips its state). */
  readonly negotiationCommand: (session: QmpSession) => QmpCommand;
}

/** A queued in-band item: a request (with the descriptors that came with it), or an input error answered in its turn. */
type Pending = { request: JsonValue; fds: number[] } | { error: QmpError };

/** How long a closing server waits for a client to take its last output. */
const END_GRACE_MS = 2000;

export class QmpSession {
  negotiated = false;
  oobEnabled = false;
  private readonly input: JsonStreamer;
  private readonly queue: Pending[] = [];
  private draining = false;
  private readingPaused = false;
  /** The client has finished sending (half-close): end once the queue is answered. */
  private inputEnded = false;
  private readonly negotiation: QmpCommand;
  /** Bytes received since the last whole message. */
  private sinceMessage = 0;
  /** Descriptors received and not yet given to a request: they go with the next whole one. */
  private arrivedFds: number[] = [];
  /** getfd's names on this connection. */
  readonly namedFds = new NamedFds();
  /** Reads the socket with the descriptors passed on it (a unix monitor), instead of Node. */
  private readonly reader: DescriptorReader | undefined;

  /** @param descriptors  read with recvmsg, taking descriptors passed with requests (the socket was accepted paused) */
  constructor(
    readonly id: number,
    private readonly socket: Socket,
    private readonly host: SessionHost,
    descriptors = false,
  ) {
    this.input = new JsonStreamer(host.jsonLimits);
    this.negotiation = host.negotiationCommand(this);
    // `printf '...' | socat - unix:...` closes its side first; answer it all, then end.
    const ended = () => {
      this.inputEnded = true;
      if (!this.draining) this.endOutput();
    };
    if (descriptors) {
      this.reader = DescriptorReader.start(socket, {
        data: (chunk, fds) => this.receive(chunk, fds),
        end: ended,
        error: () => socket.destroy(),
      });
    } else {
      socket.on('data', (chunk: Buffer) => this.receive(chunk, []));
      socket.on('end', ended);
    }
    // A peer that vanishes is simply gone; 'close' follows.
    socket.on('error', () => socket.destroy());
    socket.on('close', () => this.closed());
    this.writeLine(host.greetingLine);
  }

  /** Ends our side once the client has ended its own. Node never read a socket read by descriptors, so it cannot see the peer go: it closes once its writes are out. */
  private endOutput(): void {
    if (this.reader) this.socket.destroySoon();
    else this.socket.end();
  }

  /** The connection is gone: nothing it was handed stays open. */
  private closed(): void {
    this.reader?.stop();
    closeDescriptors(this.arrivedFds);
    this.arrivedFds = [];
    for (const item of this.queue.splice(0)) if ('fds' in item) closeDescriptors(item.fds);
    this.namedFds.closeAll();
  }

  /** Writes one response or event line, dropping a client that has stopped reading. */
  writeLine(line: string): void {
    if (this.socket.destroyed || !this.socket.writable) return;
    if (this.socket.writableLength > MAX_PENDING_OUTPUT_BYTES) {
      this.socket.destroy();
      return;
    }
    this.socket.write(`${line}\r\n`);
  }

  /** Ends the connection once queued output is written, or after a grace period if the client stops reading. */
  end(): void {
    this.socket.destroySoon();
    setTimeout(() => this.socket.destroy(), END_GRACE_MS).unref();
  }

  /**
   * Messages end where their braces and brackets balance, as QEMU reads
   * them: newlines mean nothing. Descriptors go with the first message
   * that is whole once they have come (normally the one whose bytes they
   * were sent with).
   */
  private receive(chunk: Buffer, fds: number[]): void {
    if (this.socket.destroyed) return closeDescriptors(fds);
    this.arrivedFds.push(...fds);
    this.sinceMessage += chunk.length;
    for (const message of this.input.push(chunk)) {
      const fds = this.arrivedFds;
      this.arrivedFds = [];
      if ('error' in message) {
        closeDescriptors(fds);
        this.enqueue({ error: genericError(message.error.message) });
      } else {
        this.sinceMessage = 0;
        if (isOobRequest(message.value)) void this.answer(message.value, fds);
        else this.enqueue({ request: message.value, fds });
      }
    }
    // A client that only floods is dropped (its memory was bounded all along).
    if (this.sinceMessage > MAX_INPUT_WITHOUT_MESSAGE_BYTES) this.socket.destroy();
  }

  private enqueue(item: Pending): void {
    this.queue.push(item);
    if (this.queue.length >= REQUEST_QUEUE_MAX && !this.readingPaused) {
      this.readingPaused = true;
      if (this.reader) this.reader.pause();
      else this.socket.pause();
    }
    void this.drain();
  }

  private async drain(): Promise<void> {
    if (this.draining) return;
    this.draining = true;
    for (let item = this.queue.shift(); item !== undefined; item = this.queue.shift()) {
      if (this.readingPaused && this.queue.length < REQUEST_QUEUE_MAX) {
        this.readingPaused = false;
        if (this.reader) this.reader.resume();
        else this.socket.resume();
      }
      if ('error' in item) this.writeLine(encodeJson({ error: errorBody(item.error) }));
      else await this.answer(item.request, item.fds);
    }
    this.draining = false;
    if (this.inputEnded) this.endOutput();
  }

  /** Runs one request and writes its response; the descriptors that came with it and that it did not take are closed after. */
  private async answer(request: JsonValue, fds: number[]): Promise<void> {
    const id = requestId(request);
    const negotiating = !this.negotiated;
    let response: JsonObject;
    try {
      const { command: name, arguments: args, oob } = checkRequest(request, this.oobEnabled);
      const command = this.lookup(name);
      if (oob && command.allowOob !== true) throw genericError(`The command ${name} does not support OOB`);
      const takeFd = () => {
        const [first, ...rest] = fds.splice(0);
        closeDescriptors(rest);
        return first;
      };
      const result = await command.run(validateArguments(command.args, args), { sessionId: this.id, oob, takeFd, namedFds: this.namedFds });
      response = { return: (result ?? {}) as JsonValue };
      encodeJson(response); // fail here, not half-way through the write
    } catch (thrown) {
      let error = thrown instanceof QmpError ? thrown : genericError(thrown instanceof Error ? thrown.message : String(thrown));
      // Before negotiation every other command is "not found"; QEMU says why.
      if (negotiating && error.errorClass === 'CommandNotFound') {
        error = new QmpError('CommandNotFound', "Expecting capabilities negotiation with 'qmp_capabilities'");
      }
      response = { error: errorBody(error) };
    }
    closeDescriptors(fds.splice(0));
    if (id !== undefined) response.id = id;
    this.writeLine(encodeJson(response));
  }

  private lookup(name: string): QmpCommand {
    const command = name === 'qmp_capabilities' ? this.negotiation : this.negotiated ? this.host.lookup(name) : undefined;
    if (command === undefined) throw new QmpError('CommandNotFound', `The command ${name} has not been found`);
    return command;
  }
}

function errorBody(error: QmpError): JsonObject {
  return { class: error.errorClass, desc: error.desc };
}
