/**
 * Descriptors handed over the monitor as libvirt hands them (SCM_RIGHTS on
 * the QMP unix socket, with getfd or add-fd), against real instances: a
 * migration over a socket pair, a save to a pipe and to a file and a
 * restore from it, `file:/dev/fdset/N,offset=` on both sides, QEMU's
 * errors, and no descriptor left open that no command claimed.
 */
import { expect } from 'chai';
import { execFileSync } from 'node:child_process';
import { closeSync, createWriteStream, mkdtempSync, openSync, readFileSync, readSync, rmSync, statSync, writeFileSync, constants as fsc } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { QmpError } from '../protocols/qmp/errors.js';
import { startInstance, stopAllInstances, type TestInstance } from './support/instances.js';
import { allDigests, waitForMigration } from './support/migration-driver.js';
import { holdings, steadyHoldings } from './support/multifd-pair.js';
import { abGuestArgs, expectAbHolds, type AbGuest } from './support/postcopy-pair.js';

const MiB = 1 << 20;
const AB: AbGuest = { start: 1 * MiB, end: 9 * MiB, smp: 1 };
const RAM = '32M';

const refusal = (err: unknown) => (err instanceof QmpError ? `${err.errorClass}: ${err.desc}` : `not a QMP error: ${String(err)}`);

/** A connected pair of unix stream sockets (a socketpair, made through a listener), by descriptor. */
async function socketPair(dir: string): Promise<{ a: net.Socket; b: net.Socket; fds: [number, number] }> {
  const path = join(dir, `pair-${Date.now()}.sock`);
  const server = net.createServer({ pauseOnConnect: true });
  await new Promise<void>((resolve) => server.listen(path, resolve));
  const accepted = new Promise<net.Socket>((resolve) => server.once('connection', resolve));
  const a = net.connect({ path });
  await new Promise((resolve) => a.once('connect', resolve));
  a.pause();
  const b = await accepted;
  server.close();
  const fd = (s: net.Socket) => (s as unknown as { _handle: { fd: number } })._handle.fd;
  return { a, b, fds: [fd(a), fd(b)] };
}

/** Runs the source to completion; both sides then hold the same guest, the destination's passing the ab check. */
async function expectMigrated(source: TestInstance, destination: TestInstance): Promise<void> {
  const s = await waitForMigration(source.qmp, ['completed', 'failed', 'cancelled'], 60_000);
  expect(s.status, `source: ${s['error-desc']}`).to.equal('completed');
  const d = await waitForMigration(destination.qmp, ['completed', 'failed'], 60_000);
  expect(d.status, `destination: ${d['error-desc']}`).to.equal('completed');
  expect(await allDigests(destination.qmp)).to.deep.equal(await allDigests(source.qmp));
  await expectAbHolds(destination, AB, 'destination');
}

