/**
 * A TCP proxy between a source and a destination that injects the network's
 * faults on command: cut every connection (RST), stall (stop forwarding, the
 * connections stay open), slow every connection down to a few bytes a
 * second, corrupt the bytes flowing to the destination,
 * refuse new connections, or write bytes of the test's own towards the
 * source (a destination that says something wrong on the return path).
 * Tests point `migrate` at the proxy's port.
 */
import net from 'node:net';
import { once } from 'node:events';

export type ProxyMode = 'pass' | 'stall' | 'corrupt';

/**
 * Where the first frame of a byte stream ends: its length once `buffered`
 * holds all of it, undefined while it is incomplete.
 */
export type FrameLength = (buffered: Buffer) => number | undefined;

export interface FaultProxyOptions {
  /**
   * The framing of what the destination sends back. With it, the proxy
   * forwards whole frames only towards the source, so bytes written with
   * `writeTowardsSource` land between two frames, never inside one.
   */
  framesTowardsSource?: FrameLength;
  /** Keep a copy of every byte forwarded towards the destination (captured()): a wire capture. */
  capture?: boolean;
  /**
   * Rewrites what goes to the destination a unit at a time (`frames` splits
   * the stream, hello included): `tamper` gets each whole unit and returns
   * what goes on in its place (a hostile or broken source).
   */
  tamperTowardsDestination?: { frames: FrameLength; tamper: (frame: Buffer) => Buffer };
}

export class FaultProxy {
  private readonly server: net.Server;
  private readonly pairs = new Set<[net.Socket, net.Socket]>();
  private mode: ProxyMode = 'pass';
  private refusing = false;
  /** Bytes forwarded towards the destination so far. */
  forwarded = 0;
  /** Bytes the test wrote towards the source so far (writeTowardsSource), on each connection. */
  injected = 0;
  private waiters: { bytes: number; resolve: () => void }[] = [];
  private readonly capturedChunks: Buffer[] = [];
  /** Bytes per second each way while slowed (throttle), else undefined. */
  private rate: number | undefined;
  private holdingTowardsSource = false;

  private constructor(
    private readonly target: { host: string; port: number },
    private readonly options: FaultProxyOptions,
  ) {
    // Half-closes pass through: a source ends its sending side and still waits for SHUT.
    this.server = net.createServer({ allowHalfOpen: true }, (client) => this.accept(client));
  }

  static async start(target: { host: string; port: number }, options: FaultProxyOptions = {}): Promise<FaultProxy> {
    const proxy = new FaultProxy(target, options);
    proxy.server.listen(0, '127.0.0.1');
    await once(proxy.server, 'listening');
    return proxy;
  }

  get port(): number {
    return (this.server.address() as net.AddressInfo).port;
  }

  get uri(): string {
    return `tcp:127.0.0.1:${this.port}`;
  }

  /** Resets every open connection, both ways. */
  cut(): void {
    for (const [a, b] of this.pairs) {
      a.resetAndDestroy();
      b.resetAndDestroy();
    }
    this.pairs.clear();
  }

  /** Stops forwarding without closing anything (a black hole). */
  stall(): void {
    this.mode = 'stall';
    for (const [a, b] of this.pairs) {
      a.pause();
      b.pause();
    }
  }

  /**
   * Holds back what the destination sends (the return path) while the
   * source's bytes still pass, until resume(): a destination whose answers
   * are late, such as a SHUT that arrives after the source gave up waiting.
   */
  holdTowardsSource(): void {
    this.holdingTowardsSource = true;
    for (const [, upstream] of this.pairs) upstream.pause();
  }

  /** From now on, every byte towards the destination is inverted. */
  corrupt(): void {
    this.resume();
    this.mode = 'corrupt';
  }

  /**
   * From now on each connection carries at most `bytesPerSecond` each way
   * (new connections too), until resume(): what arrives faster waits here,
   * and the sender is held back by TCP.
   */
  throttle(bytesPerSecond: number): void {
    this.resume();
    this.rate = bytesPerSecond;
  }

  resume(): void {
    this.mode = 'pass';
    this.rate = undefined;
    this.holdingTowardsSource = false;
    for (const [a, b] of this.pairs) {
      a.resume();
      b.resume();
    }
  }

  /** New connections are accepted and closed at once. */
  refuse(on = true): void {
    this.refusing = on;
  }

  /**
   * Writes `bytes` towards the source on every open connection, after what
   * was forwarded that way so far (between two frames when the proxy knows
   * the framing); returns how many connections took them. A stalled proxy
   * writes them all the same: only forwarding stops.
   */
  writeTowardsSource(bytes: Uint8Array): number {
    let written = 0;
    for (const [client] of this.pairs) {
      if (client.destroyed || !client.writable) continue;
      client.write(Buffer.from(bytes));
      this.injected += bytes.length;
      written++;
    }
    return written;
  }

  /** Every byte forwarded towards the destination so far, all connections in turn (with `capture`). */
  captured(): Buffer {
    return Buffer.concat(this.capturedChunks);
  }

