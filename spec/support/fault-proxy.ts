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
    client.on('error', drop).on('close', drop);
    upstream.on('error', drop).on('close', drop);
    client.on('end', () => upstream.end());
    upstream.on('end', () => client.end());
    // A connection made through a stalled proxy is stalled both ways: not even a close passes.
    if (this.mode === 'stall') {
      client.pause();
      upstream.pause();
    }
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
    client.on('drain', () => this.mode !== 'stall' && upstream.resume());
  }

  /**
   * `forward` as it is, or, while the proxy is throttled, a tenth of the
   * rate every 100 ms, holding `from` while bytes wait here.
   */
  private paced(from: net.Socket, to: net.Socket, forward: (chunk: Buffer) => void): (chunk: Buffer) => void {
    let queue: Buffer = Buffer.alloc(0);
    let timer: NodeJS.Timeout | undefined;
    const tick = () => {
      const share = this.rate === undefined ? queue.length : Math.max(1, Math.floor(this.rate / 10));
      const chunk = queue.subarray(0, share);
      queue = queue.subarray(chunk.length);
      if (chunk.length > 0 && !to.destroyed) forward(Buffer.from(chunk));
      if (queue.length > 0) return;
      clearInterval(timer);
      timer = undefined;
      if (this.mode !== 'stall') from.resume();
    };
    from.once('close', () => clearInterval(timer));
    return (chunk) => {
      if (this.rate === undefined && timer === undefined) return forward(chunk);
      queue = Buffer.concat([queue, chunk]);
      from.pause();
      timer ??= setInterval(tick, 100);
    };
  }
}