describe('descriptors passed over the monitor (getfd, add-fd, fd: and /dev/fdset URIs)', function () {
  this.timeout(90_000);
  let dir: string;
  beforeEach(() => (dir = mkdtempSync(join(tmpdir(), 'livemig-fds-'))));
  afterEach(async () => {
    await stopAllInstances();
    rmSync(dir, { recursive: true, force: true });
  });

  const source = () => startInstance([...abGuestArgs(RAM, AB), '--cap', 'events'], { name: 'src' });
  const destination = () => startInstance([...abGuestArgs(RAM, AB, false), '-S', '--incoming', 'defer'], { name: 'dst' });

  it('migrates over a socket pair handed to both sides with getfd', async () => {
    const [src, dst] = await Promise.all([source(), destination()]);
    const { a, b, fds } = await socketPair(dir);
    expect(await dst.qmp.execute('getfd', { fdname: 'in' }, { fds: [fds[1]] })).to.deep.equal({});
    expect(await src.qmp.execute('getfd', { fdname: 'out' }, { fds: [fds[0]] })).to.deep.equal({});
    // Ours are copies: the instances hold the connection from here.
    a.destroy();
    b.destroy();
    await dst.qmp.execute('migrate-incoming', { uri: 'fd:in' });
    await src.qmp.execute('migrate', { uri: 'fd:out' });
    await expectMigrated(src, dst);
    // The names are used up, as in QEMU.
    expect(await src.qmp.execute('closefd', { fdname: 'out' }).catch(refusal)).to.equal("GenericError: File descriptor named 'out' not found");
  });

  it('saves to a pipe handed with getfd, and restores from the saved file handed the same way', async () => {
    const src = await source();
    const fifo = join(dir, 'save.fifo');
    execFileSync('mkfifo', [fifo]);
    const reader = openSync(fifo, fsc.O_RDONLY | fsc.O_NONBLOCK);
    const writer = openSync(fifo, fsc.O_WRONLY);
    const saved = join(dir, 'saved.bin');
    // A non-blocking pipe is read through libuv (a net.Socket), as the instance's own pipe ends are.
    const copied = pipeline(new net.Socket({ fd: reader, readable: true, writable: false }), createWriteStream(saved));
    await src.qmp.execute('getfd', { fdname: 'save' }, { fds: [writer] });
    closeSync(writer);
    await src.qmp.execute('migrate', { uri: 'fd:save' });
    const s = await waitForMigration(src.qmp, ['completed', 'failed'], 60_000);
    expect(s.status, s['error-desc']).to.equal('completed');
    await copied;
    expect(statSync(saved).size).to.be.above(AB.end - AB.start);

    const dst = await destination();
    const file = openSync(saved, 'r');
    await dst.qmp.execute('getfd', { fdname: 'restore' }, { fds: [file] });
    closeSync(file);
    await dst.qmp.execute('migrate-incoming', { uri: 'fd:restore' });
    const d = await waitForMigration(dst.qmp, ['completed', 'failed'], 60_000);
    expect(d.status, d['error-desc']).to.equal('completed');
    expect(await allDigests(dst.qmp)).to.deep.equal(await allDigests(src.qmp));
    await expectAbHolds(dst, AB, 'restored');
  });

  it('saves to a regular file handed with getfd (from its current offset) and restores from it through the channels form', async () => {
    const src = await source();
    const saved = join(dir, 'saved.bin');
    writeFileSync(saved, 'HEADER--');
    const out = openSync(saved, 'a');
    await src.qmp.execute('getfd', { fdname: 'save' }, { fds: [out] });
    closeSync(out);
    await src.qmp.execute('migrate', { channels: [{ 'channel-type': 'main', addr: { transport: 'socket', type: 'fd', str: 'save' } }] });
    const s = await waitForMigration(src.qmp, ['completed', 'failed'], 60_000);
    expect(s.status, s['error-desc']).to.equal('completed');
    expect(readFileSync(saved).subarray(0, 8).toString()).to.equal('HEADER--');

    const dst = await destination();
    const file = openSync(saved, 'r');
    // Past the header: the descriptor is read from where it stands.
    readSync(file, Buffer.alloc(8), 0, 8, null);
    await dst.qmp.execute('getfd', { fdname: 'restore' }, { fds: [file] });
    closeSync(file);
    await dst.qmp.execute('migrate-incoming', { channels: [{ 'channel-type': 'main', addr: { transport: 'socket', type: 'fd', str: 'restore' } }] });
    const d = await waitForMigration(dst.qmp, ['completed', 'failed'], 60_000);
    expect(d.status, d['error-desc']).to.equal('completed');
    expect(await allDigests(dst.qmp)).to.deep.equal(await allDigests(src.qmp));
  });

  it('saves to file:/dev/fdset/N,offset= and restores from another fd set at the same offset', async () => {
    const src = await source();
    const saved = join(dir, 'saved.bin');
    const out = openSync(saved, 'w');
    expect(await src.qmp.execute('add-fd', { 'fdset-id': 3, opaque: 'save' }, { fds: [out] })).to.deep.include({ 'fdset-id': 3 });
    closeSync(out);
    await src.qmp.execute('migrate', { uri: 'file:/dev/fdset/3,offset=4096' });
    const s = await waitForMigration(src.qmp, ['completed', 'failed'], 60_000);
    expect(s.status, s['error-desc']).to.equal('completed');
    expect(readFileSync(saved).subarray(0, 4096).every((b) => b === 0)).to.equal(true);

    const dst = await destination();
    const file = openSync(saved, 'r');
    const { 'fdset-id': set } = await dst.qmp.execute<{ 'fdset-id': number; fd: number }>('add-fd', {}, { fds: [file] });
    closeSync(file);
    expect(set).to.equal(0);
    await dst.qmp.execute('migrate-incoming', { uri: `file:/dev/fdset/${set},offset=4096` });
    const d = await waitForMigration(dst.qmp, ['completed', 'failed'], 60_000);
    expect(d.status, d['error-desc']).to.equal('completed');
    expect(await allDigests(dst.qmp)).to.deep.equal(await allDigests(src.qmp));
  });

  it("answers getfd, closefd, add-fd, remove-fd and query-fdsets with QEMU's checks and errors", async () => {
    const vm = await startInstance(['--ram', RAM], { name: 'vm' });
    const qmp = vm.qmp;
    const pipeEnd = () => openSync(join(dir, 'f'), fsc.O_CREAT | fsc.O_WRONLY);
    const fdOf = () => pipeEnd();
    const run = (command: string, args: object, fds: number[] = []) => qmp.execute(command, args, { fds }).catch(refusal);
    const fd1 = fdOf();
    expect(await run('getfd', { fdname: 'a' })).to.equal('GenericError: No file descriptor supplied via SCM_RIGHTS');
    expect(await run('getfd', { fdname: '1abc' }, [fd1])).to.equal("GenericError: Parameter 'fdname' expects a name not starting with a digit");
    expect(await run('getfd', { fdname: 'a' }, [fd1])).to.deep.equal({});
    expect(await run('getfd', { fdname: 'a' }, [fd1])).to.deep.equal({});
    expect(await run('closefd', { fdname: 'a' })).to.deep.equal({});
    expect(await run('closefd', { fdname: 'a' })).to.equal("GenericError: File descriptor named 'a' not found");
    expect(await run('closefd', { fdname: 'nope' })).to.equal("GenericError: File descriptor named 'nope' not found");
    expect(await run('getfd', {})).to.equal("GenericError: Parameter 'fdname' is missing");
    expect(await run('getfd', { fdname: 5 })).to.equal("GenericError: Invalid parameter type for 'fdname', expected: string");

    expect(await run('query-fdsets', {})).to.deep.equal([]);
    expect(await run('add-fd', {})).to.equal('GenericError: No file descriptor supplied via SCM_RIGHTS');
    const first = (await run('add-fd', {}, [fd1])) as { 'fdset-id': number; fd: number };
    expect(first['fdset-id']).to.equal(0);
    const second = (await run('add-fd', { 'fdset-id': 1, opaque: 'x' }, [fd1])) as { 'fdset-id': number; fd: number };
    expect(second['fdset-id']).to.equal(1);
    const third = (await run('add-fd', { 'fdset-id': 1 }, [fd1])) as { 'fdset-id': number; fd: number };
    expect(await run('add-fd', { 'fdset-id': -1 }, [fd1])).to.equal("GenericError: Parameter 'fdset-id' expects a non-negative value");
    expect(await run('add-fd', { 'fdset-id': 'x' }, [fd1])).to.equal("GenericError: Invalid parameter type for 'fdset-id', expected: integer");
    const fourth = (await run('add-fd', {}, [fd1])) as { 'fdset-id': number; fd: number };
    expect(fourth['fdset-id'], 'the lowest id no set has').to.equal(2);
    expect(await run('query-fdsets', {})).to.deep.equal([
      { 'fdset-id': 2, fds: [{ fd: fourth.fd }] },
      { 'fdset-id': 1, fds: [{ fd: second.fd, opaque: 'x' }, { fd: third.fd }] },
      { 'fdset-id': 0, fds: [{ fd: first.fd }] },
    ]);
    expect(await run('remove-fd', { 'fdset-id': 1, fd: 9999 })).to.equal("GenericError: File descriptor named 'fdset-id:1, fd:9999' not found");
    expect(await run('remove-fd', { 'fdset-id': 77 })).to.equal("GenericError: File descriptor named 'fdset-id:77' not found");
    expect(await run('remove-fd', {})).to.equal("GenericError: Parameter 'fdset-id' is missing");
    // The guest runs: a removal closes at once, and an empty set goes.
    expect(await run('remove-fd', { 'fdset-id': 1, fd: second.fd })).to.deep.equal({});
    expect(await run('remove-fd', { 'fdset-id': 1, fd: second.fd })).to.equal(`GenericError: File descriptor named 'fdset-id:1, fd:${second.fd}' not found`);
    expect(await run('remove-fd', { 'fdset-id': 0 })).to.deep.equal({});
    expect(await run('query-fdsets', {})).to.deep.equal([
      { 'fdset-id': 2, fds: [{ fd: fourth.fd }] },
      { 'fdset-id': 1, fds: [{ fd: third.fd }] },
    ]);
    // Stopped, a removal waits (QEMU keeps descriptors a guest that has not run may still need).
    await qmp.execute('stop');
    expect(await run('remove-fd', { 'fdset-id': 2 })).to.deep.equal({});
    expect(await run('query-fdsets', {})).to.deep.include({ 'fdset-id': 2, fds: [{ fd: fourth.fd }] });
    closeSync(fd1);
  });

  it("refuses fd: and /dev/fdset URIs it cannot use, in QEMU's words", async () => {
    const src = await source();
    expect(await src.qmp.execute('migrate', { uri: 'fd:nosuch' }).catch(refusal)).to.equal("GenericError: File descriptor named 'nosuch' has not been found");
    let info = await waitForMigration(src.qmp, ['failed'], 10_000);
    expect(info['error-desc']).to.equal("File descriptor named 'nosuch' has not been found");
    expect(await src.qmp.execute('migrate', { uri: 'fd:12345' }).catch(refusal)).to.equal("GenericError: File descriptor named '12345' has not been found");
    expect(await src.qmp.execute('migrate', { uri: 'file:/dev/fdset/5' }).catch(refusal)).to.equal(
      'GenericError: Could not dup FD for /dev/fdset/5 flags 241: No such file or directory');
    // A set with no write-only descriptor: nothing to save to.
    const readOnly = openSync(join(dir, 'ro'), fsc.O_CREAT | fsc.O_RDONLY);
    await src.qmp.execute('add-fd', { 'fdset-id': 5 }, { fds: [readOnly] });
    expect(await src.qmp.execute('migrate', { uri: 'file:/dev/fdset/5' }).catch(refusal)).to.equal(
      'GenericError: Could not dup FD for /dev/fdset/5 flags 241: Permission denied');
    // A directory, or a file open read-only, is taken (as QEMU takes it) and fails the migration at its first write.
    const directory = openSync(dir, fsc.O_RDONLY);
    await src.qmp.execute('getfd', { fdname: 'dir' }, { fds: [directory] });
    closeSync(directory);
    expect(await src.qmp.execute('migrate', { uri: 'fd:dir' })).to.deep.equal({});
    info = await waitForMigration(src.qmp, ['failed', 'completed'], 10_000);
    expect(info['error-desc']).to.equal('Unable to write to file: Bad file descriptor');
    await src.qmp.execute('getfd', { fdname: 'ro' }, { fds: [readOnly] });
    closeSync(readOnly);
    expect(await src.qmp.execute('migrate', { uri: 'fd:ro' })).to.deep.equal({});
    info = await waitForMigration(src.qmp, ['failed', 'completed'], 10_000);
    expect(info['error-desc']).to.equal('Unable to write to file: Bad file descriptor');
    expect(await runState(src)).to.equal('running');

    const dst = await destination();
    expect(await dst.qmp.execute('migrate-incoming', { uri: 'fd:nosuch' }).catch(refusal)).to.equal("GenericError: File descriptor named 'nosuch' has not been found");
    expect(await dst.qmp.execute('query-migrate')).to.deep.equal({});
    expect(await dst.qmp.execute('migrate-incoming', { uri: 'file:/dev/fdset/0' }).catch(refusal)).to.equal(
      'GenericError: Could not dup FD for /dev/fdset/0 flags 0: No such file or directory');
  });

  it("takes a descriptor from a client written for QEMU (Python's socket.send_fds), unchanged", async () => {
    const vm = await startInstance(['--ram', RAM], { name: 'vm' });
    const script = [
      'import json, os, socket, sys',
      's = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); f = s.makefile("rb")',
      'def reply():',
      '    while True:',
      '        m = json.loads(f.readline())',
      '        if "event" not in m: return m',
      'reply()',
      's.sendall(b\'{"execute": "qmp_capabilities"}\'); reply()',
      'fd = os.open(sys.argv[2], os.O_WRONLY | os.O_CREAT)',
      'socket.send_fds(s, [b\'{"execute": "getfd", "arguments": {"fdname": "py"}}\'], [fd]); print(json.dumps(reply()))',
      'socket.send_fds(s, [b\'{"execute": "add-fd", "arguments": {"fdset-id": 7}}\'], [fd]); print(json.dumps(reply()))',
      's.sendall(b\'{"execute": "closefd", "arguments": {"fdname": "py"}}\'); print(json.dumps(reply()))',
    ].join('\n');
    const out = execFileSync('python3', ['-c', script, vm.socket, join(dir, 'py.bin')], { encoding: 'utf8', timeout: 20_000 }).trim().split('\n');
    expect(JSON.parse(out[0]!)).to.deep.equal({ return: {} });
    expect(JSON.parse(out[1]!).return).to.include({ 'fdset-id': 7 });
    expect(JSON.parse(out[2]!)).to.deep.equal({ return: {} });
  });

  it('closes every descriptor no command claims, and those of a connection that goes', async () => {
    const vm = await startInstance(['--ram', RAM], { name: 'vm' });
    const pid = vm.process.pid!;
    const before = await steadyHoldings(pid);
    const file = openSync(join(dir, 'f'), fsc.O_CREAT | fsc.O_WRONLY);
    // Sent with a command that takes none, with one that fails its argument check, three at once with getfd (it keeps one).
    await vm.qmp.execute('query-status', {}, { fds: [file] });
    await vm.qmp.execute('getfd', {}, { fds: [file] }).catch(() => {});
    await vm.qmp.execute('getfd', { fdname: 'kept' }, { fds: [file, file, file] });
    expect(holdings(pid).fds, 'only the descriptor getfd kept').to.equal(before.fds + 1);
    expect(await vm.qmp.execute('getfd', { fdname: 'stray' }).catch(refusal)).to.equal('GenericError: No file descriptor supplied via SCM_RIGHTS');
    await vm.qmp.execute('closefd', { fdname: 'kept' });
    expect(holdings(pid).fds).to.equal(before.fds);
    // A second connection names one and goes: its names go with it.
    const other = await vm.connect();
    await other.execute('getfd', { fdname: 'mine' }, { fds: [file] });
    await other.execute('add-fd', { 'fdset-id': 9 }, { fds: [file] });
    // Its socket (and the duplicate it is read through), its named descriptor, the fd set's.
    expect(holdings(pid).fds).to.equal(before.fds + 4);
    await other.close();
    const after = await steadyHoldings(pid);
    expect(after.fds, 'the fd set stays (it is the process\'s), the name went with its connection').to.equal(before.fds + 1);
    closeSync(file);
  });
});

async function runState(instance: TestInstance): Promise<string> {
  return (await instance.qmp.execute<{ status: string }>('query-status')).status;
}
