/**
 * The source's end of the return path (QEMU's source_return_path_thread),
 * as an actor: it reads the main connection's reverse direction, decodes
 * and checks each message, runs the return path's statechart
 * (machines/return-path.ts), and hands its owner typed events. Malformed
 * input, an error SHUT or a path that ends before its SHUT make the path
 * bad; nothing here ever throws at the owner or reads outside guest RAM.
 */
import { EventEmitter } from 'node:events';
import type { Readable } from 'node:stream';
import { createActor, type Actor } from 'xstate';
import { returnPathMachine, returnPathState, type ReturnPathState } from '../../machines/return-path.js';
import { ReturnPathDecoder } from '../../protocols/return-path/decode.js';
import { RESUME_ACK_VALUE } from '../../protocols/return-path/constants.js';
import type { ColoReturnMessage, MultifdChannelsMessage, ReturnPathMessage } from '../../protocols/return-path/messages.js';
import { NIC_PACKET_BYTES } from '../guest/nic.js';
import type { SourceReturnPathEvents } from './messages.js';
import { PageRequestCheck, type RequestableBlock } from './page-request-check.js';

export class SourceReturnPath extends EventEmitter<SourceReturnPathEvents> {
  private readonly decoder: ReturnPathDecoder;
  private readonly machine: Actor<typeof returnPathMachine> = createActor(returnPathMachine).start();
  private shutResult: { ok: true } | { ok: false; error: Error } | undefined;
  private shutWaiter: { resolve: () => void; reject: (e: Error) => void } | undefined;
  private detached = false;
  private readonly requests: PageRequestCheck;
  /** PONGs received (QEMU's source counts the answers to its PINGs). */
  pongs = 0;
  /** The destination said it failed (a SHUT with an error): it does not run the guest. */
  sawFailure = false;
  /** Set at the switch to postcopy: a page request before it is a confused destination. */
  acceptPageRequests = false;
  /** Recovery: the block whose received bitmap the source asked for; a bitmap unasked for is a confused destination. */
  private expectedBitmap: string | undefined;
  private expectResumeAck = false;
  /** Set once the migration is in COLO: checkpoint steps and the secondary's packets may come. */
  acceptColo = false;
  /** COLO steps not taken yet: two can come in one read, before the wait for the second begins. */
  private readonly coloSteps: ColoReturnMessage[] = [];
  /** multifd-channels messages that came before anyone waited for them. */
  private readonly announced: MultifdChannelsMessage[] = [];
  private preemptAnnounced: number | undefined;

  /**
   * @param reverse the main connection's reverse direction
   * @param blocks the guest's RAM blocks in stream order; page requests name them
   * @param pageSize requests must be aligned to it
   */
  constructor(
    private readonly reverse: Readable,
    blocks: readonly RequestableBlock[],
    pageSize: number,
  ) {
    super();
    this.requests = new PageRequestCheck(blocks, pageSize);
    // A received bitmap holds one bit a page, in 32-bit words.
    this.decoder = new ReturnPathDecoder({
      onMessage: (m) => this.onMessage(m),
      maxBitmapBytes: (name) => {
        const block = blocks.find((b) => b.name === name);
        return block && Math.ceil(block.size / pageSize / 32) * 4;
      },
    });
    reverse.on('data', this.onData);
    reverse.once('end', this.onEnd);
    // A reset or close arrives as 'error'/'close', not 'end': the path is just as gone.
    reverse.once('error', this.onBroken);
    reverse.once('close', this.onEnd);
  }

  get state(): ReturnPathState {
    return returnPathState(this.machine.getSnapshot());
  }

