/**
 * One QMP connection on the server side: greeting, capabilities
 * negotiation, and the request queue. In-band requests run one at a time in
 * arrival order, so responses come back in order; `exec-oob` requests (once
 * the client enabled `oob`) run as soon as they arrive. Like QEMU, the
 * session stops reading its socket while its queue is full.
 */
import type { Socket } from 'node:net';
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

/** A queued in-band item: a request, or an input error answered in its turn. */
type Pending = { request: JsonValue } | { error: QmpError };

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

  constructor(
    readonly id: number,
    private readonly socket: Socket,
    private readonly host: SessionHost,
  ) {
    this.input = new JsonStreamer(host.jsonLimits);
    this.negotiation = host.negotiationCommand(this);
    socket.on('data', (chunk: Buffer) => this.receive(chunk));
    // `printf '...' | socat - unix:...` closes its side first; answer it all, then end.
    socket.on('end', () => {
      this.inputEnded = true;
      if (!this.draining) socket.end();
    });
    // A peer that vanishes is simply gone; 'close' follows.
    socket.on('error', () => socket.destroy());
    this.writeLine(host.greetingLine);
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

  /** Messages end where their braces and brackets balance, as QEMU reads them: newlines mean nothing. */
  private receive(chunk: Buffer): void {
    this.sinceMessage += chunk.length;
    for (const message of this.input.push(chunk)) {
      if ('error' in message) this.enqueue({ error: genericError(message.error.message) });
      else {
        this.sinceMessage = 0;
        if (isOobRequest(message.value)) void this.answer(message.value);
        else this.enqueue({ request: message.value });
      }
    }
    // A client that only floods is dropped (its memory was bounded all along).
    if (this.sinceMessage > MAX_INPUT_WITHOUT_MESSAGE_BYTES) this.socket.destroy();
  }

  private enqueue(item: Pending): void {
    this.queue.push(item);
    if (this.queue.length >= REQUEST_QUEUE_MAX && !this.readingPaused) {
      this.readingPaused = true;
      this.socket.pause();
    }
    void this.drain();
  }

  private async drain(): Promise<void> {
    if (this.draining) return;
    this.draining = true;
    for (let item = this.queue.shift(); item !== undefined; item = this.queue.shift()) {
      if (this.readingPaused && this.queue.length < REQUEST_QUEUE_MAX) {
        this.readingPaused = false;
        this.socket.resume();
      }
      if ('error' in item) this.writeLine(encodeJson({ error: errorBody(item.error) }));
      else await this.answer(item.request);
    }
    this.draining = false;
    if (this.inputEnded) this.socket.end();
  }

  /** Runs one request and writes its response. */
  private async answer(request: JsonValue): Promise<void> {
    const id = requestId(request);
    const negotiating = !this.negotiated;
    let response: JsonObject;
    try {
      const { command: name, arguments: args, oob } = checkRequest(request, this.oobEnabled);
      const command = this.lookup(name);
      if (oob && command.allowOob !== true) throw genericError(`The command ${name} does not support OOB`);
      const result = await command.run(validateArguments(command.args, args), { sessionId: this.id, oob });
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
