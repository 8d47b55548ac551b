/**
 * The COLO secondary's side of a checkpoint, on a real guest (vCPU
 * threads, shared RAM) with the return path written into a real stream:
 * a checkpoint is applied whole or not at all, the secondary's own writes
 * are undone by each checkpoint and by a takeover, and a step out of
 * order is refused with a clear error. Also the primary's end of the
 * return path refusing malformed COLO messages.
 */
import { expect } from 'chai';
import { PassThrough } from 'node:stream';
import { ColoSecondary } from '../actors/colo/colo-secondary.js';
import { ColoStatus } from '../actors/colo/colo-status.js';
import { digestBlocksHere, digestText } from '../actors/guest/digest.js';
import { Guest } from '../actors/guest/guest.js';
import { GuestNetwork } from '../actors/net/guest-network.js';
import { GuestSink } from '../actors/ram/guest-sink.js';
import { DestinationReturnPath } from '../actors/return-path/destination-return-path.js';
import { SourceReturnPath } from '../actors/return-path/source-return-path.js';
import { ReturnPathDecoder } from '../protocols/return-path/decode.js';
import { encodeReturnPath } from '../protocols/return-path/encode.js';
import type { ReturnPathMessage } from '../protocols/return-path/messages.js';
import type { StreamMessage } from '../protocols/stream/messages.js';

const PAGE = 4096;
const RAM = 4 << 20;

interface Rig {
  guest: Guest;
  sink: GuestSink;
  secondary: ColoSecondary;
  sent: ReturnPathMessage[];
  exits: string[];
  status: ColoStatus;
}

/** A loaded guest (idle, so only the test writes its RAM) made a COLO secondary, its return path decoded as the primary would. */
async function rig(): Promise<Rig> {
  const guest = await Guest.create({ ram: RAM, smp: 1, workload: { kind: 'idle' }, runState: 'inmigrate' });
  for (let p = 0; p < RAM / PAGE; p++) guest.writeByte(p * PAGE, p & 0xff);
  const reverse = new PassThrough();
  const sent: ReturnPathMessage[] = [];
  const decoder = new ReturnPathDecoder({ onMessage: (m) => sent.push(m), maxBitmapBytes: () => undefined });
  reverse.on('data', (chunk: Buffer) => decoder.push(chunk));
  const returnPath = new DestinationReturnPath(() => reverse, () => {});
  returnPath.open();
  const exits: string[] = [];
  const status = new ColoStatus((mode, reason) => exits.push(`${mode} ${reason}`));
  const sink = new GuestSink(guest.blocks);
  const secondary = new ColoSecondary({
    guest, blocks: guest.blocks, sink, returnPath, network: new GuestNetwork(guest.nic, undefined), status, digests: false,
    announceCheckpoint: () => {}, log: () => {}, trace: () => {}, closeLink: () => {},
  });
  secondary.start();
  return { guest, sink, secondary, sent, exits, status };
}

const colo = (message: 'checkpoint-request' | 'vmstate-send' | 'vmstate-size', value = 0): StreamMessage => ({ type: 'colo', message, value });
const stepsSent = (r: Rig) => r.sent.filter((m) => m.type === 'colo').map((m) => (m as { message: string }).message);
const ramDigest = (guest: Guest) => digestText(digestBlocksHere(guest.blocks));

/** Lands `data` as page `page` through the sink, as the stream decoder does. */
function landPage(sink: GuestSink, page: number, fill: number): void {
  const view = sink.pageView(0, page, 1);
  view.fill(fill);
  sink.pagesLoaded(0, page, 1);
}

/** The rejection's message (a promise that resolves fails the test). */
async function rejection(promise: Promise<unknown>): Promise<string> {
  return promise.then(() => expect.fail('resolved, expected a rejection'), (e: Error) => e.message);
}

async function flushed(): Promise<void> {
  await new Promise((r) => setImmediate(r));
}

