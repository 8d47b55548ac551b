/**
 * Bad input on the return path (destination → source), written into the
 * reverse direction of a live migration's connection by a fault proxy, at a
 * message boundary: an unknown type, a wrong length, a body that breaks its
 * schema, page requests the source must not serve, and messages it never
 * asked for. A precopy migration fails at once, saying why, and the source
 * guest runs on with every page; a postcopy one pauses (postcopy-paused on
 * both sides once the connection goes) and neither guest is lost: the
 * source keeps its stopped copy whole, the destination process stays up.
 */
import { expect } from 'chai';
import { Packr } from 'msgpackr';
import {
  BITMAP_END_MARK_SIZE, BITMAP_LENGTH_SIZE, ReturnPathType, RP_HEADER_SIZE,
} from '../protocols/return-path/constants.js';
import { encodeReturnPath } from '../protocols/return-path/encode.js';
import { FaultProxy } from './support/fault-proxy.js';
import { recordEvents, startInstance, stopAllInstances, type TestInstance } from './support/instances.js';
import {
  EVENTS, boundTcpUri, exitCode, memoryKeepsChanging, runState, waitForMigration,
} from './support/migration-driver.js';
import { logTail, uncaughtTrace } from './support/multifd-pair.js';
import {
  POSTCOPY, abGuestArgs, abRunning, activeWithBytes, expectAbHolds, migrateAndSwitch, postcopyLink, waitForStatuses, type AbGuest,
} from './support/postcopy-pair.js';

const MiB = 1 << 20;
const PAGE = 4096;
const RAM = 32 * MiB;
const packr = new Packr({ useRecords: false, variableMapSize: true });

/** Where a return-path frame ends (u16 type, u16 length, body; RECV_BITMAP's blob after it). */
function returnPathFrame(buffered: Buffer): number | undefined {
  if (buffered.length < RP_HEADER_SIZE) return undefined;
  let end = RP_HEADER_SIZE + buffered.readUInt16BE(2);
  if (buffered.readUInt16BE(0) === ReturnPathType.RECV_BITMAP) {
    if (buffered.length < end + BITMAP_LENGTH_SIZE) return undefined;
    end += BITMAP_LENGTH_SIZE + Number(buffered.readBigUInt64BE(end)) + BITMAP_END_MARK_SIZE;
  }
  return buffered.length >= end ? end : undefined;
}

/** A raw frame: any type number, any length field, any body bytes. */
function frame(type: number, body: Uint8Array, length = body.length): Buffer {
  const header = Buffer.alloc(RP_HEADER_SIZE);
  header.writeUInt16BE(type, 0);
  header.writeUInt16BE(length, 2);
  return Buffer.concat([header, body]);
}

interface BadInput {
  what: string;
  bytes: Buffer;
  /** The reason the source gives: error-desc in precopy, the log's pause reason in postcopy. */
  why: string | RegExp;
  /** Tried in precopy only: a request wrong only before postcopy, or another body error on the same decoder path. */
  precopyOnly?: boolean;
  /** Capabilities on both sides for the precopy run. */
  caps?: string[];
}

