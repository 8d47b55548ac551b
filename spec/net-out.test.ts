/**
 * The guest's link to the outside (protocols/net-out): NetLink, the sender
 * (actors/net/net-link.ts); NetSink, the peer that checks what arrives
 * (tools/net-sink.ts); and GuestNetwork (actors/net/guest-network.ts), which
 * routes the NIC's packets to the link or to whatever COLO diverts them to.
 * Over unix sockets in a fresh directory per test (one test over tcp).
 */
import { expect } from 'chai';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Guest } from '../actors/guest/guest.js';
import { NIC_PACKET_BYTES, Nic, NicTx, allocateNicRing, nextChain } from '../actors/guest/nic.js';
import { AB_PACKET_PAGES } from '../actors/guest/workloads/ab.js';
import { GuestNetwork } from '../actors/net/guest-network.js';
import { NetLink } from '../actors/net/net-link.js';
import { NET_OUT_HELLO_BYTES, NET_OUT_MAGIC } from '../protocols/net-out/constants.js';
import { NetSink } from '../tools/net-sink.js';

/** Packets from `from.seq + 1` on, `count` of them, each chained to the one before as a guest's NIC chains them. */
function stream(count: number, from = { seq: 0, chain: 0 }): Uint8Array[] {
  const packets: Uint8Array[] = [];
  let chain = from.chain;
  for (let i = 1; i <= count; i++) {
    const seq = (from.seq + i) >>> 0;
    const pos = (seq % 7) * AB_PACKET_PAGES;
    const value = (seq * 13) & 0xff;
    chain = nextChain(chain, seq, pos, value);
    packets.push(packet(seq, pos, value, chain));
  }
  return packets;
}

function packet(seq: number, pos: number, value: number, chain: number): Uint8Array {
  const bytes = new Uint8Array(NIC_PACKET_BYTES);
  const view = new DataView(bytes.buffer);
  view.setUint32(0, seq);
  view.setUint32(4, pos);
  view.setUint32(8, value);
  view.setUint32(12, chain);
  return bytes;
}

function fieldsOf(p: Uint8Array): { seq: number; pos: number; value: number; chain: number } {
  const view = new DataView(p.buffer, p.byteOffset, p.byteLength);
  return { seq: view.getUint32(0), pos: view.getUint32(4), value: view.getUint32(8), chain: view.getUint32(12) };
}

const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function waitUntil(cond: () => boolean, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(5);
  }
}