describe('COLO secondary', function () {
  this.timeout(30_000);
  let r: Rig | undefined;
  afterEach(async () => {
    await r?.guest.destroy();
    r = undefined;
  });

  it('applies a checkpoint whole: the primary\'s pages land, the secondary\'s own writes are undone', async () => {
    r = await rig();
    await flushed();
    expect(stepsSent(r)).to.deep.equal(['checkpoint-ready']);
    const devices = r.guest.devices.saveAll();
    r.guest.writeByte(7 * PAGE, 0xee); // the secondary's own write since checkpoint 0
    await r.secondary.handle(colo('checkpoint-request', 1));
    expect(r.guest.runState).to.equal('colo');
    r.secondary.handle(colo('vmstate-send'));
    landPage(r.sink, 3, 0xaa);
    // Staged, not applied: guest RAM still has its own byte.
    expect(r.guest.blocks[0]!.slabs[0]![3 * PAGE]).to.equal(3);
    r.secondary.handle(colo('vmstate-size', devices.length));
    for (const saved of devices) r.secondary.handle({ type: 'device', ...saved });
    await flushed();
    expect(stepsSent(r)).to.deep.equal(['checkpoint-ready', 'checkpoint-reply', 'vmstate-received', 'vmstate-loaded']);
    const ram = r.guest.blocks[0]!.slabs[0]!;
    expect(ram[3 * PAGE]).to.equal(0xaa);
    expect(ram[3 * PAGE + PAGE - 1]).to.equal(0xaa);
    expect(ram[7 * PAGE], "the secondary's own write, undone").to.equal(7);
    expect(r.guest.runState).to.equal('running');
    expect(r.status.checkpoints).to.equal(1);
  });

  it('a checkpoint cut half-way is never half-applied: the takeover goes back to the last whole one', async () => {
    r = await rig();
    const atCheckpoint0 = ramDigest(r.guest);
    r.guest.writeByte(9 * PAGE, 0x11);
    await r.secondary.handle(colo('checkpoint-request', 1));
    r.secondary.handle(colo('vmstate-send'));
    landPage(r.sink, 5, 0x55);
    r.secondary.lost(new Error('the migration channel failed: read ECONNRESET'));
    expect(r.exits).to.deep.equal(['secondary error']);
    await r.secondary.failover();
    expect(ramDigest(r.guest)).to.equal(atCheckpoint0);
    expect(r.status.takeover).to.deep.equal({ checkpoint: 0 });
    expect(r.guest.runState).to.equal('running');
  });

  it('a checkpoint whose device state is refused leaves RAM and cache at the last whole checkpoint', async () => {
    r = await rig();
    const atCheckpoint0 = ramDigest(r.guest);
    const devices = r.guest.devices.saveAll();
    await r.secondary.handle(colo('checkpoint-request', 1));
    r.secondary.handle(colo('vmstate-send'));
    landPage(r.sink, 6, 0x66);
    r.secondary.handle(colo('vmstate-size', devices.length + 1));
    for (const saved of devices) r.secondary.handle({ type: 'device', ...saved });
    expect(() => r!.secondary.handle({ type: 'device', name: 'vga', instance: 0, version: 1, state: devices[0]!.state }))
      .to.throw(/Unknown savevm section or instance 'vga' 0/);
    r.secondary.lost(new Error('load failed'));
    expect(await r.secondary.failover()).to.equal(true);
    expect(ramDigest(r.guest)).to.equal(atCheckpoint0);
    expect(await r.secondary.failover(), 'a second failover does nothing').to.equal(false);
  });

  it('refuses pages outside a checkpoint: they would land in the running guest, unseen by any checkpoint', async () => {
    r = await rig();
    expect(() => r!.sink.pageView(0, 3, 1)).to.throw('The primary sent pages outside a COLO checkpoint');
    expect(() => r!.sink.zeroPages(0, 3, 1)).to.throw('The primary sent pages outside a COLO checkpoint');
    await r.secondary.handle(colo('checkpoint-request', 1));
    expect(() => r!.sink.pageView(0, 3, 1), 'before VMSTATE_SEND').to.throw('The primary sent pages outside a COLO checkpoint');
    expect(r.guest.blocks[0]!.slabs[0]![3 * PAGE]).to.equal(3);
  });

  it('refuses a step out of order, naming it and the phase', async () => {
    r = await rig();
    expect(() => r!.secondary.handle(colo('vmstate-send'))).to.throw("Unexpected COLO message 'vmstate-send' in COLO checkpoint phase 'idle'");
    expect(() => r!.secondary.handle({ type: 'eof' })).to.throw("Unexpected 'eof' message in COLO checkpoint phase 'idle'");
    await r.secondary.handle(colo('checkpoint-request', 1));
    expect(() => r!.secondary.handle(colo('vmstate-size', 3))).to.throw("Unexpected COLO message 'vmstate-size' in COLO checkpoint phase 'requested'");
    r.secondary.handle(colo('vmstate-send'));
    expect(() => r!.secondary.handle({ type: 'colo-output', packets: new Uint8Array(17) })).to.throw('COLO output of 17 bytes is not whole packets');
    expect(() => r!.secondary.handle({ type: 'ram-complete' })).to.throw("Unexpected 'ram-complete' message in COLO checkpoint phase 'ram'");
  });
});

