/**
 * `livemig analyze`, run as a user runs it (the CLI in a process of its
 * own), on streams real instances wrote: a running ab guest saved with
 * file: (its page counts and blocks must be the source's query-migrate
 * figures), a tcp migration captured on the wire, a postcopy migration's
 * capture with its commands and package, and streams cut short or with a
 * byte changed, each reported at its byte offset, exit status 1, after what
 * was read before it.
 */
import { expect } from 'chai';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ChannelKind } from '../protocols/hello/constants.js';
import { encodeHello } from '../protocols/hello/encode.js';
import { runCli } from './support/cli.js';
import { FaultProxy } from './support/fault-proxy.js';
import { startInstance, stopAllInstances, type TestInstance } from './support/instances.js';
import { UNLIMITED, queryMigrate, sleep, waitForMigration, type MigrateInfo } from './support/migration-driver.js';
import { logTail, multifdArgs } from './support/multifd-pair.js';
import { POSTCOPY, abGuestArgs, migrateAndSwitch, postcopyLink, waitForStatuses, type AbGuest } from './support/postcopy-pair.js';
import { scratchDirPerTest } from './support/scratch-dir.js';

const MiB = 1 << 20;
const HELLO_SIZE = 32;

/** `livemig analyze ARGS`, to its end. */
const analyze = (args: string[]) => runCli('analyze', args, 30_000);

/** The members of `analyze --json` the tests read. */
interface JsonReport {
  bytes: number;
  complete: boolean;
  hello: { offset: number; kind: string; 'channel-id': number; 'channel-count': number } | null;
  header: { offset: number; 'page-size': number; vcpus: number; capabilities: string[] } | null;
  'ram-blocks': { name: string; size: number; frames: number; normal: number; zero: number; compressed: number; postcopy: number }[];
  pages: { normal: number; zero: number; compressed: number };
  devices: { name: string; count: number; packaged: number; size?: number }[];
  commands: { command: string; count: number; offset: number; values?: number[]; inner?: { command: string; count: number }[] }[];
  'command-totals': Record<string, number>;
  'postcopy-package-offset'?: number;
  end: { 'eof-offset': number | null; frames: number };
  error: { code: string; message: string; offset: number; frame?: number; 'frame-offset'?: number; expected: string } | null;
}

async function analyzeJson(args: string[]): Promise<{ code: number | null; report: JsonReport; stderr: string }> {
  const { code, stdout, stderr } = await analyze([...args, '--json']);
  return { code, report: JSON.parse(stdout) as JsonReport, stderr };
}

/** Where each frame starts: the test's own walk over the frame headers (type, flags, reserved, u32 length). */
function frameOffsets(bytes: Buffer): number[] {
  const offsets: number[] = [];
  for (let at = HELLO_SIZE; at + 8 <= bytes.length; at += 8 + bytes.readUInt32BE(at + 4)) offsets.push(at);
  return offsets;
}

/** The analyzer's page counts and block list are the source's own figures. */
function expectSourceFigures(report: JsonReport, info: MigrateInfo, blocks: { name: string; size: number }[]): void {
  const ram = info.ram!;
  expect(report['ram-blocks'].map((b) => ({ name: b.name, size: b.size }))).to.deep.equal(blocks);
  expect(report.pages, 'pages with data and zero pages, against query-migrate normal and duplicate')
    .to.deep.include({ normal: ram.normal, zero: ram.duplicate, compressed: 0 });
  expect(report.pages.normal, 'the guest wrote pages').to.be.above(0);
}

/**
 * The port a `--incoming tcp:127.0.0.1:0` destination bound. Its monitor
 * may answer a moment before the listener is up: wait for its address.
 */
async function listeningPort(destination: TestInstance, timeoutMs = 20_000): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const address = (await queryMigrate(destination.qmp))['socket-address']?.[0];
    if (address?.type === 'inet' && address.port) return Number(address.port);
    if (Date.now() > deadline) throw new Error(`the destination shows no inet socket-address after ${timeoutMs} ms`);
    await sleep(20);
  }
}

