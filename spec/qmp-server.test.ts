import { expect } from 'chai';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { spawnSync } from 'node:child_process';
import { createConnection, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { QmpClient } from '../protocols/qmp/client.js';
import { defineCommand, type QmpCommandTable } from '../protocols/qmp/command.js';
import { livemigPackage } from '../protocols/qmp/constants.js';
import { QmpConnectionError, QmpError } from '../protocols/qmp/errors.js';
import { NO_ARGUMENTS, qapi } from '../protocols/qmp/schema.js';
import { QmpServer } from '../protocols/qmp/server.js';
import type { QmpEvent } from '../protocols/qmp/types.js';

async function rejection(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (error) {
    return error as Error;
  }
  throw new Error('promise resolved');
}

/** A promise the test resolves by hand: lets a handler block without timers. */
function gate<T = void>() {
  let open!: (value: T) => void;
  const opened = new Promise<T>((resolve) => (open = resolve));
  return { opened, open };
}

describe('QMP server and client', function () {
  let dir: string;
  let server: QmpServer;
  let unixAddress: string;
  let tcpAddress: string;
  const clients: QmpClient[] = [];
  let blocker = gate();
  let blockerEntered = gate();

  const commands: QmpCommandTable = new Map([
    ['echo-size', defineCommand({ args: qapi.object({ v: qapi.size }), run: ({ v }) => ({ v }) })],
    ['stop', defineCommand({ args: NO_ARGUMENTS, run: () => undefined })],
    [
      'migrate-set-capabilities',
      defineCommand({
        args: qapi.object({
          capabilities: qapi.array(qapi.object({ capability: qapi.enumOf(['events', 'multifd']), state: qapi.bool })),
        }),
        run: () => undefined,
      }),
    ],
    ['boom', defineCommand({ args: NO_ARGUMENTS, run: () => { throw new Error('kaboom'); } })],
    ['async-boom', defineCommand({ args: NO_ARGUMENTS, run: async () => Promise.reject(new Error('later kaboom')) })],
    [
      'find-device',
      defineCommand({
        args: qapi.object({ id: qapi.str }),
        run: ({ id }) => { throw new QmpError('DeviceNotFound', `Device '${id}' not found`); },
      }),
    ],
    [
      'slow',
      defineCommand({
        args: NO_ARGUMENTS,
        run: async () => {
          blockerEntered.open();
          await blocker.opened;
          return { slow: true };
        },
      }),
    ],
    ['urgent', defineCommand({ args: NO_ARGUMENTS, allowOob: true, run: (_args, ctx) => ({ oob: ctx.oob, session: ctx.sessionId }) })],
  ]);

  async function connect(address: string, options = {}): Promise<QmpClient> {
    const client = await QmpClient.connect(address, { timeoutMs: 5000, ...options });
    clients.push(client);
    return client;
  }

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'qmp-'));
    server = new QmpServer({ commands, jsonLimits: { maxTokenBytes: 4096 } });
    unixAddress = await server.listen(`unix:${join(dir, 'mon.sock')}`);
    tcpAddress = await server.listen('tcp:127.0.0.1:0');
    blocker = gate();
    blockerEntered = gate();
  });

  afterEach(async () => {
    blocker.open();
    await Promise.all(clients.splice(0).map((c) => c.close()));
    await server.close();
    await rm(dir, { recursive: true, force: true });
  });

  describe('listening', () => {
    it('reports the real port for tcp:HOST:0 and the unix path', () => {
      expect(unixAddress).to.equal(`unix:${join(dir, 'mon.sock')}`);
      expect(tcpAddress).to.match(/^tcp:127\.0\.0\.1:\d+$/);
      expect(tcpAddress).not.to.equal('tcp:127.0.0.1:0');
      expect(server.addresses).to.deep.equal([unixAddress, tcpAddress]);
    });

    it('replaces a stale unix socket file left by a dead server', async () => {
      const path = join(dir, 'stale.sock');
      // A server killed outright leaves its socket file behind.
      spawnSync(process.execPath, [
        '-e',
        `require('net').createServer().listen(${JSON.stringify(path)}, () => process.kill(process.pid, 'SIGKILL'))`,
      ]);
      expect(existsSync(path)).to.equal(true);
      const bound = await server.listen(`unix:${path}`);
      const client = await connect(bound);
      expect(await client.execute('stop')).to.deep.equal({});
    });

    it('does not remove a regular file in the way', async () => {
      const path = join(dir, 'not-a-socket');
      await writeFile(path, 'data');
      const error = await rejection(server.listen(`unix:${path}`));
      expect((error as NodeJS.ErrnoException).code).to.equal('EADDRINUSE');
      expect(existsSync(path)).to.equal(true);
    });

    it('refuses an address it cannot parse', async () => {
      const error = await rejection(server.listen('udp:1.2.3.4:5'));
      expect((error as { code?: string }).code).to.equal('BAD_QMP_ADDRESS');
    });
  });

  describe('greeting and negotiation', () => {
    it('greets as QEMU 8.2 with livemig as the package and offers oob', async () => {
      const client = await connect(unixAddress, { negotiate: false });
      expect(client.greeting).to.deep.equal({
        QMP: { version: { qemu: { micro: 0, minor: 2, major: 8 }, package: livemigPackage() }, capabilities: ['oob'] },
      });
      expect(livemigPackage()).to.match(/^livemig \d+\.\d+\.\d+/);
    });

    it('refuses every command but qmp_capabilities before negotiation', async () => {
      const client = await connect(unixAddress, { negotiate: false });
      for (const name of ['query-commands', 'stop', 'no-such-command']) {
        const error = (await rejection(client.execute(name))) as QmpError;
        expect([error.errorClass, error.desc]).to.deep.equal([
          'CommandNotFound',
          "Expecting capabilities negotiation with 'qmp_capabilities'",
        ]);
      }
      expect(await client.execute('qmp_capabilities')).to.deep.equal({});
      expect(await client.execute('stop')).to.deep.equal({});
    });

    it('keeps other errors as they are before negotiation', async () => {
      const client = await connect(unixAddress, { negotiate: false });
      client.sendRaw('{"arguments": {}}');
      expect(await client.nextResponse()).to.deep.equal({
        error: { class: 'GenericError', desc: "QMP input lacks member 'execute'" },
      });
    });

    it('answers a second qmp_capabilities with CommandNotFound', async () => {
      const client = await connect(unixAddress);
      const error = (await rejection(client.execute('qmp_capabilities'))) as QmpError;
      expect([error.errorClass, error.desc]).to.deep.equal([
        'CommandNotFound',
        'Capabilities negotiation is already complete, command ignored',
      ]);
    });

    it('lists its commands in query-commands', async () => {
      const client = await connect(tcpAddress);
      const names = ((await client.execute('query-commands')) as Array<{ name: string }>).map((c) => c.name);
      expect(names).to.have.members(['qmp_capabilities', 'query-commands', 'query-version', ...commands.keys()]);
      expect(server.commandNames()).to.have.members(names);
    });

    it('answers query-version like the greeting', async () => {
      const client = await connect(tcpAddress);
      expect(await client.execute('query-version')).to.deep.equal(client.greeting.QMP.version);
    });

    it('refuses a command table that redefines a built-in', () => {
      const table = new Map([['query-version', defineCommand({ args: NO_ARGUMENTS, run: () => 1 })]]);
      expect(() => new QmpServer({ commands: table })).to.throw("command 'query-version' is built into the QMP server");
    });
  });

  describe("QEMU's request errors", () => {
    const cases: Array<[string, string, string]> = [
      ['[1, 2]', 'GenericError', 'QMP input must be a JSON object'],
      ['{"execute": }', 'GenericError', 'JSON parse error, expecting value'],
      ['{"arguments": {}}', 'GenericError', "QMP input lacks member 'execute'"],
      ['{"execute": 5}', 'GenericError', "QMP input member 'execute' must be a string"],
      ['{"execute": "stop", "arguments": []}', 'GenericError', "QMP input member 'arguments' must be an object"],
      ['{"execute": "stop", "extra": 1}', 'GenericError', "QMP input member 'extra' is unexpected"],
      ['{"execute": "no-such"}', 'CommandNotFound', 'The command no-such has not been found'],
      ['{"execute": "stop", "arguments": {"force": true}}', 'GenericError', "Parameter 'force' is unexpected"],
      ['{"execute": "find-device"}', 'GenericError', "Parameter 'id' is missing"],
      ['{"execute": "find-device", "arguments": {"id": 3}}', 'GenericError', "Invalid parameter type for 'id', expected: string"],
      [
        '{"execute": "migrate-set-capabilities", "arguments": {"capabilities": [{"capability": "events", "state": 1}]}}',
        'GenericError',
        "Invalid parameter type for 'capabilities[0].state', expected: boolean",
      ],
      ['{"exec-oob": "urgent"}', 'GenericError', "QMP input member 'exec-oob' is unexpected"],
    ];
    for (const [line, errorClass, desc] of cases) {
      it(`${line} -> ${desc}`, async () => {
        const client = await connect(unixAddress);
        client.sendRaw(line);
        expect(await client.nextResponse()).to.deep.equal({ error: { class: errorClass, desc } });
      });
    }

    it('echoes any id exactly, uint64 included', async () => {
      const client = await connect(unixAddress);
      client.sendRaw('{"execute": "no-such", "id": {"tag": [18446744073709551615, "x", null]}}');
      expect(await client.nextResponse()).to.deep.equal({
        error: { class: 'CommandNotFound', desc: 'The command no-such has not been found' },
        id: { tag: [18446744073709551615n, 'x', null] },
      });
      client.sendRaw('{"execute": "stop", "id": "a"}{"execute": "stop", "id": 2}');
      expect(await client.nextResponse()).to.deep.equal({ return: {}, id: 'a' });
      expect(await client.nextResponse()).to.deep.equal({ return: {}, id: 2 });
    });

    it('answers with the class a handler throws', async () => {
      const client = await connect(unixAddress);
      const error = (await rejection(client.execute('find-device', { id: 'disk0' }))) as QmpError;
      expect([error.errorClass, error.desc, error.code]).to.deep.equal(['DeviceNotFound', "Device 'disk0' not found", 'DeviceNotFound']);
    });

    it('turns any other exception into a GenericError and stays up', async () => {
      const client = await connect(unixAddress);
      for (const [name, desc] of [['boom', 'kaboom'], ['async-boom', 'later kaboom']]) {
        const error = (await rejection(client.execute(name!))) as QmpError;
        expect([error.errorClass, error.desc]).to.deep.equal(['GenericError', desc]);
      }
      expect(await client.execute('stop')).to.deep.equal({});
    });
  });

  describe('framing, as QEMU reads QMP input', () => {
    const sockets: Socket[] = [];
    afterEach(() => sockets.splice(0).forEach((s) => s.destroy()));

    /** A raw connection, already negotiated, collecting everything the server writes after that. */
    async function rawSession() {
      const socket = createConnection({ path: unixAddress.slice('unix:'.length) });
      sockets.push(socket);
      let received = '';
      socket.on('data', (chunk: Buffer) => (received += chunk.toString('utf8')));
      await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
      socket.write('{"execute": "qmp_capabilities"}');
      const answers = async (count: number): Promise<unknown[]> => {
        const deadline = Date.now() + 5000;
        const lines = () => received.split('\r\n').slice(2, -1);
        while (lines().length < count) {
          if (Date.now() > deadline) throw new Error(`expected ${count} answers, got: ${received}`);
          await new Promise((r) => setTimeout(r, 5));
        }
        return lines().map((line) => JSON.parse(line) as unknown);
      };
      return { socket, answers };
    }

    it('answers a command sent with no newline after it', async () => {
      const { socket, answers } = await rawSession();
      socket.write('{"execute": "echo-size", "arguments": {"v": 3}, "id": 1}');
      expect(await answers(1)).to.deep.equal([{ return: { v: 3 }, id: 1 }]);
    });

    it('answers a command written a byte at a time', async () => {
      const { socket, answers } = await rawSession();
      for (const byte of Buffer.from('{"execute": "echo-size",\n "arguments": {"v": 4},\n "id": "b"}')) {
        socket.write(Buffer.from([byte]));
        await new Promise((r) => setImmediate(r));
      }
      expect(await answers(1)).to.deep.equal([{ return: { v: 4 }, id: 'b' }]);
    });

    it('answers several commands in one write, and one command across writes and lines, in order', async () => {
      const { socket, answers } = await rawSession();
      socket.write('{"execute": "stop", "id": 1}{"execute": "stop", "id": 2} {"execute":\n"echo-size", "arg');
      await new Promise((r) => setTimeout(r, 20));
      socket.write('uments": {"v": 5},\r\n"id": 3}');
      expect(await answers(3)).to.deep.equal([{ return: {}, id: 1 }, { return: {}, id: 2 }, { return: { v: 5 }, id: 3 }]);
    });

    it('answers an error and then the next good command, as QEMU resynchronises', async () => {
      const { socket, answers } = await rawSession();
      socket.write(Buffer.concat([Buffer.from('{"execute": @}'), Buffer.from([0xff]), Buffer.from('{"execute": "stop", "id": 9}')]));
      expect(await answers(4)).to.deep.equal([
        { error: { class: 'GenericError', desc: "JSON parse error, stray '@'" } },
        { error: { class: 'GenericError', desc: 'JSON parse error, expecting value' } },
        { error: { class: 'GenericError', desc: "JSON parse error, stray '\ufffd'" } },
        { return: {}, id: 9 },
      ]);
    });
  });

  describe('bounded input', () => {
    it("refuses a message whose tokens pass the bound with QEMU's error and stays usable", async () => {
      const client = await connect(unixAddress);
      client.sendRaw(`{"execute": "echo-size", "id": "${' '.repeat(5000)}"}\n`);
      expect(await client.nextResponse()).to.deep.equal({ error: { class: 'GenericError', desc: 'JSON token size limit exceeded' } });
      // As in QEMU, lexing starts afresh inside the refused string: its tail is a stray string up to the newline.
      expect(await client.nextResponse()).to.deep.equal({ error: { class: 'GenericError', desc: 'JSON parse error, stray \'"}\n\'' } });
      expect(await client.execute('echo-size', { v: 7 })).to.deep.equal({ v: 7 });
    });

    it('refuses a string that is not UTF-8', async () => {
      const client = await connect(unixAddress);
      client.sendRaw(Buffer.from([0x22, 0xc3, 0x28, 0x22]));
      expect(await client.nextResponse()).to.deep.equal({
        error: { class: 'GenericError', desc: 'JSON parse error, invalid UTF-8 sequence in string' },
      });
    });
  });

  it('answers everything a client sent before it half-closed, then ends', async () => {
    const socket = createConnection({ path: unixAddress.slice('unix:'.length) });
    let received = '';
    socket.on('data', (chunk: Buffer) => (received += chunk.toString('utf8')));
    const ended = new Promise<void>((resolve) => socket.on('end', resolve));
    socket.end('{"execute": "qmp_capabilities"}\n{"execute": "slow", "id": 1}\n');
    await blockerEntered.opened;
    blocker.open();
    await ended;
    socket.destroy();
    const lines = received.split('\r\n');
    expect(lines.slice(1)).to.deep.equal(['{"return": {}}', '{"return": {"slow": true}, "id": 1}', '']);
  });

  it('round-trips a uint64 above 2^53 over TCP', async () => {
    const client = await connect(tcpAddress);
    expect(await client.execute('echo-size', { v: 18446744073709551615n })).to.deep.equal({ v: 18446744073709551615n });
    expect(await client.execute('echo-size', { v: 9007199254740993n })).to.deep.equal({ v: 9007199254740993n });
  });

  describe('ordering and out-of-band', () => {
    it('answers in-band requests in order, one at a time', async () => {
      const client = await connect(unixAddress);
      const slow = client.execute('slow');
      const fast = client.execute('stop');
      await blockerEntered.opened;
      let fastDone = false;
      void fast.then(() => (fastDone = true));
      // The fast command queues behind the slow one; a round trip on another client proves the server is idle.
      const other = await connect(tcpAddress);
      await other.execute('stop');
      expect(fastDone).to.equal(false);
      blocker.open();
      expect(await slow).to.deep.equal({ slow: true });
      expect(await fast).to.deep.equal({});
    });

    it('runs an exec-oob command ahead of a blocked in-band one', async () => {
      const client = await connect(unixAddress, { enable: ['oob'] });
      const slow = client.execute('slow');
      await blockerEntered.opened;
      const urgent = (await client.execute('urgent', undefined, { oob: true })) as { oob: boolean };
      expect(urgent.oob).to.equal(true);
      blocker.open();
      expect(await slow).to.deep.equal({ slow: true });
    });

    it('refuses exec-oob for a command without allow-oob', async () => {
      const client = await connect(unixAddress, { enable: ['oob'] });
      const error = (await rejection(client.execute('stop', undefined, { oob: true }))) as QmpError;
      expect(error.desc).to.equal('The command stop does not support OOB');
    });
  });

  describe('events', () => {
    it('broadcasts an event to every negotiated session, over unix and TCP', async () => {
      const a = await connect(unixAddress);
      const b = await connect(tcpAddress);
      const silent = await connect(unixAddress, { negotiate: false });
      const unnegotiatedEvents: QmpEvent[] = [];
      silent.events.on('event', (e: QmpEvent) => unnegotiatedEvents.push(e));
      const gotA = a.waitEvent('MIGRATION', (e) => e.data?.status === 'completed');
      const gotB = b.waitEvent('MIGRATION');
      server.emitEvent('MIGRATION', { status: 'completed' });
      const [ea, eb] = await Promise.all([gotA, gotB]);
      expect(ea.data).to.deep.equal({ status: 'completed' });
      expect(eb).to.deep.equal(ea);
      expect(ea.timestamp.seconds).to.be.a('number').and.to.be.greaterThan(1_600_000_000);
      expect(ea.timestamp.microseconds).to.be.within(0, 999_999);
      // Anything sent to the silent client would have arrived before this reply.
      await silent.execute('qmp_capabilities');
      expect(unnegotiatedEvents).to.deep.equal([]);
    });

    it('leaves out data for an event that has none', async () => {
      const client = await connect(unixAddress);
      const stop = client.waitEvent('STOP');
      server.emitEvent('STOP');
      expect(Object.keys(await stop)).to.deep.equal(['event', 'timestamp']);
    });

    it('bounds waitEvent', async () => {
      const client = await connect(unixAddress);
      const error = await rejection(client.waitEvent('NEVER', undefined, 20));
      expect(error).to.be.instanceOf(QmpConnectionError);
      expect((error as QmpConnectionError).code).to.equal('timeout');
    });
  });

  describe('closing', () => {
    it('ends every connection and removes the unix socket file', async () => {
      const a = await connect(unixAddress);
      const b = await connect(tcpAddress);
      const path = unixAddress.slice('unix:'.length);
      expect(existsSync(path)).to.equal(true);
      await server.close();
      expect(existsSync(path)).to.equal(false);
      for (const client of [a, b]) {
        const error = (await rejection(client.execute('stop'))) as QmpConnectionError;
        expect(error.code).to.equal('closed');
      }
      const refused = await rejection(QmpClient.connect(tcpAddress, { timeoutMs: 2000 }));
      expect(refused).to.be.instanceOf(QmpConnectionError);
      await rejection(server.listen('tcp:127.0.0.1:0'));
    });

    it('rejects a pending call when the connection closes', async () => {
      const client = await connect(unixAddress);
      const slow = rejection(client.execute('slow'));
      await blockerEntered.opened;
      await client.close();
      expect(((await slow) as QmpConnectionError).code).to.equal('closed');
    });
  });
});
