import { EventEmitter } from 'node:events';
import type { Readable } from 'node:stream';
import { ReturnPathDecoder } from '../../protocols/return-path/decode.js';
import type { ReturnPathMessage } from '../../protocols/return-path/messages.js';

interface ReaderEvents {
  /** Every message, SHUT included (SHUT also settles `shut()`). */
  message: [ReturnPathMessage];
  /** The return path went bad: malformed input, a destination error, or it closed early. */
  error: [Error];
}

/**
 * The source's end of the return path (QEMU's source_return_path_thread):
 * decodes what the destination sends on the main connection's reverse
 * direction. Malformed input marks the path bad; it never throws.
 */
export class ReturnPathReader extends EventEmitter<ReaderEvents> {
  private readonly decoder = new ReturnPathDecoder({ onMessage: (m) => this.onMessage(m) });
  private shutResult: { ok: true } | { ok: false; error: Error } | undefined;
  private shutWaiter: { resolve: () => void; reject: (e: Error) => void } | undefined;
  private closed = false;

  constructor(private readonly reverse: Readable) {
    super();
    reverse.on('data', this.onData);
    reverse.once('end', this.onEnd);
    // A reset or close arrives as 'error'/'close', not 'end': the path is just as gone.
    reverse.once('error', this.onBroken);
    reverse.once('close', this.onEnd);
  }

  /** Resolves when the destination says SHUT 0 (all loaded); rejects on its error or a bad path. */
  shut(): Promise<void> {
    if (this.shutResult) return this.shutResult.ok ? Promise.resolve() : Promise.reject(this.shutResult.error);
    return new Promise((resolve, reject) => (this.shutWaiter = { resolve, reject }));
  }

  /**
   * Where the destination's multifd channels listen: resolves with one tcp
   * port per channel (0 for unix channels) once the destination has said so
   * for all `channels`; rejects if it uses another channel count or is silent.
   */
  multifdPorts(channels: number, timeoutMs: number): Promise<number[]> {
    return new Promise((resolve, reject) => {
      const ports: number[] = [];
      let received = 0;
      const done = (err?: Error) => {
        clearTimeout(timer);
        this.off('message', onMessage);
        this.off('error', done);
        if (err) reject(err);
        else resolve(ports);
      };
      const onMessage = (m: ReturnPathMessage) => {
        if (m.type !== 'multifd-channels') return;
        if (m.count !== channels) {
          return done(new Error(
            `multifd-channels is ${m.count} on the destination but ${channels} here: set it alike on both sides before incoming starts`,
          ));
        }
        m.ports.forEach((port, i) => (ports[m.first + i] = port));
        received += m.ports.length;
        if (received >= channels) done();
      };
      const timer = setTimeout(
        () => done(new Error(`the destination did not say where its ${channels} multifd channels listen within ${timeoutMs} ms (is multifd on there too?)`)),
        timeoutMs,
      );
      this.on('message', onMessage);
      this.on('error', done);
    });
  }

  /** The return path's failure (a destination's SHUT error) if one arrives within `ms`; undefined otherwise. */
  failureWithin(ms: number): Promise<Error | undefined> {
    if (this.shutResult) return Promise.resolve(this.shutResult.ok ? undefined : this.shutResult.error);
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve(undefined), ms);
      this.shut().then(
        () => resolve(undefined),
        (err: Error) => {
          clearTimeout(timer);
          resolve(err);
        },
      );
    });
  }

  close(): void {
    this.closed = true;
    this.reverse.off('data', this.onData);
    this.reverse.off('end', this.onEnd);
    this.reverse.off('close', this.onEnd);
    this.reverse.off('error', this.onBroken);
  }

  private readonly onData = (chunk: Buffer): void => {
    if (this.closed) return;
    try {
      this.decoder.push(chunk);
    } catch (err) {
      this.bad(err as Error);
    }
  };

  private readonly onBroken = (err: Error): void => {
    if (this.closed || this.shutResult) return;
    this.bad(new Error(`the return path broke before SHUT: ${err.message}`));
  };

  private readonly onEnd = (): void => {
    if (this.closed || this.shutResult) return;
    this.bad(new Error('the destination closed the return path without SHUT'));
  };

  private onMessage(message: ReturnPathMessage): void {
    this.emit('message', message);
    if (message.type === 'shut') {
      if (message.status === 0) this.settle({ ok: true });
      else {
        const why = message.error ? `: ${message.error}` : '';
        this.bad(new Error(`Sibling indicated error ${message.status}${why}`));
      }
    }
  }

  private bad(error: Error): void {
    if (this.shutResult) return;
    this.settle({ ok: false, error });
    if (this.listenerCount('error') > 0) this.emit('error', error);
  }

  private settle(result: { ok: true } | { ok: false; error: Error }): void {
    this.shutResult = result;
    const waiter = this.shutWaiter;
    this.shutWaiter = undefined;
    if (!waiter) return;
    if (result.ok) waiter.resolve();
    else waiter.reject(result.error);
  }
}
