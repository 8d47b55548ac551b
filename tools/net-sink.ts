/**
 * The peer at the other end of a guest's `--net-out` link (protocols/net-out):
 * it takes one sender at a time (a new connection takes over from the old
 * one, as a guest that moved or failed over does), tells each where to go
 * on, and checks what arrives: every packet must be the next sequence
 * number, and its chain must follow from the previous packet's, so a gap,
 * a duplicate or a packet from another timeline (a diverged COLO secondary)
 * shows as a violation. Self-announcements (actors/net/announce.ts) are
 * frames of their own kind, counted apart, outside the sequence.
 *
 * @example
 * const sink = await NetSink.listen('unix:/tmp/net.sock');
 * // livemig run ... --net-out unix:/tmp/net.sock
 * sink.received; sink.violations;
 */
import net from 'node:net';
import { unlinkSync } from 'node:fs';
import { nextChain, NIC_PACKET_BYTES, seqAfter, seqBefore } from '../actors/guest/nic.js';
import { NET_OUT_ANNOUNCE, NET_OUT_ANNOUNCE_SEQ, NET_OUT_HELLO_BYTES, NET_OUT_MAGIC } from '../protocols/net-out/constants.js';
import { parseMigrationUri } from '../protocols/transport/uri.js';

export interface SinkPacket {
  seq: number;
  pos: number;
  value: number;
  chain: number;
}

/** A self-announcement as it arrived: the sender's clock when sent, the sink's when taken, and which sender (1 = the first). */
export interface SinkAnnouncement {
  sentAt: number;
  receivedAt: number;
  sender: number;
}

export class NetSink {
  /** Every packet accepted, in order. */
  readonly received: SinkPacket[] = [];
  /** Every self-announcement taken, in order (not in `received`, and no part of the sequence). */
  readonly announcements: SinkAnnouncement[] = [];
  /** What broke the rules: gaps, duplicates, broken chains, bad magic. */
  readonly violations: string[] = [];
  /** Senders seen (a takeover adds one). */
  connections = 0;
  private next = 1;
  private chain = 0;
  private current: net.Socket | undefined;

  private constructor(
    private readonly server: net.Server,
    private readonly path: string | undefined,
  ) {}

  static async listen(uri: string): Promise<NetSink> {
    const parsed = parseMigrationUri(uri, { direction: 'incoming' });
    if (parsed.scheme !== 'unix' && parsed.scheme !== 'tcp') throw new Error(`a net sink listens on unix:PATH or tcp:HOST:PORT, not '${uri}'`);
    const server = net.createServer();
    const sink = new NetSink(server, parsed.scheme === 'unix' ? parsed.path : undefined);
    server.on('connection', (socket) => sink.accept(socket));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      if (parsed.scheme === 'unix') server.listen(parsed.path, resolve);
      else server.listen(parsed.port, parsed.host || undefined, resolve);
    });
    return sink;
  }

  /** The tcp port it listens on (0 for unix). */
  get port(): number {
    const address = this.server.address();
    return typeof address === 'object' && address ? address.port : 0;
  }

  async close(): Promise<void> {
    this.current?.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
    if (this.path) {
      try {
        unlinkSync(this.path);
      } catch {
        // Already gone.
      }
    }
  }

  private accept(socket: net.Socket): void {
    let pending: Buffer = Buffer.alloc(0);
    let greeted = false;
    socket.on('error', () => {});
    socket.on('data', (chunk: Buffer) => {
      pending = pending.length ? Buffer.concat([pending, chunk]) : chunk;
      if (!greeted) {
        if (pending.length < 4) return;
        if (pending.readUInt32BE(0) !== NET_OUT_MAGIC) {
          this.violations.push('a sender opened with a bad magic');
          return socket.destroy();
        }
        greeted = true;
        pending = pending.subarray(4);
        // The new sender takes over: the old one's later packets are not taken.
        this.current?.destroy();
        this.current = socket;
        this.connections++;
        const hello = Buffer.alloc(NET_OUT_HELLO_BYTES);
        hello.writeUInt32BE(NET_OUT_MAGIC, 0);
        hello.writeUInt32BE(this.next, 4);
        socket.write(hello);
      }
      if (socket !== this.current) return;
      let at = 0;
      for (; at + NIC_PACKET_BYTES <= pending.length; at += NIC_PACKET_BYTES) this.take(pending.subarray(at, at + NIC_PACKET_BYTES));
      pending = pending.subarray(at);
    });
  }

  private take(bytes: Buffer): void {
    if (bytes.readUInt32BE(0) === NET_OUT_ANNOUNCE_SEQ && bytes.readUInt32BE(4) === NET_OUT_ANNOUNCE) {
      this.announcements.push({ sentAt: Number(bytes.readBigUInt64BE(8)), receivedAt: Date.now(), sender: this.connections });
      return;
    }
    const packet = { seq: bytes.readUInt32BE(0), pos: bytes.readUInt32BE(4), value: bytes.readUInt32BE(8), chain: bytes.readUInt32BE(12) };
    if (packet.seq !== this.next) {
      this.violations.push(seqBefore(packet.seq, this.next) ? `duplicate packet ${packet.seq} (wanted ${this.next})` : `gap: packet ${packet.seq} after ${this.next - 1}`);
      return;
    }
    const expected = nextChain(this.chain, packet.seq, packet.pos, packet.value);
    if (packet.chain !== expected) this.violations.push(`packet ${packet.seq} does not follow from packet ${packet.seq - 1} (chain ${packet.chain}, expected ${expected})`);
    this.chain = packet.chain;
    this.next = seqAfter(packet.seq);
    this.received.push(packet);
  }
}