describe("COLO on the primary's end of the return path", () => {
  function sourcePath(): { path: SourceReturnPath; reverse: PassThrough; bad: Error[] } {
    const reverse = new PassThrough();
    const path = new SourceReturnPath(reverse, [{ name: 'pc.ram', size: RAM }], PAGE);
    const bad: Error[] = [];
    path.on('bad', (e) => bad.push(e));
    path.open();
    path.acceptColo = true;
    return { path, reverse, bad };
  }

  it('takes the expected step, and refuses another one with both named', async () => {
    const { path, reverse } = sourcePath();
    const ready = path.coloMessage('checkpoint-ready');
    reverse.write(encodeReturnPath({ type: 'colo', message: 'checkpoint-ready' }));
    await ready;
    const reply = path.coloMessage('checkpoint-reply');
    reverse.write(encodeReturnPath({ type: 'colo', message: 'vmstate-loaded' }));
    expect(await rejection(reply)).to.equal("Unexpected COLO message 'vmstate-loaded', expected 'checkpoint-reply'");
  });

  it('takes two steps that come in one read, in turn', async () => {
    const { path, reverse } = sourcePath();
    const received = path.coloMessage('vmstate-received');
    reverse.write(Buffer.concat([encodeReturnPath({ type: 'colo', message: 'vmstate-received' }), encodeReturnPath({ type: 'colo', message: 'vmstate-loaded' })]));
    await received;
    await path.coloMessage('vmstate-loaded');
  });

  it('marks the path bad on packets that are not whole 16-byte packets, and on an unknown step', async () => {
    const torn = sourcePath();
    torn.reverse.write(encodeReturnPath({ type: 'colo-packets', packets: new Uint8Array(20) }));
    await flushed();
    expect(torn.bad.map((e) => e.message)).to.deep.equal(['COLO_PACKETS carries 20 bytes, not whole 16-byte packets']);
    const unknown = sourcePath();
    const waiting = unknown.path.coloMessage('checkpoint-reply');
    const { Packr } = await import('msgpackr');
    const body = new Packr({ useRecords: false }).pack({ message: 'checkpoint-now' });
    const header = Buffer.alloc(4);
    header.writeUInt16BE(0x102, 0);
    header.writeUInt16BE(body.length, 2);
    unknown.reverse.write(Buffer.concat([header, body]));
    expect(await rejection(waiting)).to.match(/^Received 'COLO_MESSAGE' message \(0x0102\) with a bad body: .*message/);
  });
});