const CASES: BadInput[] = [
  {
    what: 'an unknown message type',
    bytes: frame(0x00ff, packr.pack({})),
    why: 'Received invalid message 0x00ff length 0x0001',
  },
  {
    what: 'a length over the 512-byte limit',
    bytes: frame(ReturnPathType.PONG, Buffer.alloc(0), 513),
    why: 'Received invalid message 0x0002 length 0x0201',
  },
  {
    what: 'a zero length',
    bytes: frame(ReturnPathType.PONG, Buffer.alloc(0)),
    why: "Received 'PONG' message (0x0002) with a bad body: the body is empty",
  },
  {
    what: 'a length one byte short of its body',
    bytes: Buffer.concat([frame(ReturnPathType.PONG, packr.pack({ value: 7 }).subarray(0, -1)), Buffer.from([7])]),
    precopyOnly: true,
    why: /^Received 'PONG' message \(0x0002\) with a bad body: /,
  },
  {
    what: 'a body that is not msgpack',
    bytes: frame(ReturnPathType.PONG, Buffer.from([0xc1, 0xc1, 0xc1])),
    precopyOnly: true,
    why: /^Received 'PONG' message \(0x0002\) with a bad body: the body is not valid msgpack/,
  },
  {
    what: "a body that breaks its type's schema",
    bytes: frame(ReturnPathType.REQ_PAGES_ID, packr.pack({ block: 'pc.ram', start: 'zero', len: PAGE })),
    precopyOnly: true,
    why: /^Received 'REQ_PAGES_ID' message \(0x0003\) with a bad body: /,
  },
  {
    what: 'REQ_PAGES before any REQ_PAGES_ID',
    bytes: encodeReturnPath({ type: 'req-pages', start: 0, len: PAGE }),
    why: 'Page request (REQ_PAGES) before any REQ_PAGES_ID named its RAM block',
  },
  {
    what: 'a page request naming an unknown RAM block',
    bytes: encodeReturnPath({ type: 'req-pages-id', block: 'vga.vram', start: 0, len: PAGE }),
    why: "Page request names RAM block 'vga.vram', which this guest does not have",
  },
  {
    what: 'a misaligned page request',
    bytes: encodeReturnPath({ type: 'req-pages-id', block: 'pc.ram', start: PAGE + 1, len: PAGE }),
    why: 'Misaligned page request, start: 0x1001 len: 4096 (pages are 4096 bytes)',
  },
  {
    what: 'a page request of a length that is not whole pages',
    bytes: encodeReturnPath({ type: 'req-pages-id', block: 'pc.ram', start: PAGE, len: 100 }),
    why: 'Misaligned page request, start: 0x1000 len: 100 (pages are 4096 bytes)',
  },
  {
    what: 'an empty page request',
    bytes: encodeReturnPath({ type: 'req-pages-id', block: 'pc.ram', start: PAGE, len: 0 }),
    why: 'Misaligned page request, start: 0x1000 len: 0 (pages are 4096 bytes)',
  },
  {
    what: 'a page request past the end of its block',
    bytes: encodeReturnPath({ type: 'req-pages-id', block: 'pc.ram', start: RAM - PAGE, len: 2 * PAGE }),
    why: "Page request overrun start=0x1fff000 len=0x2000 blocklen=0x2000000 in 'pc.ram'",
  },
  {
    what: 'a RECV_BITMAP never asked for',
    bytes: encodeReturnPath({ type: 'recv-bitmap', block: 'pc.ram', bitmap: new Uint8Array(0) }),
    why: "Received return-path message 'recv-bitmap', which this migration never asked for",
  },
  {
    what: 'a RESUME_ACK never asked for',
    bytes: encodeReturnPath({ type: 'resume-ack', value: 1 }),
    why: "Received return-path message 'resume-ack', which this migration never asked for",
  },
  {
    what: 'a COLO step in a migration without x-colo',
    bytes: encodeReturnPath({ type: 'colo', message: 'checkpoint-reply' }),
    why: "Received return-path message 'colo', which this migration never asked for",
  },
  {
    what: 'COLO output packets in a migration without x-colo',
    bytes: encodeReturnPath({ type: 'colo-packets', packets: new Uint8Array(16) }),
    why: "Received return-path message 'colo-packets', which this migration never asked for",
  },
  {
    what: 'a well-formed page request before postcopy started',
    bytes: encodeReturnPath({ type: 'req-pages-id', block: 'pc.ram', start: PAGE, len: PAGE }),
    why: 'The destination asked for pages before postcopy started',
    precopyOnly: true,
    caps: POSTCOPY,
  },
];

function matches(text: string | undefined, why: string | RegExp): boolean {
  return text !== undefined && (typeof why === 'string' ? text === why : why.test(text));
}

/** The reason a source gave for pausing its postcopy migration, from its JSON log. */
function pauseReason(source: TestInstance): string | undefined {
  for (const line of source.stderr().split('\n')) {
    if (!line.startsWith('{') || !line.includes('Migration paused')) continue;
    const entry = JSON.parse(line) as { msg?: string; error?: string };
    if (entry.msg === 'Detected IO failure for postcopy. Migration paused.') return entry.error;
  }
  return undefined;
}