async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${what} took longer than ${ms} ms`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

interface LogLine {
  message: string;
  fields?: Record<string, unknown>;
}

describe('net-out: the guest link, its peer and the guest network', function () {
  let dir: string;
  let links: NetLink[];
  let sinks: NetSink[];
  let sockets: net.Socket[];
  let servers: net.Server[];
  let guests: Guest[];

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'livemig-net-out-'));
    links = [];
    sinks = [];
    sockets = [];
    servers = [];
    guests = [];
  });

  afterEach(async () => {
    try {
      await Promise.all(guests.map((g) => g.destroy()));
      for (const link of links) link.close();
      for (const socket of sockets) socket.destroy();
      await within(Promise.all([
        ...sinks.map((s) => s.close()),
        ...servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))),
      ]), 5000, 'closing the peers');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  function link(uri: string, log: LogLine[] = []): NetLink {
    const l = NetLink.create(uri, (message, fields) => log.push({ message, ...(fields ? { fields } : {}) }));
    links.push(l);
    return l;
  }

  async function sink(uri: string): Promise<NetSink> {
    const s = await NetSink.listen(uri);
    sinks.push(s);
    return s;
  }

  /** A sender written by hand: greets, reads the peer's hello, then writes whatever bytes the test gives it. */
  async function rawSender(path: string): Promise<{ next: number; socket: net.Socket }> {
    const socket = net.connect(path);
    sockets.push(socket);
    const hello = new Promise<Buffer>((resolve, reject) => {
      let got = Buffer.alloc(0);
      socket.on('data', (chunk: Buffer) => {
        got = Buffer.concat([got, chunk]);
        if (got.length >= NET_OUT_HELLO_BYTES) resolve(got);
      });
      socket.once('error', reject);
      socket.once('close', () => reject(new Error('the peer closed before its hello')));
    });
    const magic = Buffer.alloc(4);
    magic.writeUInt32BE(NET_OUT_MAGIC);
    socket.write(magic);
    const got = await within(hello, 2000, "the peer's hello");
    expect(got.readUInt32BE(0)).to.equal(NET_OUT_MAGIC);
    return { next: got.readUInt32BE(4), socket };
  }

  const seqsOf = (s: NetSink) => s.received.map((p) => p.seq);

  it('connects on the first packet; the sink says next=1 and takes every packet in order', async () => {
    const path = join(dir, 'net.sock');
    const s = await sink(`unix:${path}`);
    const log: LogLine[] = [];
    const l = link(`unix:${path}`, log);
    await sleep(50);
    expect(s.connections, 'no connection before there is something to send').to.equal(0);

    const all = stream(30);
    for (const p of all.slice(0, 20)) l.send(p);
    await waitUntil(() => s.received.length >= 20, 5000, '20 packets at the sink');
    expect(log).to.deep.include({ message: 'network link up', fields: { next: 1 } });
    for (const p of all.slice(20)) l.send(p);
    await waitUntil(() => s.received.length >= 30, 5000, '30 packets at the sink');
    await sleep(20);
    expect(s.received).to.deep.equal(all.map(fieldsOf));
    expect(s.violations).to.deep.equal([]);
    expect(s.connections).to.equal(1);
    expect(l.counters).to.deep.equal({ sent: 30, skipped: 0, dropped: 0 });
  });

  it('works over tcp too', async () => {
    const s = await sink('tcp:127.0.0.1:0');
    const l = link(`tcp:127.0.0.1:${s.port}`);
    const all = stream(10);
    for (const p of all) l.send(p);
    await waitUntil(() => s.received.length >= 10, 5000, '10 packets at the sink');
    expect(seqsOf(s)).to.deep.equal(range(1, 10));
    expect(s.violations).to.deep.equal([]);
  });

  it('a link that takes over sends nothing the peer already has', async () => {
    const path = join(dir, 'net.sock');
    const s = await sink(`unix:${path}`);
    const all = stream(15);
    const first = link(`unix:${path}`);
    for (const p of all.slice(0, 10)) first.send(p); // 1..10
    await waitUntil(() => s.received.length >= 10, 5000, 'packets 1..10 at the sink');

    const log: LogLine[] = [];
    const second = link(`unix:${path}`, log);
    for (const p of all.slice(4)) second.send(p); // 5..15
    await waitUntil(() => s.received.length >= 15, 5000, 'packets 11..15 at the sink');
    await sleep(20);
    expect(seqsOf(s)).to.deep.equal(range(1, 15));
    expect(s.received).to.deep.equal(all.map(fieldsOf));
    expect(s.violations).to.deep.equal([]);
    expect(s.connections).to.equal(2);
    expect(log).to.deep.include({ message: 'network link up', fields: { next: 11 } });
    // 5..10 (six packets) were the peer's already; 11..15 went.
    expect(second.counters).to.deep.equal({ sent: 5, skipped: 6, dropped: 0 });
    expect(first.counters).to.deep.equal({ sent: 10, skipped: 0, dropped: 0 });
  });

  it('the sink reports a gap, a duplicate, a broken chain and a bad magic, and keeps serving', async () => {
    const path = join(dir, 'net.sock');
    const s = await sink(`unix:${path}`);
    const all = stream(8);
    const bytes = (ps: Uint8Array[]) => Buffer.concat(ps);
    const raw = await rawSender(path);
    expect(raw.next).to.equal(1);

    // A gap: 1, 2, then 4. Packet 4 is not taken; 3 still is.
    raw.socket.write(bytes([all[0]!, all[1]!, all[3]!]));
    await waitUntil(() => s.violations.length >= 1, 2000, 'the gap');
    expect(s.violations).to.deep.equal(['gap: packet 4 after 2']);
    raw.socket.write(bytes([all[2]!]));
    await waitUntil(() => s.received.length >= 3, 2000, 'packet 3');

    // A duplicate: 3 again; 4 is then taken.
    raw.socket.write(bytes([all[2]!, all[3]!]));
    await waitUntil(() => s.received.length >= 4, 2000, 'packet 4');
    expect(s.violations).to.deep.equal(['gap: packet 4 after 2', 'duplicate packet 3 (wanted 4)']);
    expect(seqsOf(s)).to.deep.equal([1, 2, 3, 4]);

    // A broken chain: packet 5 with a chain that does not follow from 4's (packet 6 then follows from the 5 received).
    const good5 = fieldsOf(all[4]!);
    const bad5 = packet(good5.seq, good5.pos, good5.value, good5.chain ^ 1);
    const after5 = stream(1, { seq: 5, chain: good5.chain ^ 1 });
    raw.socket.write(bytes([bad5, ...after5]));
    await waitUntil(() => s.received.length >= 6, 2000, 'packets 5 and 6');
    expect(s.violations).to.have.length(3);
    expect(s.violations[2]).to.equal(`packet 5 does not follow from packet 4 (chain ${good5.chain ^ 1}, expected ${good5.chain})`);

    // A bad magic from another socket: refused and closed; the sender in place keeps its link.
    const bad = net.connect(path);
    sockets.push(bad);
    const closed = new Promise<void>((resolve) => bad.once('close', () => resolve()));
    bad.on('error', () => {});
    bad.write(Buffer.from([0xde, 0xad, 0xbe, 0xef]));
    await within(closed, 2000, 'the sink closing a sender with a bad magic');
    expect(s.violations).to.have.length(4);
    expect(s.violations[3]).to.equal('a sender opened with a bad magic');
    expect(s.connections).to.equal(1);
    const go = stream(2, { seq: 6, chain: fieldsOf(after5[0]!).chain }); // 7, 8
    raw.socket.write(bytes([go[0]!]));
    await waitUntil(() => s.received.length >= 7, 2000, 'packet 7 from the sender in place');

    // And a new sender is served as ever: it takes over and is told where to go on.
    const l = link(`unix:${path}`);
    l.send(go[1]!);
    await waitUntil(() => s.received.length >= 8, 2000, 'packet 8 from a new link');
    expect(seqsOf(s)).to.deep.equal(range(1, 8));
    expect(s.connections).to.equal(2);
    expect(s.violations).to.have.length(4);
  });

  it('queues while the peer is not there, and delivers everything once it is', async () => {
    const path = join(dir, 'net.sock');
    const log: LogLine[] = [];
    const l = link(`unix:${path}`, log);
    const all = stream(2000);
    let sent = 0;
    const firstTry = Date.now();
    l.send(all[sent++]!); // tries to connect: nobody there
    await sleep(100);
    const s = await sink(`unix:${path}`);
    // Packets keep coming; the link tries again only a second after its last try.
    let connectedAt = 0;
    await waitUntil(() => {
      if (s.connections > 0) {
        connectedAt ||= Date.now();
        return true;
      }
      l.send(all[sent++]!);
      return false;
    }, 5000, 'the link to connect again');
    expect(connectedAt - firstTry).to.be.at.least(1000);
    expect(connectedAt - firstTry).to.be.below(2500);
    await waitUntil(() => s.received.length >= sent, 2000, 'every queued packet at the sink');
    expect(sent).to.be.greaterThan(10);
    expect(seqsOf(s)).to.deep.equal(range(1, sent));
    expect(s.violations).to.deep.equal([]);
    expect(l.counters).to.deep.equal({ sent, skipped: 0, dropped: 0 });
    expect(log).to.deep.equal([{ message: 'network link up', fields: { next: 1 } }]);
  });

  it('tries to connect at most once a second while the peer keeps refusing', async () => {
    const path = join(dir, 'net.sock');
    const attempts: number[] = [];
    const refusing = net.createServer((socket) => {
      attempts.push(Date.now());
      socket.destroy();
    });
    servers.push(refusing);
    await new Promise<void>((resolve) => refusing.listen(path, resolve));
    const l = link(`unix:${path}`);
    const all = stream(2000);
    let sent = 0;
    const started = Date.now();
    while (Date.now() - started < 2500) {
      l.send(all[sent++]!);
      await sleep(20);
    }
    expect(attempts.length).to.be.within(2, 3);
    for (let i = 1; i < attempts.length; i++) expect(attempts[i]! - attempts[i - 1]!).to.be.at.least(950);
    expect(l.counters).to.deep.equal({ sent: 0, skipped: 0, dropped: 0 });

    // A real peer in its place gets everything, in order.
    await new Promise<void>((resolve) => refusing.close(() => resolve()));
    servers.splice(0);
    const s = await sink(`unix:${path}`);
    await waitUntil(() => {
      if (s.received.length >= sent) return true;
      if (sent < all.length) l.send(all[sent++]!);
      return false;
    }, 5000, 'the queued packets at the sink');
    expect(seqsOf(s)).to.deep.equal(range(1, sent));
    expect(s.violations).to.deep.equal([]);
  });

  it('refuses a URI that is not unix: or tcp:', () => {
    for (const uri of ['file:/tmp/net.out', 'exec:cat > /dev/null', 'fd:3']) {
      expect(() => NetLink.create(uri, () => {}), uri).to.throw(Error, `--net-out takes unix:PATH or tcp:HOST:PORT, not '${uri}'`);
    }
    // A URI that is no transport at all says so too, with the parser's reason.
    expect(() => NetLink.create('udp:127.0.0.1:9', () => {})).to.throw(
      "--net-out takes unix:PATH or tcp:HOST:PORT, not 'udp:127.0.0.1:9' (Parameter 'uri' expects a valid migration protocol)",
    );
    for (const uri of ['rdma:127.0.0.1:9', 'net.sock', 'tcp:127.0.0.1']) {
      expect(() => NetLink.create(uri, () => {}), uri).to.throw(Error, `--net-out takes unix:PATH or tcp:HOST:PORT, not '${uri}' (`);
    }
  });

  it('a link to a peer with the wrong magic closes it and says why', async () => {
    const path = join(dir, 'net.sock');
    const hellos: number[] = [];
    const wrong = net.createServer((socket) => {
      hellos.push(Date.now());
      socket.on('error', () => {});
      socket.resume(); // read, so the link's close is seen
      socket.write(Buffer.from([1, 2, 3, 4, 0, 0, 0, 1]));
    });
    servers.push(wrong);
    await new Promise<void>((resolve) => wrong.listen(path, resolve));
    const log: LogLine[] = [];
    const l = link(`unix:${path}`, log);
    l.send(stream(1)[0]!);
    await waitUntil(() => log.length >= 1, 2000, 'the link to give up on the peer');
    expect(log).to.deep.equal([{ message: 'the network peer is not a livemig net-out peer (bad magic): link closed' }]);
    expect(l.counters.sent).to.equal(0);
    expect(hellos).to.have.length(1);
  });

  it('sends across the u32 sequence wrap (a guest that sent 2^32 packets goes on from 0)', async () => {
    // The NIC's sequence numbers are u32s and wrap (nic.ts): after 0xffffffff comes 0, which the link
    // must not take for a packet the peer has. A peer saying next=0xfffffffe stands for one that took that many.
    const path = join(dir, 'net.sock');
    const got: Buffer[] = [];
    const peer = net.createServer((socket) => {
      socket.on('error', () => {});
      const hello = Buffer.alloc(NET_OUT_HELLO_BYTES);
      hello.writeUInt32BE(NET_OUT_MAGIC, 0);
      hello.writeUInt32BE(0xfffffffe, 4);
      socket.write(hello);
      socket.on('data', (chunk: Buffer) => got.push(chunk));
    });
    servers.push(peer);
    await new Promise<void>((resolve) => peer.listen(path, resolve));
    const l = link(`unix:${path}`);
    const packets = stream(4, { seq: 0xfffffffd, chain: 0 }); // 0xfffffffe, 0xffffffff, 0, 1
    l.send(packets[0]!);
    await waitUntil(() => l.counters.sent >= 1, 2000, 'the link up');
    for (const p of packets.slice(1)) l.send(p);
    await waitUntil(() => Buffer.concat(got).length >= 4 + 4 * NIC_PACKET_BYTES || l.counters.skipped > 0, 2000, 'the packets at the peer');
    await sleep(50);
    const body = Buffer.concat(got).subarray(4);
    const seqs = range(0, body.length / NIC_PACKET_BYTES - 1).map((i) => body.readUInt32BE(i * NIC_PACKET_BYTES));
    expect(seqs).to.deep.equal([0xfffffffe, 0xffffffff, 0, 1]);
    expect(l.counters.skipped).to.equal(0);
  });

  it('sends again what a broken connection lost: whatever the next hello still asks for', async () => {
    const path = join(dir, 'net.sock');
    const got: Buffer[] = [];
    let connections = 0;
    // A peer that takes nothing on its first connection and breaks it; on the second it asks from 1 again.
    const peer = net.createServer((socket) => {
      socket.on('error', () => {});
      const first = ++connections === 1;
      const hello = Buffer.alloc(NET_OUT_HELLO_BYTES);
      hello.writeUInt32BE(NET_OUT_MAGIC, 0);
      hello.writeUInt32BE(1, 4);
      socket.write(hello);
      socket.on('data', (chunk: Buffer) => {
        if (first) socket.destroy();
        else got.push(chunk);
      });
    });
    servers.push(peer);
    await new Promise<void>((resolve) => peer.listen(path, resolve));
    const l = link(`unix:${path}`);
    const packets = stream(6);
    for (const p of packets.slice(0, 3)) l.send(p);
    await waitUntil(() => connections === 1 && l.counters.sent === 3, 2000, 'three packets written on the first connection');
    await sleep(1100); // the link opens again at most once a second, on its next packet
    for (const p of packets.slice(3)) l.send(p);
    await waitUntil(() => Buffer.concat(got).length >= 4 + 6 * NIC_PACKET_BYTES, 3000, 'every packet at the peer');
    const body = Buffer.concat(got).subarray(4);
    expect(range(0, body.length / NIC_PACKET_BYTES - 1).map((i) => body.readUInt32BE(i * NIC_PACKET_BYTES))).to.deep.equal([1, 2, 3, 4, 5, 6]);
    expect(connections).to.equal(2);
  });

  describe('GuestNetwork', function () {
    /** A NIC whose transmit side the test drives (the vCPU's NicTx, in the test thread). */
    function nicPair(): { nic: Nic; send: (count: number) => void } {
      const ring = allocateNicRing();
      const tx = new NicTx(ring, () => {});
      let value = 0;
      return {
        nic: new Nic(ring),
        send: (count) => {
          for (let i = 0; i < count; i++) {
            tx.reserve();
            tx.send(0, ++value & 0xff);
          }
        },
      };
    }

    it('counts packets that no link takes', () => {
      const { nic, send } = nicPair();
      const network = new GuestNetwork(nic, undefined);
      send(3);
      expect(nic.flush()).to.equal(3);
      expect(network.unconnected).to.equal(3);
      network.release(stream(1)[0]!);
      expect(network.unconnected).to.equal(4);
      // Diverted packets are not "unconnected": they went somewhere.
      const diverted: Uint8Array[] = [];
      network.divert((p) => diverted.push(p));
      send(2);
      nic.flush();
      expect(diverted.map((p) => fieldsOf(p).seq)).to.deep.equal([4, 5]);
      expect(network.unconnected).to.equal(4);
    });

    it('routes to the link, to a divert() target until restore(), and releases through the link', async () => {
      const path = join(dir, 'net.sock');
      const s = await sink(`unix:${path}`);
      const { nic, send } = nicPair();
      const l = link(`unix:${path}`);
      const network = new GuestNetwork(nic, l);
      expect(network.link).to.equal(l);

      send(3);
      nic.flush();
      await waitUntil(() => s.received.length >= 3, 5000, 'packets 1..3 at the sink');

      const held: Uint8Array[] = [];
      network.divert((p) => held.push(p));
      send(3);
      nic.flush();
      expect(held.map((p) => fieldsOf(p).seq)).to.deep.equal([4, 5, 6]);
      await sleep(50);
      expect(s.received).to.have.length(3);
      expect(l.counters.sent).to.equal(3);

      // What held them lets them go (as colo-compare does), then the guest's output goes straight out again.
      for (const p of held) network.release(p);
      network.restore();
      send(3);
      nic.flush();
      await waitUntil(() => s.received.length >= 9, 5000, 'packets 4..9 at the sink');
      await sleep(20);
      expect(seqsOf(s)).to.deep.equal(range(1, 9));
      expect(s.violations).to.deep.equal([]);
      expect(l.counters).to.deep.equal({ sent: 9, skipped: 0, dropped: 0 });
      expect(network.unconnected).to.equal(0);
    });

    it("carries a real guest's output to the sink whole and in order", async () => {
      const path = join(dir, 'net.sock');
      const s = await sink(`unix:${path}`);
      const guest = await Guest.create({ ram: 8 << 20, smp: 2, workload: { kind: 'ab', start: 1 << 20, end: 8 << 20 }, runState: 'running' });
      guests.push(guest);
      const l = link(`unix:${path}`);
      new GuestNetwork(guest.nic, l);
      await waitUntil(() => s.received.length >= 500, 10_000, '500 packets at the sink');
      await guest.stop();
      guest.nic.flush();
      const { seq, chain } = guest.nic.state();
      await waitUntil(() => s.received.length >= seq, 5000, 'every packet the guest sent at the sink');
      expect(s.violations).to.deep.equal([]);
      expect(seqsOf(s)).to.deep.equal(range(1, seq));
      expect(s.received.at(-1)!.chain).to.equal(chain);
      expect(l.counters).to.deep.equal({ sent: seq, skipped: 0, dropped: 0 });
    });
  });
});
