/**
 * colo-compare on its own (actors/colo/colo-compare.ts): the primary's
 * output packets are held until the secondary has sent the same packet or a
 * checkpoint makes the question moot; a differing packet or one left
 * unmatched for COMPARE_TIMEOUT_MS asks for a checkpoint, once.
 */
import { expect } from 'chai';
import { COMPARE_TIMEOUT_MS, ColoCompare } from '../actors/colo/colo-compare.js';
import { NIC_PACKET_BYTES } from '../actors/guest/nic.js';

/** A 16-byte packet: big-endian seq, then bytes derived from `body` (a different body, a different packet). */
function packet(seq: number, body = 0): Uint8Array {
  const bytes = new Uint8Array(NIC_PACKET_BYTES);
  const view = new DataView(bytes.buffer);
  view.setUint32(0, seq);
  view.setUint32(4, seq * 7 + body);
  view.setUint32(8, (seq + body) & 0xff);
  view.setUint32(12, 0x9e3779b9 ^ (seq + body * 0x10001));
  return bytes;
}

/** The same packet in a fresh buffer, as the secondary's copy arrives. */
function copy(p: Uint8Array): Uint8Array {
  return Uint8Array.from(p);
}

/** A copy of `p` with one byte changed (same seq). */
function differing(p: Uint8Array, at = 10): Uint8Array {
  const q = copy(p);
  q[at] = q[at]! ^ 0x5a;
  return q;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('colo-compare', function () {
  let released: Uint8Array[];
  let asked: ('mismatch' | 'timeout')[];
  let compare: ColoCompare;

  beforeEach(() => {
    released = [];
    asked = [];
    compare = new ColoCompare((p) => released.push(p), (why) => asked.push(why));
  });

  const seqs = (packets: Uint8Array[]) => packets.map((p) => new DataView(p.buffer, p.byteOffset).getUint32(0));

  it('holds a primary packet until the secondary sends the same one', () => {
    const p1 = packet(1);
    compare.fromPrimary(p1);
    expect(released).to.deep.equal([]);
    expect(compare.held()).to.deep.equal([p1]);
    compare.fromSecondary(copy(p1));
    expect(released).to.have.length(1);
    expect(released[0]).to.equal(p1); // the primary's own packet goes out, never the secondary's
    expect(compare.held()).to.deep.equal([]);
    expect(asked).to.deep.equal([]);
    expect(compare.counters).to.deep.equal({ matched: 1, releasedAtCheckpoint: 0, mismatches: 0 });
  });

  it("releases a primary packet at once when the secondary's copy came first", () => {
    const [p1, p2, p3] = [packet(1), packet(2), packet(3)];
    compare.fromSecondary(copy(p1!));
    compare.fromSecondary(copy(p2!));
    expect(released).to.deep.equal([]);
    compare.fromPrimary(p1!);
    expect(released).to.deep.equal([p1]);
    compare.fromPrimary(p2!);
    compare.fromPrimary(p3!);
    expect(released).to.deep.equal([p1, p2]);
    expect(compare.held()).to.deep.equal([p3]);
    compare.fromSecondary(copy(p3!));
    expect(released).to.deep.equal([p1, p2, p3]);
    expect(asked).to.deep.equal([]);
    expect(compare.counters).to.deep.equal({ matched: 3, releasedAtCheckpoint: 0, mismatches: 0 });
  });

  it('lists held primary packets oldest first', () => {
    const ps = [1, 2, 3, 4].map((s) => packet(s));
    for (const p of ps) compare.fromPrimary(p);
    expect(compare.held()).to.deep.equal(ps);
    compare.fromSecondary(copy(ps[0]!));
    expect(compare.held()).to.deep.equal(ps.slice(1));
  });

  it('a differing packet asks for one checkpoint and stops comparing until it is through', () => {
    const ps = [1, 2, 3, 4, 5].map((s) => packet(s));
    compare.fromPrimary(ps[0]!);
    compare.fromSecondary(copy(ps[0]!));
    expect(released).to.deep.equal([ps[0]]);

    compare.fromPrimary(ps[1]!);
    compare.fromSecondary(differing(ps[1]!));
    expect(asked).to.deep.equal(['mismatch']);
    expect(compare.counters.mismatches).to.equal(1);

    // Diverged: identical packets are neither compared nor released, and nothing asks again.
    compare.fromPrimary(ps[2]!);
    compare.fromSecondary(copy(ps[2]!));
    compare.fromSecondary(copy(ps[3]!)); // of the run the checkpoint replaces: dropped once the secondary has it
    compare.checkTimeout(Date.now() + 10 * COMPARE_TIMEOUT_MS);
    expect(released).to.deep.equal([ps[0]]);
    expect(asked).to.deep.equal(['mismatch']);
    expect(compare.held()).to.deep.equal([ps[1], ps[2]]);

    // The secondary has the checkpoint (taken with the primary stopped after packet 3): what it sent
    // before is of the run it leaves, and what the primary holds goes out, in order.
    compare.secondaryReloaded();
    compare.checkpoint();
    expect(released).to.deep.equal([ps[0], ps[1], ps[2]]);
    expect(compare.held()).to.deep.equal([]);
    expect(compare.counters).to.deep.equal({ matched: 1, releasedAtCheckpoint: 2, mismatches: 1 });

    // From the checkpoint on both send 4 and 5: 4 matches, 5 differs and asks again.
    compare.fromSecondary(copy(ps[3]!));
    compare.fromSecondary(differing(ps[4]!));
    compare.fromPrimary(ps[3]!);
    expect(released).to.deep.equal([ps[0], ps[1], ps[2], ps[3]]);
    expect(asked).to.deep.equal(['mismatch']);
    compare.fromPrimary(ps[4]!);
    expect(asked).to.deep.equal(['mismatch', 'mismatch']);
    expect(released).to.have.length(4);
    expect(compare.held()).to.deep.equal([ps[4]]);
    expect(compare.counters).to.deep.equal({ matched: 2, releasedAtCheckpoint: 2, mismatches: 2 });
  });

  it('a secondary packet with a later seq than the oldest held primary one is a mismatch (a packet the secondary did not send)', () => {
    compare.fromPrimary(packet(1));
    compare.fromSecondary(packet(2));
    expect(asked).to.deep.equal(['mismatch']);
    expect(released).to.deep.equal([]);
  });

  it("secondaryReloaded() forgets what the secondary sent before it had the checkpoint; what it sends after is compared", () => {
    const ps = [1, 2, 3].map((s) => packet(s));
    compare.fromPrimary(ps[0]!);
    compare.fromSecondary(differing(ps[0]!));
    expect(asked).to.deep.equal(['mismatch']);
    // The diverged run goes on sending until it stops for the checkpoint.
    compare.fromSecondary(differing(ps[1]!));
    compare.fromSecondary(differing(ps[2]!));
    compare.secondaryReloaded();
    compare.checkpoint();
    expect(released).to.deep.equal([ps[0]]);
    // The run that starts from the checkpoint sends what the primary sends.
    compare.fromSecondary(copy(ps[1]!));
    compare.fromPrimary(ps[1]!);
    compare.fromPrimary(ps[2]!);
    compare.fromSecondary(copy(ps[2]!));
    expect(released).to.deep.equal(ps);
    expect(asked).to.deep.equal(['mismatch']);
    expect(compare.counters).to.deep.equal({ matched: 2, releasedAtCheckpoint: 1, mismatches: 1 });
  });

  it('drops secondary packets older than the oldest held primary packet', () => {
    const p5 = packet(5);
    compare.fromPrimary(p5);
    compare.fromSecondary(differing(packet(3)));
    compare.fromSecondary(packet(4, 9));
    expect(asked).to.deep.equal([]);
    expect(compare.held()).to.deep.equal([p5]);
    compare.fromSecondary(copy(p5));
    expect(released).to.deep.equal([p5]);
    expect(asked).to.deep.equal([]);
    expect(compare.counters).to.deep.equal({ matched: 1, releasedAtCheckpoint: 0, mismatches: 0 });
  });

  it('asks once when the oldest held primary packet waits longer than COMPARE_TIMEOUT_MS, again only after a checkpoint', async () => {
    compare.checkTimeout(Date.now() + 100 * COMPARE_TIMEOUT_MS); // nothing held: nothing to time out
    expect(asked).to.deep.equal([]);

    const before = Date.now();
    const p1 = packet(1);
    compare.fromPrimary(p1);
    const after = Date.now();
    compare.checkTimeout(before + COMPARE_TIMEOUT_MS - 1);
    expect(asked).to.deep.equal([]);
    compare.checkTimeout(after + COMPARE_TIMEOUT_MS);
    expect(asked).to.deep.equal(['timeout']);
    compare.checkTimeout(after + 10 * COMPARE_TIMEOUT_MS);
    expect(asked).to.deep.equal(['timeout']);
    expect(compare.counters.mismatches).to.equal(0);
    // Still held: a timeout releases nothing by itself.
    expect(compare.held()).to.deep.equal([p1]);

    compare.checkpoint();
    expect(released).to.deep.equal([p1]);
    compare.checkTimeout(Date.now() + 10 * COMPARE_TIMEOUT_MS); // nothing held
    expect(asked).to.deep.equal(['timeout']);

    // After the checkpoint a new late packet asks again; the clock is the oldest held packet's.
    const p2 = packet(2);
    compare.fromPrimary(p2);
    const p2At = Date.now();
    await sleep(50);
    compare.fromPrimary(packet(3));
    compare.checkTimeout(p2At + COMPARE_TIMEOUT_MS);
    expect(asked).to.deep.equal(['timeout', 'timeout']);
    expect(compare.counters).to.deep.equal({ matched: 0, releasedAtCheckpoint: 1, mismatches: 0 });
  });

  it("times a held packet from its own arrival: a matched older packet no longer counts", async () => {
    const p1 = packet(1);
    compare.fromPrimary(p1);
    const p1At = Date.now();
    await sleep(50);
    compare.fromPrimary(packet(2));
    compare.fromSecondary(copy(p1));
    expect(released).to.deep.equal([p1]);
    // 3000 ms after packet 1, but less than 2960 ms after packet 2, the oldest held now.
    compare.checkTimeout(p1At + COMPARE_TIMEOUT_MS);
    expect(asked).to.deep.equal([]);
    compare.checkTimeout(Date.now() + COMPARE_TIMEOUT_MS);
    expect(asked).to.deep.equal(['timeout']);
  });

  it('does not ask for a timeout while a mismatch has already asked for a checkpoint', () => {
    compare.fromPrimary(packet(1));
    compare.fromSecondary(differing(packet(1)));
    compare.checkTimeout(Date.now() + 10 * COMPARE_TIMEOUT_MS);
    expect(asked).to.deep.equal(['mismatch']);
  });

  it("releaseAll() lets everything held go out in order and forgets the secondary's packets", () => {
    const ps = [1, 2, 3].map((s) => packet(s));
    compare.fromSecondary(differing(packet(4))); // queued: no primary packet to compare it with yet
    compare.releaseAll(); // nothing held yet; the secondary's 4 goes
    // Had the secondary's 4 stayed, the primary's 1 would meet it and differ.
    for (const p of ps) compare.fromPrimary(p);
    expect(asked).to.deep.equal([]);
    expect(released).to.deep.equal([]);
    expect(compare.held()).to.deep.equal(ps);
    compare.releaseAll();
    expect(released).to.deep.equal(ps);
    expect(seqs(released)).to.deep.equal([1, 2, 3]);
    expect(compare.held()).to.deep.equal([]);
    const p4 = packet(4);
    compare.fromPrimary(p4);
    expect(asked).to.deep.equal([]);
    // What the failover let go counts with what checkpoints did: released without a match.
    expect(compare.counters).to.deep.equal({ matched: 0, releasedAtCheckpoint: 3, mismatches: 0 });
  });
});