describe('return path: bad input from the destination', function () {
  this.timeout(60_000);
  const proxies: FaultProxy[] = [];
  afterEach(async () => {
    await Promise.all(proxies.splice(0).map((p) => p.close()));
    await stopAllInstances();
  });

  /** A proxy to a tcp destination that forwards the return path in whole frames, so injected ones land between two. */
  async function framingProxy(destination: TestInstance): Promise<FaultProxy> {
    const port = Number((await boundTcpUri(destination.qmp)).split(':')[2]);
    const proxy = await FaultProxy.start({ host: '127.0.0.1', port }, { framesTowardsSource: returnPathFrame });
    proxies.push(proxy);
    return proxy;
  }

  describe('in precopy: the migration fails saying why, the source guest runs on with every page', () => {
    const AB: AbGuest = { start: 1 * MiB, end: 16 * MiB, smp: 1 };
    const GUEST = abGuestArgs('32M', AB, false);
    /** 4 MB/s: the migration is still sending its first pass when the bytes go in. */
    const SOURCE = [...abGuestArgs('32M', AB), '--param', 'max-bandwidth=4000000', ...EVENTS];

    for (const bad of CASES) {
      it(bad.what, async () => {
        const caps = bad.caps ?? [];
        const [destination, source] = await Promise.all([
          startInstance([...GUEST, ...caps, '--incoming', 'tcp:127.0.0.1:0'], { name: 'dst' }),
          startInstance([...SOURCE, ...caps], { name: 'src' }),
        ]);
        const events = recordEvents(source.qmp);
        const proxy = await framingProxy(destination);
        // A guest not running yet leaves only zero pages: the migration could end before the bytes go in.
        await abRunning(source, AB);
        await source.qmp.execute('migrate', { uri: proxy.uri });
        await proxy.waitForBytes(256 * 1024);
        await activeWithBytes(source.qmp, 256 * 1024);
        expect(proxy.writeTowardsSource(bad.bytes), 'connections written to').to.equal(1);

        const info = await waitForMigration(source.qmp, ['failed', 'completed', 'cancelled'], 30_000);
        expect(info.status, `source status\n${logTail(source)}`).to.equal('failed');
        expect(matches(info['error-desc'], bad.why), `error-desc '${info['error-desc']}', expected ${bad.why}`).to.equal(true);
        expect(events).to.deep.equal(['setup', 'active', 'failed']);

        // The source guest never stopped and lost nothing.
        expect(await runState(source.qmp)).to.equal('running');
        expect(await memoryKeepsChanging(source, AB.start, 64 * 1024, 30_000), 'the source guest does not run its workload').to.equal(true);
        await source.qmp.execute('stop');
        await expectAbHolds(source, AB, 'source');
        await source.qmp.execute('cont');

        // The destination lost its stream in precopy: it fails to load and exits 1, without crashing.
        expect(await exitCode(destination, 20_000)).to.equal(1);
        expect(uncaughtTrace(destination.stderr()), logTail(destination)).to.deep.equal([]);
        expect(uncaughtTrace(source.stderr()), logTail(source)).to.deep.equal([]);
      });
    }
  });

  describe('in postcopy: the migration pauses on both sides, neither guest is lost', () => {
    const AB: AbGuest = { start: 1 * MiB, end: 17 * MiB, smp: 2 };
    const GUEST = abGuestArgs('32M', AB, false);
    /**
     * Precopy at 64 MB/s never ends alone; after the switch, 2 MB/s of
     * background pages keep postcopy going for seconds, and the destination
     * guest, kept stopped, asks for none: the bytes are the only page
     * requests the source sees.
     */
    const SOURCE = [...abGuestArgs('32M', AB), ...POSTCOPY, ...EVENTS, ...postcopyLink(64_000_000, 2_000_000)];

    for (const bad of CASES.filter((c) => !c.precopyOnly)) {
      it(bad.what, async () => {
        const [destination, source] = await Promise.all([
          startInstance([...GUEST, ...POSTCOPY, ...EVENTS, '--incoming', 'tcp:127.0.0.1:0'], { name: 'dst' }),
          startInstance(SOURCE, { name: 'src' }),
        ]);
        // Stopped before the stream comes: it will not start at POSTCOPY_RUN, so it faults on nothing.
        await destination.qmp.execute('stop');
        const sourceEvents = recordEvents(source.qmp);
        const destinationEvents = recordEvents(destination.qmp);
        const proxy = await framingProxy(destination);
        await migrateAndSwitch(source, destination, proxy.uri, AB);
        expect(proxy.writeTowardsSource(bad.bytes), 'connections written to').to.equal(1);

        const sourceInfo = await waitForMigration(source.qmp, ['postcopy-paused', 'completed', 'failed'], 30_000);
        expect(sourceInfo.status, `source status: ${sourceInfo['error-desc']}\n${logTail(source)}`).to.equal('postcopy-paused');
        const reason = pauseReason(source);
        expect(matches(reason, bad.why), `pause reason '${reason}', expected ${bad.why}`).to.equal(true);
        const destinationInfo = await waitForStatuses(destination.qmp, ['postcopy-paused', 'completed', 'failed'], 30_000);
        expect(destinationInfo.status, `destination status: ${destinationInfo['error-desc']}\n${logTail(destination)}`).to.equal('postcopy-paused');
        expect(sourceEvents).to.deep.equal(['setup', 'active', 'postcopy-active', 'postcopy-paused']);
        expect(destinationEvents.filter((s) => s !== 'setup')).to.deep.equal(['active', 'postcopy-active', 'postcopy-paused']);

        // Both processes stay up; the source keeps its stopped copy, every page of it.
        expect(source.process.exitCode, 'source process').to.equal(null);
        expect(destination.process.exitCode, 'destination process').to.equal(null);
        expect(await runState(source.qmp)).to.be.oneOf(['finish-migrate', 'postmigrate']);
        await expectAbHolds(source, AB, 'source');
        expect(await runState(destination.qmp)).to.equal('paused');
        expect(uncaughtTrace(destination.stderr()), logTail(destination)).to.deep.equal([]);
        expect(uncaughtTrace(source.stderr()), logTail(source)).to.deep.equal([]);
      });
    }

    it('while the destination guest runs and pages flow at full speed: the source pauses, and so does the destination', async () => {
      const ab: AbGuest = { start: 1 * MiB, end: 113 * MiB, smp: 2 };
      const [destination, source] = await Promise.all([
        startInstance([...abGuestArgs('128M', ab, false), ...POSTCOPY, ...EVENTS, '--incoming', 'tcp:127.0.0.1:0'], { name: 'dst' }),
        startInstance([...abGuestArgs('128M', ab), ...POSTCOPY, ...EVENTS, ...postcopyLink(200_000_000, 0)], { name: 'src' }),
      ]);
      const proxy = await framingProxy(destination);
      await migrateAndSwitch(source, destination, proxy.uri, ab);
      // Between two of the destination's own page requests.
      expect(proxy.writeTowardsSource(frame(0x00ff, packr.pack({}))), 'connections written to').to.equal(1);

      const sourceInfo = await waitForMigration(source.qmp, ['postcopy-paused', 'completed', 'failed'], 30_000);
      expect(sourceInfo.status, logTail(source)).to.equal('postcopy-paused');
      expect(pauseReason(source)).to.equal('Received invalid message 0x00ff length 0x0001');
      const destinationInfo = await waitForStatuses(destination.qmp, ['postcopy-paused', 'completed', 'failed'], 30_000);
      expect(destinationInfo.status, `destination: ${destinationInfo['error-desc']}\n${logTail(destination)}`).to.equal('postcopy-paused');
      expect(destination.process.exitCode, 'destination process').to.equal(null);
      expect(await runState(destination.qmp)).to.equal('running');
      expect(await runState(source.qmp)).to.be.oneOf(['finish-migrate', 'postmigrate']);
      await expectAbHolds(source, ab, 'source');
    });
  });
});