async function guestBlocks(instance: TestInstance): Promise<{ name: string; size: number }[]> {
  const guest = await instance.qmp.execute<{ blocks: { name: string; size: number }[] }>('__org.livemig_query-guest');
  return guest.blocks.map(({ name, size }) => ({ name, size }));
}

/** Saves a guest of `args` with file:PATH (the guest runs on); the source's last query-migrate. */
async function saveGuest(args: string[], uri: string): Promise<{ source: TestInstance; info: MigrateInfo }> {
  const source = await startInstance([...args, ...UNLIMITED], { name: 'src' });
  await source.qmp.execute('migrate', { uri });
  const info = await waitForMigration(source.qmp, ['completed', 'failed']);
  expect(info.status, info['error-desc']).to.equal('completed');
  return { source, info };
}

describe('livemig analyze: what a migration stream holds', function () {
  this.timeout(60_000);
  const proxies: FaultProxy[] = [];
  const scratch = scratchDirPerTest('livemig-analyze-', async () => {
    await Promise.all(proxies.splice(0).map((p) => p.close()));
    await stopAllInstances();
  });

  it('file: a running ab guest saved to a file shows its blocks, devices and the page counts query-migrate gave', async () => {
    const path = join(scratch(), 'guest.mig');
    const { source, info } = await saveGuest(
      ['--ram', '128M', '--block', 'vga.vram=8M', '--smp', '2', '--workload', 'ab', '--ab-start', '1M', '--ab-end', '24M'],
      `file:${path}`,
    );
    const blocks = await guestBlocks(source);
    const size = readFileSync(path).length;

    const { code, report, stderr } = await analyzeJson(['--file', path]);
    expect({ code, stderr }).to.deep.equal({ code: 0, stderr: '' });
    expect(report.complete).to.equal(true);
    expect(report.error).to.equal(null);
    expect(report.bytes, 'every byte of the file is stream').to.equal(size);
    expect(size, 'the file holds what query-migrate says was transferred').to.equal(info.ram!.transferred);
    expect(report.hello).to.deep.include({ offset: 0, kind: 'main', 'channel-id': 0, 'channel-count': 1 });
    expect(report.header).to.deep.include({ offset: HELLO_SIZE, 'page-size': 4096, vcpus: 2, capabilities: [] });
    expectSourceFigures(report, info, blocks);
    expect(report['ram-blocks'][0]!.frames).to.be.above(0);
    // Each device's state once, at the end; vCPU state among them.
    expect(report.devices.map((d) => d.name)).to.include('cpu');
    for (const device of report.devices) expect(device, device.name).to.deep.include({ count: 1, packaged: 0 });
    // file: has no return path: no commands but the end of RAM and the EOF.
    expect(report.commands.map((c) => c.command)).to.deep.equal(['ram-complete', 'eof']);
    expect(report.end['eof-offset']).to.equal(report.commands.at(-1)!.offset);

    const text = await analyze(['--file', path]);
    expect({ code: text.code, stderr: text.stderr }).to.deep.equal({ code: 0, stderr: '' });
    for (const section of ['stream', 'hello', 'header', 'RAM blocks', 'devices', 'commands', 'end']) {
      expect(text.stdout, section).to.match(new RegExp(`^${section}\\s`, 'm'));
    }
    // One row per block (index, name, size, page count, frames, normal, zero), and their total.
    const ramRow = /^\s+0\s+pc\.ram\s+128 MiB\s+\(32768\)\s+\d+\s+(\d+)\s+(\d+)$/m.exec(text.stdout);
    const vramRow = /^\s+1\s+vga\.vram\s+8 MiB\s+\(2048\)\s+\d+\s+(\d+)\s+(\d+)$/m.exec(text.stdout);
    expect(ramRow && vramRow, text.stdout).to.not.equal(null);
    expect(Number(ramRow![1]) + Number(vramRow![1])).to.equal(info.ram!.normal);
    expect(text.stdout).to.match(new RegExp(`^\\s+total\\s+136 MiB\\s+\\(34816\\)\\s+\\d+\\s+${info.ram!.normal}\\s+${info.ram!.duplicate}$`, 'm'));
    expect(text.stdout).to.include(`EOF at byte ${report.end['eof-offset']}`);
  });

  it('file:PATH,offset=N: --offset N reads the stream where it starts, and offsets count from the file\'s start', async () => {
    const path = join(scratch(), 'guest.mig');
    writeFileSync(path, Buffer.alloc(4096, 0xa5));
    const { info } = await saveGuest(['--ram', '16M', '--fill', 'random'], `file:${path},offset=4K`);

    const { code, report } = await analyzeJson(['--file', path, '--offset', '4K']);
    expect(code).to.equal(0);
    expect(report.hello!.offset).to.equal(4096);
    expect(report.header!.offset).to.equal(4096 + HELLO_SIZE);
    expect(report.pages).to.deep.include({ normal: info.ram!.normal, zero: info.ram!.duplicate });
    expect(report.bytes).to.equal(readFileSync(path).length - 4096);

    // From byte 0 the prefix is no stream: named at once.
    const wrong = await analyzeJson(['--file', path]);
    expect(wrong.code).to.equal(1);
    expect(wrong.report.error).to.deep.include({ code: 'BAD_MAGIC', offset: 0 });
  });

  it('exec: and a background snapshot: a stream written through a command, and a snapshot of a running guest, read with their page counts', async () => {
    const piped = join(scratch(), 'piped.mig');
    const { info } = await saveGuest(['--ram', '32M', '--workload', 'ab', '--ab-start', '1M', '--ab-end', '16M'], `exec:cat > ${piped}`);
    const viaExec = await analyzeJson(['--file', piped]);
    expect(viaExec.code).to.equal(0);
    expect(viaExec.report.pages).to.deep.include({ normal: info.ram!.normal, zero: info.ram!.duplicate });
    await stopAllInstances();

    const snapshot = join(scratch(), 'snapshot.mig');
    const saved = await saveGuest(['--ram', '32M', '--smp', '2', '--workload', 'ab', '--ab-start', '1M', '--ab-end', '16M', '--cap', 'background-snapshot'], `file:${snapshot}`);
    const { code, report } = await analyzeJson(['--file', snapshot]);
    expect(code).to.equal(0);
    expect(report.header!.capabilities).to.include('background-snapshot');
    expect(report.pages).to.deep.include({ normal: saved.info.ram!.normal, zero: saved.info.ram!.duplicate });
    expect(report.commands.at(-1)!.command).to.equal('eof');
  });

  it('tcp: the bytes a source sent, captured on the wire, read as the same stream with its return-path commands', async () => {
    const ab = ['--workload', 'ab', '--ab-start', '1M', '--ab-end', '16M'];
    const [destination, source] = await Promise.all([
      startInstance(['--ram', '64M', '--incoming', 'tcp:127.0.0.1:0'], { name: 'dst' }),
      startInstance(['--ram', '64M', ...ab, ...UNLIMITED], { name: 'src' }),
    ]);
    const port = await listeningPort(destination);
    const proxy = await FaultProxy.start({ host: '127.0.0.1', port }, { capture: true });
    proxies.push(proxy);
    await source.qmp.execute('migrate', { uri: proxy.uri });
    const info = await waitForMigration(source.qmp, ['completed', 'failed']);
    expect(info.status, info['error-desc']).to.equal('completed');
    expect((await waitForMigration(destination.qmp, ['completed', 'failed'])).status).to.equal('completed');
    const captured = proxy.captured();
    const path = join(scratch(), 'capture.bin');
    writeFileSync(path, captured);

    const { code, report } = await analyzeJson(['--file', path]);
    expect(code).to.equal(0);
    expect(report.bytes).to.equal(captured.length);
    expectSourceFigures(report, info, await guestBlocks(source));
    // The return path opens first, and a PING checks it, before the header.
    const commands = report.commands.map((c) => c.command);
    expect(commands.slice(0, 2)).to.deep.equal(['open-return-path', 'ping']);
    // The PINGs after it time the stream's drain at each dirty sync (pipeline-drain.ts), from 0x10000 up.
    const [first, ...probes] = report.commands[1]!.values!;
    expect(first).to.equal(1);
    expect(probes).to.deep.equal(Array.from({ length: probes.length }, (_, i) => 0x10000 + i));
    expect(report.commands[1]!.offset).to.be.below(report.header!.offset);
    expect(commands.slice(-2)).to.deep.equal(['ram-complete', 'eof']);
  });

  it('multifd: the main stream of a multifd migration holds its round-end flushes in order; the pages went on the channels', async () => {
    const multifd = multifdArgs({ channels: 2 });
    const [destination, source] = await Promise.all([
      startInstance(['--ram', '64M', ...multifd, '--incoming', 'tcp:127.0.0.1:0'], { name: 'dst' }),
      startInstance(['--ram', '64M', '--workload', 'ab', '--ab-start', '1M', '--ab-end', '16M', ...multifd, ...UNLIMITED], { name: 'src' }),
    ]);
    const port = await listeningPort(destination);
    const proxy = await FaultProxy.start({ host: '127.0.0.1', port }, { capture: true });
    proxies.push(proxy);
    await source.qmp.execute('migrate', { uri: proxy.uri });
    const info = await waitForMigration(source.qmp, ['completed', 'failed']);
    expect(info.status, info['error-desc']).to.equal('completed');
    const path = join(scratch(), 'main.bin');
    writeFileSync(path, proxy.captured());

    const { code, report } = await analyzeJson(['--file', path]);
    expect(code).to.equal(0);
    expect(report.header!.capabilities).to.include('multifd');
    expect(report.pages, 'every page went on a multifd channel').to.deep.include({ normal: 0, zero: 0 });
    // While precopy iterates, each round's end is followed by the PING that times the stream's drain (pipeline-drain.ts).
    const flushes = report.commands.filter((c) => c.command === 'round-end');
    const rounds = flushes.flatMap((f) => f.values!);
    expect(rounds.length).to.be.at.least(2);
    expect(rounds, 'the rounds in order').to.deep.equal(Array.from({ length: rounds.length }, (_, i) => i));
    expect(report['command-totals']['round-end']).to.equal(flushes.reduce((n, f) => n + f.count, 0));
    expect(report.commands[report.commands.indexOf(flushes[0]!) + 1]).to.deep.include({ command: 'ping', values: [0x10000] });
    // Every flush before the end of RAM (DESIGN rule 4: the channels drained before any device state).
    const commands = report.commands.map((c) => c.command);
    expect(commands.indexOf('round-end')).to.be.below(commands.indexOf('ram-complete'));

    const text = await analyze(['--file', path]);
    expect(text.stdout).to.match(/ round-end 0$/m);
    expect(text.stdout).to.match(/ ping 65536$/m);
    expect(text.stdout).to.include('multifd: pages went on the multifd channels');
  });

  it('postcopy: a capture shows the advise, the discard list, the package with its devices, and the pages sent after it', async function () {
    this.timeout(90_000);
    const AB: AbGuest = { start: 1 * MiB, end: 17 * MiB, smp: 1 };
    const [destination, source] = await Promise.all([
      startInstance([...abGuestArgs('32M', AB, false), ...POSTCOPY, '--incoming', 'tcp:127.0.0.1:0'], { name: 'dst' }),
      startInstance([...abGuestArgs('32M', AB), ...POSTCOPY, ...postcopyLink(32_000_000, 32_000_000)], { name: 'src' }),
    ]);
    const port = await listeningPort(destination);
    const proxy = await FaultProxy.start({ host: '127.0.0.1', port }, { capture: true });
    proxies.push(proxy);
    await migrateAndSwitch(source, destination, proxy.uri, AB);
    const info = await waitForMigration(source.qmp, ['completed', 'failed', 'postcopy-paused'], 60_000);
    expect(info.status, `${info['error-desc']}\n${logTail(source)}`).to.equal('completed');
    expect((await waitForStatuses(destination.qmp, ['completed', 'failed', 'postcopy-paused'])).status).to.equal('completed');
    const path = join(scratch(), 'postcopy.bin');
    writeFileSync(path, proxy.captured());

    const { code, report } = await analyzeJson(['--file', path]);
    expect(code, JSON.stringify(report.error)).to.equal(0);
    expect(report.header!.capabilities).to.include('postcopy-ram');
    expectSourceFigures(report, info, await guestBlocks(source));

    const commands = report.commands.map((c) => c.command);
    const at = (command: string) => commands.indexOf(command);
    expect(at('postcopy-advise'), commands.join(' ')).to.be.above(-1);
    expect(at('packaged')).to.be.above(at('postcopy-advise'));
    // The discard list, when there is one, comes before the package.
    if (at('postcopy-discard') >= 0) expect(at('postcopy-discard')).to.be.below(at('packaged'));
    const pkg = report.commands[at('packaged')]!;
    expect(report['postcopy-package-offset']).to.equal(pkg.offset);
    const inner = pkg.inner!.map((c) => c.command);
    expect(inner[0]).to.equal('postcopy-listen');
    // livemig's package ends with a PING the destination answers once it is loaded; POSTCOPY_RUN follows on its own.
    expect(inner.at(-1)).to.equal('ping');
    expect(at('postcopy-run')).to.be.above(at('packaged'));
    expect(inner).to.include('device');
    // The devices went in the package, and only there.
    for (const device of report.devices) expect(device, device.name).to.deep.include({ count: 1, packaged: 1 });
    expect(commands.slice(-2)).to.deep.equal(['ram-complete', 'eof']);
    const postcopyPages = report['ram-blocks'].reduce((n, b) => n + b.postcopy, 0);
    expect(postcopyPages, 'pages sent after the package').to.be.above(0);
    expect(report['command-totals'].ping, 'pings: the return path check, around the package').to.be.at.least(3);

    const text = await analyze(['--file', path]);
    expect(text.code).to.equal(0);
    expect(text.stdout).to.match(/packaged \([\d.]+ (B|KiB)\): postcopy-listen, ping 3, device ×\d+, ping 6/);
    expect(text.stdout).to.match(/postcopy-advise \(page size: host 4096, target 4096\)/);
    expect(text.stdout).to.match(/^\s+#\s+block\s+size\s+\(pages\)\s+frames\s+normal\s+zero\s+postcopy$/m);
  });

  describe('a stream cut short or with a byte changed', function () {
    /** A 16 MiB guest of random bytes saved to a file: every page a normal one. */
    async function savedStream(): Promise<{ path: string; bytes: Buffer; info: MigrateInfo }> {
      const path = join(scratch(), 'guest.mig');
      const { info } = await saveGuest(['--ram', '16M', '--fill', 'random'], `file:${path}`);
      return { path, bytes: readFileSync(path), info };
    }

    it('truncated inside a frame: the error names the end of the file and the frame, after the sections read', async () => {
      const { bytes } = await savedStream();
      const frames = frameOffsets(bytes);
      const frame = frames.findIndex((offset) => offset > bytes.length / 2);
      const cut = frames[frame - 1]! + 1000;
      const path = join(scratch(), 'cut.mig');
      writeFileSync(path, bytes.subarray(0, cut));

      const text = await analyze(['--file', path]);
      expect(text.code).to.equal(1);
      expect(text.stderr).to.match(new RegExp(`^livemig analyze: .*cut\\.mig: error at byte ${cut}: Migration stream truncated in a PAGES frame`));
      expect(text.stdout, 'the sections before the error').to.match(/^header\s+at byte 32:/m);
      expect(text.stdout).to.match(/^\s+0\s+pc\.ram\s+16 MiB/m);
      expect(text.stdout).to.match(new RegExp(`^error\\s+at byte ${cut} \\(frame ${frame - 1}, which starts at byte ${frames[frame - 1]}\\): `, 'm'));
      expect(text.stdout).to.match(/^\s+expected there: the rest of that frame/m);

      const { code, report } = await analyzeJson(['--file', path]);
      expect(code).to.equal(1);
      expect(report.complete).to.equal(false);
      expect(report.error).to.deep.include({ code: 'TRUNCATED', offset: cut, frame: frame - 1, 'frame-offset': frames[frame - 1] });
      expect(report.pages.normal, 'pages of the frames read whole').to.be.above(0);
      expect(report.end['eof-offset']).to.equal(null);
    });

    it('truncated between two frames: the stream has no EOF, named at the end of the file', async () => {
      const { bytes } = await savedStream();
      const frames = frameOffsets(bytes);
      const cut = frames[Math.floor(frames.length / 2)]!;
      const path = join(scratch(), 'cut.mig');
      writeFileSync(path, bytes.subarray(0, cut));
      const { code, report, stderr } = await analyzeJson(['--file', path]);
      expect(code).to.equal(1);
      expect(report.error).to.deep.include({ code: 'NO_EOF', offset: cut });
      expect(report.error!.expected).to.match(/EOF/);
      expect(stderr).to.include(`error at byte ${cut}: The stream ends after ${Math.floor(frames.length / 2)} frames without its EOF`);
    });

    it('a corrupted byte in a frame header, in a control message, or in the magic: named at its offset, exit status 1', async () => {
      const { bytes } = await savedStream();
      const frames = frameOffsets(bytes);
      const middle = frames[Math.floor(frames.length / 2)]!;

      const badType = Buffer.from(bytes);
      badType[middle] = 0x7f;
      writeFileSync(join(scratch(), 'type.mig'), badType);
      const typeText = await analyze(['--file', join(scratch(), 'type.mig')]);
      expect(typeText.code).to.equal(1);
      expect(typeText.stderr).to.include(`error at byte ${middle}: Unknown frame type 127`);
      expect(typeText.stdout).to.match(/^\s+expected there: a frame header: type 1 \(CONTROL\), 2 \(PAGES\) or 3 \(XBZRLE\)/m);
      expect(typeText.stdout, 'the sections before the error').to.match(/^RAM blocks\s/m);

      // The stream header's msgpack body (it starts 8 bytes into the first frame).
      const badHeader = Buffer.from(bytes);
      badHeader[HELLO_SIZE + 8] = 0xc1;
      writeFileSync(join(scratch(), 'header.mig'), badHeader);
      const header = await analyzeJson(['--file', join(scratch(), 'header.mig')]);
      expect(header.code).to.equal(1);
      expect(header.report.error).to.deep.include({ code: 'BAD_MESSAGE', offset: HELLO_SIZE + 8, frame: 0, 'frame-offset': HELLO_SIZE });
      expect(header.report.hello, 'the hello before it').to.not.equal(null);
      expect(header.report.header).to.equal(null);

      const badMagic = Buffer.from(bytes);
      badMagic[1] = 0;
      writeFileSync(join(scratch(), 'magic.mig'), badMagic);
      const magic = await analyze(['--file', join(scratch(), 'magic.mig')]);
      expect(magic.code).to.equal(1);
      expect(magic.stderr).to.match(/error at byte 0: Not a livemig migration stream \(magic 0x4c004d47, expected 0x4c564d47\)/);
    });

    it("a multifd channel's capture is named as such: analyze reads the main channel", async () => {
      const path = join(scratch(), 'multifd.bin');
      writeFileSync(path, encodeHello({ kind: ChannelKind.MULTIFD, channelId: 1, channelCount: 2 }));
      const { code, report } = await analyzeJson(['--file', path]);
      expect(code).to.equal(1);
      expect(report.hello).to.deep.include({ kind: 'multifd', 'channel-id': 1, 'channel-count': 2 });
      expect(report.error).to.deep.include({ code: 'NOT_MAIN_CHANNEL', offset: 6 });
    });

    it('a file that does not exist: one line, exit status 1; no --file: a usage error, exit status 2', async () => {
      const missing = await analyze(['--file', join(scratch(), 'nothing.mig')]);
      expect(missing.code).to.equal(1);
      expect(missing.stderr).to.match(/^livemig analyze: cannot read .*nothing\.mig: ENOENT/);
      const usage = await analyze([]);
      expect(usage.code).to.equal(2);
      expect(usage.stderr).to.match(/^livemig analyze: required option '--file <PATH>' not specified/);
    });
  });
});