  /** Resolves once at least `bytes` have been forwarded towards the destination. */
  waitForBytes(bytes: number): Promise<void> {
    if (this.forwarded >= bytes) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push({ bytes, resolve }));
  }

  async close(): Promise<void> {
    this.cut();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private accept(client: net.Socket): void {
    if (this.refusing) return void client.destroy();
    const upstream = net.connect({ ...this.target, allowHalfOpen: true });
    const pair: [net.Socket, net.Socket] = [client, upstream];
    this.pairs.add(pair);
    const drop = () => {
      this.pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    // A connection made through a stalled proxy is stalled both ways: not even a close passes.
    if (this.mode === 'stall') {
      client.pause();
      upstream.pause();
    }
    if (this.holdingTowardsSource) upstream.pause();
    const towardsDestination = this.paced(client, upstream, (chunk) => {
      this.forwarded += chunk.length;
      if (this.options.capture) this.capturedChunks.push(Buffer.from(chunk));
      if (!upstream.write(chunk)) client.pause();
      this.waiters = this.waiters.filter((w) => (this.forwarded >= w.bytes ? (w.resolve(), false) : true));
    });
    const tampering = this.options.tamperTowardsDestination;
    let heldForTamper: Buffer = Buffer.alloc(0);
    client.on('data', (chunk: Buffer) => {
      if (this.mode === 'corrupt') for (let i = 0; i < chunk.length; i++) chunk[i] = ~chunk[i]! & 0xff;
      if (!tampering) return towardsDestination(chunk);
      heldForTamper = heldForTamper.length === 0 ? chunk : Buffer.concat([heldForTamper, chunk]);
      for (;;) {
        const length = tampering.frames(heldForTamper);
        if (length === undefined || length <= 0 || length > heldForTamper.length) break;
        towardsDestination(tampering.tamper(Buffer.from(heldForTamper.subarray(0, length))));
        heldForTamper = heldForTamper.subarray(length);
      }
    });
    upstream.on('drain', () => this.mode !== 'stall' && client.resume());
    const towardsSource = this.paced(upstream, client, (chunk) => {
      if (!client.write(chunk)) upstream.pause();
    });
    // A reset drops the connection at once; an orderly end or close follows the bytes a slow link still holds.
    const closeAfter = (direction: Paced, other: net.Socket) => direction.whenSent(() => {
      this.pairs.delete(pair);
      other.end(() => other.destroy());
    });
    client.on('error', drop).on('close', () => closeAfter(towardsDestination, upstream));
    upstream.on('error', drop).on('close', () => closeAfter(towardsSource, client));
    client.on('end', () => towardsDestination.whenSent(() => upstream.end()));
    upstream.on('end', () => towardsSource.whenSent(() => client.end()));
    const frames = this.options.framesTowardsSource;
    if (frames) {
      // Only whole frames go on; a partial one waits for the rest (or the end, which forwards it as it is).
      let held: Buffer = Buffer.alloc(0);
      upstream.on('data', (chunk: Buffer) => {
        held = held.length === 0 ? chunk : Buffer.concat([held, chunk]);
        let whole = 0;
        for (;;) {
          const length = frames(held.subarray(whole));
          if (length === undefined || length <= 0 || whole + length > held.length) break;
          whole += length;
        }
        if (whole > 0) towardsSource(held.subarray(0, whole));
        held = held.subarray(whole);
      });
      upstream.prependOnceListener('end', () => {
        if (held.length > 0) client.write(held);
        held = Buffer.alloc(0);
      });
    } else {
      upstream.on('data', towardsSource);
    }
    client.on('drain', () => this.mode !== 'stall' && !this.holdingTowardsSource && upstream.resume());
  }

  /**
   * `forward` as it is, or, while the proxy is throttled, a tenth of the
   * rate every 100 ms, holding `from` while bytes wait here. `whenSent`
   * runs its callback once nothing waits here any more.
   */
  private paced(from: net.Socket, to: net.Socket, forward: (chunk: Buffer) => void): Paced {
    let queue: Buffer = Buffer.alloc(0);
    let timer: NodeJS.Timeout | undefined;
    const sent: (() => void)[] = [];
    const tick = () => {
      if (to.destroyed) queue = Buffer.alloc(0);
      const share = this.rate === undefined ? queue.length : Math.max(1, Math.floor(this.rate / 10));
      const chunk = queue.subarray(0, share);
      queue = queue.subarray(chunk.length);
      if (chunk.length > 0) forward(Buffer.from(chunk));
      if (queue.length > 0) return;
      clearInterval(timer);
      timer = undefined;
      if (this.mode !== 'stall') from.resume();
      for (const callback of sent.splice(0)) callback();
    };
    const paced = (chunk: Buffer) => {
      if (this.rate === undefined && timer === undefined) return forward(chunk);
      queue = Buffer.concat([queue, chunk]);
      from.pause();
      timer ??= setInterval(tick, 100);
    };
    paced.whenSent = (callback: () => void) => {
      if (timer === undefined) callback();
      else sent.push(callback);
    };
    return paced;
  }
}

/** A direction's forwarding, pacing included. */
interface Paced {
  (chunk: Buffer): void;
  whenSent(callback: () => void): void;
}
