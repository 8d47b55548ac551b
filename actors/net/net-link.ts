/**
 * The guest's link to the outside: a connection to the peer named by
 * `--net-out` (protocols/net-out), opened when the guest first has
 * something to send. The peer says which sequence number it wants next;
 * packets before it are not sent again, as a TCP peer's acknowledgement
 * keeps a sender from repeating itself. A broken link is opened anew on
 * the next packet, at most once a second; packets wait meanwhile, up to
 * MAX_QUEUED, and beyond that the oldest are dropped and counted. The
 * peer acknowledges nothing but at its hello, so the last MAX_UNCONFIRMED
 * packets written are kept: those the peer's next hello still asks for
 * (lost with the broken connection) go again. Writes wait while the
 * socket holds HIGH_WATER bytes not yet taken by the kernel.
 */
import net from 'node:net';
import { NET_OUT_HELLO_BYTES, NET_OUT_MAGIC } from '../../protocols/net-out/constants.js';
import { parseMigrationUri } from '../../protocols/transport/uri.js';
import { Nic, seqAfter, seqBefore } from '../guest/nic.js';
import { isAnnounceFrame } from './announce.js';

const MAX_QUEUED = 65_536;
/** More than the kernel's buffers on both ends can hold of 16-byte packets. */
const MAX_UNCONFIRMED = 1 << 18;
const HIGH_WATER = 1 << 20;
const RECONNECT_MS = 1000;

export interface NetLinkCounters {
  /** Packets written to the peer. */
  sent: number;
  /** Packets not written because the peer already had them. */
  skipped: number;
  /** Packets dropped because the link was down too long. */
  dropped: number;
}

export class NetLink {
  private socket: net.Socket | undefined;
  private next: number | undefined;
  private queue: Uint8Array[] = [];
  /** Written since the peer's last hello, a batch per write, newest last: kept whole, dropped a batch at a time (no per-write copy). */
  private unconfirmed: Uint8Array[][] = [];
  private unconfirmedCount = 0;
  private lastAttempt = 0;
  private closed = false;
  readonly counters: NetLinkCounters = { sent: 0, skipped: 0, dropped: 0 };

  private constructor(
    private readonly address: { path: string } | { host: string; port: number },
    private readonly log: (message: string, fields?: Record<string, unknown>) => void,
  ) {}

  /** @throws Error for a URI that is not unix:PATH or tcp:HOST:PORT */
  static create(uri: string, log: (message: string, fields?: Record<string, unknown>) => void): NetLink {
    return new NetLink(netOutAddress(uri), log);
  }

  send(packet: Uint8Array): void {
    if (this.closed) return;
    this.queue.push(packet);
    if (this.queue.length > MAX_QUEUED) {
      this.queue.shift();
      this.counters.dropped++;
    }
    if (this.next !== undefined) this.writeQueued();
    else if (!this.socket && Date.now() - this.lastAttempt >= RECONNECT_MS) this.connect();
  }

  close(): void {
    this.closed = true;
    this.socket?.destroy();
  }

  private connect(): void {
    this.lastAttempt = Date.now();
    const socket = net.connect(this.address);
    this.socket = socket;
    const hello = Buffer.alloc(4);
    hello.writeUInt32BE(NET_OUT_MAGIC);
    socket.write(hello);
    let got: Buffer = Buffer.alloc(0);
    socket.on('data', (chunk: Buffer) => {
      if (this.next !== undefined) return;
      got = Buffer.concat([got, chunk]);
      if (got.length < NET_OUT_HELLO_BYTES) return;
      if (got.readUInt32BE(0) !== NET_OUT_MAGIC) {
        this.log('the network peer is not a livemig net-out peer (bad magic): link closed');
        return socket.destroy();
      }
      const next = got.readUInt32BE(4);
      this.next = next;
      // What the peer still wants of what went out before goes again, first.
      this.queue = [...this.unconfirmed.flat().filter((p) => !seqBefore(Nic.seqOf(p), next)), ...this.queue];
      this.unconfirmed = [];
      this.unconfirmedCount = 0;
      this.log('network link up', { next });
      this.writeQueued();
    });
    socket.on('drain', () => this.writeQueued());
    socket.on('error', () => {});
    socket.on('close', () => {
      if (this.socket !== socket) return;
      this.socket = undefined;
      this.next = undefined;
    });
  }

  private writeQueued(): void {
    const socket = this.socket;
    if (!socket || this.next === undefined || socket.writableLength >= HIGH_WATER) return;
    const out: Uint8Array[] = [];
    let announcements = 0;
    for (const packet of this.queue) {
      // An announcement has no place in the sequence: always sent, never kept to send again.
      if (isAnnounceFrame(packet)) {
        out.push(packet);
        announcements++;
      } else if (seqBefore(Nic.seqOf(packet), this.next)) this.counters.skipped++;
      else out.push(packet);
    }
    this.queue = [];
    if (out.length === 0) return;
    socket.write(Buffer.concat(out));
    const packets = announcements === 0 ? out : out.filter((p) => !isAnnounceFrame(p));
    if (packets.length === 0) return;
    this.counters.sent += packets.length;
    this.next = seqAfter(Nic.seqOf(packets[packets.length - 1]!));
    this.unconfirmed.push(packets);
    this.unconfirmedCount += packets.length;
    while (this.unconfirmedCount - this.unconfirmed[0]!.length >= MAX_UNCONFIRMED) this.unconfirmedCount -= this.unconfirmed.shift()!.length;
  }
}

/**
 * Where `--net-out URI` connects.
 *
 * @throws Error for a URI that is not unix:PATH or tcp:HOST:PORT
 */
export function netOutAddress(uri: string): { path: string } | { host: string; port: number } {
  const refused = (why?: string) => new Error(`--net-out takes unix:PATH or tcp:HOST:PORT, not '${uri}'${why ? ` (${why})` : ''}`);
  let parsed;
  try {
    parsed = parseMigrationUri(uri, { direction: 'outgoing' });
  } catch (err) {
    throw refused((err as Error).message);
  }
  if (parsed.scheme === 'unix') return { path: parsed.path };
  if (parsed.scheme === 'tcp') return { host: parsed.host, port: parsed.port };
  throw refused();
}