  /** OPEN_RETURN_PATH went out: the destination may speak from here. */
  open(): void {
    this.machine.send({ type: 'open' });
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
        this.off('multifd-channels', onChannels);
        this.off('bad', done);
        if (err) reject(err);
        else resolve(ports);
      };
      const onChannels = (m: { first: number; count: number; ports: number[] }) => {
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
      this.on('multifd-channels', onChannels);
      this.on('bad', done);
      // What came before this wait began (the destination says where all its channels listen at once).
      for (const m of this.announced.splice(0)) onChannels(m);
    });
  }

  /** The tcp port of the destination's postcopy-preempt thread (0 for unix), once its message comes (or came). */
  async preemptPort(timeoutMs: number): Promise<number> {
    if (this.preemptAnnounced !== undefined) return this.preemptAnnounced;
    const [port] = await this.next('preempt-channel', timeoutMs,
      `the destination did not say where its postcopy-preempt channel listens within ${timeoutMs} ms (is postcopy-preempt on there too?)`);
    return port;
  }

  /**
   * Recovery: the destination's received bitmap of `block`, which the
   * source's RECV_BITMAP command asked for (a bitmap for another block, or
   * none in time, is a failure).
   */
  async receivedBitmap(block: string, timeoutMs: number): Promise<Uint8Array> {
    this.expectedBitmap = block;
    try {
      const [named, bitmap] = await this.next('recv-bitmap', timeoutMs, `the destination sent no received bitmap of '${block}' within ${timeoutMs} ms`);
      if (named !== block) throw new Error(`Asked for the received bitmap of '${block}', the destination sent that of '${named}'`);
      return bitmap;
    } finally {
      this.expectedBitmap = undefined;
    }
  }

  /** Recovery: resolves on the destination's RESUME_ACK to POSTCOPY_RESUME. */
  async resumeAck(timeoutMs: number): Promise<void> {
    this.expectResumeAck = true;
    try {
      await this.next('resume-ack', timeoutMs, `the destination did not acknowledge POSTCOPY_RESUME within ${timeoutMs} ms`);
    } finally {
      this.expectResumeAck = false;
    }
  }

  /**
   * COLO: resolves on the secondary's next checkpoint step (the oldest not
   * taken yet) if it is `expected`; rejects on another step or when the
   * path goes bad. It waits as long as it takes (QEMU's does too): a
   * failover is what ends a wait for a secondary that went silent.
   */
  async coloMessage(expected: ColoReturnMessage): Promise<void> {
    if (this.coloSteps.length === 0) await this.next('colo', 0, '');
    const got = this.coloSteps.shift()!;
    if (got !== expected) throw new Error(`Unexpected COLO message '${got}', expected '${expected}'`);
  }

  /**
   * Resolves on the destination's PONG carrying `value` (other PONGs go by);
   * the path's failure, or `silence` after `timeoutMs`, rejects. Ask before
   * sending the PING: its answer may come before the write's callback.
   */
  async pongOf(value: number, timeoutMs: number, silence: string): Promise<void> {
    await this.next('pong', timeoutMs, silence, (got) => got === value);
  }

  /** The next `event` that `accept` takes, or the path's failure if it goes bad first, or `silence` after `timeoutMs` (0: no time limit). */
  private next<K extends 'pong' | 'preempt-channel' | 'recv-bitmap' | 'resume-ack' | 'colo'>(
    event: K,
    timeoutMs: number,
    silence: string,
    accept: (...args: SourceReturnPathEvents[K]) => boolean = () => true,
  ): Promise<SourceReturnPathEvents[K]> {
    if (this.shutResult && !this.shutResult.ok) return Promise.reject(this.shutResult.error);
    return new Promise((resolve, reject) => {
      const finish = (then: () => void) => {
        clearTimeout(timer);
        this.off(event, onEvent as never);
        this.off('bad', onBad);
        then();
      };
      const onEvent = (...args: SourceReturnPathEvents[K]) => accept(...args) && finish(() => resolve(args));
      const onBad = (err: Error) => finish(() => reject(err));
      const timer = timeoutMs > 0 ? setTimeout(() => finish(() => reject(new Error(silence))), timeoutMs) : undefined;
      this.on(event, onEvent as never);
      this.on('bad', onBad);
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

  /** Stops reading: the owner is done with the path (the connection is closed elsewhere). */
  close(): void {
    this.detached = true;
    this.reverse.off('data', this.onData);
    this.reverse.off('end', this.onEnd);
    this.reverse.off('close', this.onEnd);
    this.reverse.off('error', this.onBroken);
    this.machine.stop();
  }

  private readonly onData = (chunk: Buffer): void => {
    if (this.detached || this.shutResult) return;
    try {
      this.decoder.push(chunk);
    } catch (err) {
      this.bad(err as Error);
    }
  };

  private readonly onBroken = (err: Error): void => {
    if (this.detached || this.shutResult) return;
    this.lost(new Error(`the return path broke before SHUT: ${err.message}`));
  };

  private readonly onEnd = (): void => {
    if (this.detached || this.shutResult) return;
    this.lost(new Error('the destination closed the return path without SHUT'));
  };

  /** The connection went: in postcopy the path pauses (nothing it carried was wrong); before, it is bad. */
  private lost(error: Error): void {
    if (!this.acceptPageRequests) return this.bad(error);
    this.machine.send({ type: 'pause', error: error.message });
    this.bad(error);
  }

  /** Postcopy: the migration paused for another reason (migrate-pause, the main channel): the path pauses with it. */
  pause(why: string): void {
    if (!this.shutResult) this.machine.send({ type: 'pause', error: why });
    this.close();
  }

  private onMessage(message: ReturnPathMessage): void {
    if (this.shutResult) return;
    this.emit('message', message);
    switch (message.type) {
      case 'shut':
        if (message.status === 0) this.settle({ ok: true });
        else {
          this.sawFailure = true;
          this.bad(new Error(`Sibling indicated error ${message.status}${message.error ? `: ${message.error}` : ''}`));
        }
        return;
      case 'pong':
        this.pongs++;
        this.emit('pong', message.value);
        return;
      case 'req-pages-id':
      case 'req-pages': {
        const request = this.requests.check(message);
        if (request instanceof Error) return this.bad(request);
        if (!this.acceptPageRequests) return this.bad(new Error('The destination asked for pages before postcopy started'));
        this.emit('page-request', request);
        return;
      }
      // Kept until asked for: the source sets its channels up one after the other, the destination names them all at once.
      case 'multifd-channels':
        if (this.listenerCount('multifd-channels') > 0) this.emit('multifd-channels', message);
        else this.announced.push(message);
        return;
      case 'preempt-channel':
        this.preemptAnnounced = message.port;
        this.emit('preempt-channel', message.port);
        return;
      case 'recv-bitmap':
        if (this.expectedBitmap === undefined) return this.neverAskedFor(message.type);
        this.emit('recv-bitmap', message.block, message.bitmap);
        return;
      case 'resume-ack':
        if (!this.expectResumeAck) return this.neverAskedFor(message.type);
        if (message.value !== RESUME_ACK_VALUE) return this.bad(new Error(`illegal resume_ack value ${message.value}`));
        this.emit('resume-ack', message.value);
        return;
      case 'colo':
        if (!this.acceptColo) return this.neverAskedFor(message.type);
        this.coloSteps.push(message.message);
        this.emit('colo', message.message);
        return;
      case 'colo-packets':
        if (!this.acceptColo) return this.neverAskedFor(message.type);
        if (message.packets.length % NIC_PACKET_BYTES !== 0) {
          return this.bad(new Error(`COLO_PACKETS carries ${message.packets.length} bytes, not whole ${NIC_PACKET_BYTES}-byte packets`));
        }
        this.emit('colo-packets', message.packets);
        return;
      // A destination with switchover-ack sends it whether or not this side waits for it (QEMU takes it either way).
      case 'switchover-ack':
        this.emit('switchover-ack');
        return;
    }
  }

  private neverAskedFor(type: string): void {
    this.bad(new Error(`Received return-path message '${type}', which this migration never asked for`));
  }

  private bad(error: Error): void {
    if (this.shutResult) return;
    this.machine.send({ type: 'bad', error: error.message });
    this.settle({ ok: false, error });
    if (this.listenerCount('bad') > 0) this.emit('bad', error);
  }

  private settle(result: { ok: true } | { ok: false; error: Error }): void {
    this.shutResult = result;
    if (result.ok) this.machine.send({ type: 'shut' });
    const waiter = this.shutWaiter;
    this.shutWaiter = undefined;
    if (!waiter) return;
    if (result.ok) waiter.resolve();
    else waiter.reject(result.error);
  }
}
