/**
 * Bad QMP input to a real `livemig run`: each mistake gets the error QEMU
 * gives (class and desc, the id echoed when there is one), and the same
 * connection and the instance go on serving. Input is framed as QEMU frames
 * it (a message ends where its braces balance), so nothing here sends a
 * newline unless a bare number or keyword needs a byte after it.
 */
import { expect } from 'chai';
import { MAX_INPUT_WITHOUT_MESSAGE_BYTES } from '../protocols/qmp/constants.js';
import { createConnection } from 'node:net';
import { QmpClient } from '../protocols/qmp/client.js';
import type { JsonObject } from '../protocols/qmp/types.js';
import { startInstance, stopAllInstances, type TestInstance } from './support/instances.js';

const RUNNING = { running: true, singlestep: false, status: 'running' };
/** QEMU's bound on the bytes of one message's tokens (json-streamer's MAX_TOKEN_SIZE). */
const TOKEN_BOUND = 64 << 20;

const generic = (desc: string) => ({ class: 'GenericError', desc });

/** Raw line → the whole response expected. */
const CASES: [what: string, line: string, response: JsonObject][] = [
  ['not JSON', 'hello\n', { error: generic("JSON parse error, invalid keyword 'hello'") }],
  ['broken JSON', '{"execute": }', { error: generic('JSON parse error, expecting value') }],
  ['a JSON array', '["execute", "query-status"]', { error: generic('QMP input must be a JSON object') }],
  ['a JSON number', '42\n', { error: generic('QMP input must be a JSON object') }],
  ['a JSON string', '"query-status"', { error: generic('QMP input must be a JSON object') }],
  ['no execute', '{"arguments": {}, "id": 1}', { error: generic("QMP input lacks member 'execute'"), id: 1 }],
  ['execute not a string', '{"execute": 42, "id": 2}', { error: generic("QMP input member 'execute' must be a string"), id: 2 }],
  [
    'arguments not an object',
    '{"execute": "query-status", "arguments": [], "id": 3}',
    { error: generic("QMP input member 'arguments' must be an object"), id: 3 },
  ],
  [
    'an unknown member',
    '{"execute": "query-status", "extra": true, "id": 4}',
    { error: generic("QMP input member 'extra' is unexpected"), id: 4 },
  ],
  [
    'an unknown command',
    '{"execute": "no-such-command", "id": "five"}',
    { error: { class: 'CommandNotFound', desc: 'The command no-such-command has not been found' }, id: 'five' },
  ],
  [
    'an unknown argument',
    '{"execute": "query-status", "arguments": {"verbose": true}, "id": 6}',
    { error: generic("Parameter 'verbose' is unexpected"), id: 6 },
  ],
  [
    'a missing argument',
    '{"execute": "pmemsave", "arguments": {"val": 0, "size": 4096}, "id": 7}',
    { error: generic("Parameter 'filename' is missing"), id: 7 },
  ],
  [
    'a missing list argument',
    '{"execute": "migrate-set-capabilities", "arguments": {}, "id": 8}',
    { error: generic("Parameter 'capabilities' is missing"), id: 8 },
  ],
  [
    'a number for a string',
    '{"execute": "pmemsave", "arguments": {"val": 0, "size": 4096, "filename": 7}, "id": 9}',
    { error: generic("Invalid parameter type for 'filename', expected: string"), id: 9 },
  ],
  [
    'a string for a uint64',
    '{"execute": "pmemsave", "arguments": {"val": "zero", "size": 4096, "filename": "/dev/null"}, "id": 10}',
    { error: generic("Parameter 'val' expects uint64"), id: 10 },
  ],
  [
    'a string for a nested boolean',
    '{"execute": "migrate-set-capabilities", "arguments": {"capabilities": [{"capability": "events", "state": "yes"}]}, "id": 11}',
    { error: generic("Invalid parameter type for 'capabilities[0].state', expected: boolean"), id: 11 },
  ],
  [
    'a value outside an enum',
    '{"execute": "migrate-set-capabilities", "arguments": {"capabilities": [{"capability": "nosuch", "state": true}]}, "id": 12}',
    { error: generic("Parameter 'capability' does not accept value 'nosuch'"), id: 12 },
  ],
  [
    'a fraction for a size',
    '{"execute": "migrate-set-parameters", "arguments": {"max-bandwidth": 1.5}, "id": 13}',
    { error: generic("Parameter 'max-bandwidth' expects uint64"), id: 13 },
  ],
];

describe('livemig instance: bad QMP input', function () {
  let vm: TestInstance;
  const clients: QmpClient[] = [];

  // One instance for the suite: no case changes its state, and each checks it still serves.
  before(async () => {
    vm = await startInstance(['--ram', '16M'], { name: 'bad-input' });
  });
  after(stopAllInstances);

  async function connect(): Promise<QmpClient> {
    const client = await vm.connect();
    clients.push(client);
    return client;
  }

  afterEach(async () => {
    await Promise.all(clients.splice(0).map((c) => c.close().catch(() => {})));
  });

  for (const [what, line, response] of CASES) {
    it(`answers ${what} as QEMU does and keeps serving: ${line}`, async () => {
      const client = await connect();
      client.sendRaw(line);
      expect(await client.nextResponse()).to.deep.equal(response);
      expect(await client.execute('query-status')).to.deep.equal(RUNNING);
    });
  }

  it('answers several requests on one line, in order', async () => {
    const client = await connect();
    client.sendRaw('{"execute": "query-status", "id": "a"}{"execute": "nosuch", "id": "b"} {"execute": "query-migrate", "id": "c"}');
    expect(await client.nextResponse()).to.deep.equal({ return: RUNNING, id: 'a' });
    expect(await client.nextResponse()).to.deep.equal({
      error: { class: 'CommandNotFound', desc: 'The command nosuch has not been found' },
      id: 'b',
    });
    expect(await client.nextResponse()).to.deep.equal({ return: {}, id: 'c' });
  });

  it('answers an 8 MiB message: there is no line bound', async () => {
    const client = await connect();
    const id = 'x'.repeat(8 << 20);
    client.sendRaw(`{"execute": "query-status", "id": "${id}"}`);
    const answer = await client.nextResponse();
    expect(answer.return).to.deep.equal(RUNNING);
    expect(answer.id === id, 'the 8 MiB id echoed intact').to.equal(true);
  });

  it("refuses a message streamed past QEMU's 64 MiB bound in pieces, as QEMU does, then answers the next one", async () => {
    const client = await connect();
    const piece = Buffer.alloc(1 << 20, ' ');
    client.sendRaw('{"execute": "query-status", "id": "');
    for (let sent = 0; sent <= TOKEN_BOUND; sent += piece.length) client.sendRaw(piece);
    client.sendRaw('"}\n{"execute": "query-status", "id": "after"}');
    expect(await client.nextResponse(30_000)).to.deep.equal({ error: generic('JSON token size limit exceeded') });
    // Lexing starts afresh inside the refused string: its tail is a stray string up to the newline (QEMU 7.2 answers the same).
    expect(await client.nextResponse()).to.deep.equal({ error: generic('JSON parse error, stray \'"}\n\'') });
    expect(await client.nextResponse()).to.deep.equal({ return: RUNNING, id: 'after' });
    expect(await client.execute('query-status')).to.deep.equal(RUNNING);
  });

  it("refuses nesting past QEMU's bound of 1024, then answers the next command", async () => {
    const client = await connect();
    client.sendRaw(`${'['.repeat(1025)}{"execute": "query-status", "id": "after"}`);
    expect(await client.nextResponse()).to.deep.equal({ error: generic('JSON nesting depth limit exceeded') });
    expect(await client.nextResponse()).to.deep.equal({ return: RUNNING, id: 'after' });
  });

  it('drops a client that floods without ever completing a message, and serves the others meanwhile', async function () {
    this.timeout(120_000);
    const socket = createConnection({ path: vm.socket });
    await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
    socket.on('error', () => {});
    const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
    let open = true;
    void closed.then(() => (open = false));
    // An endless string: one token error every 64 MiB, then more of the same, and never a message.
    socket.write('"');
    const piece = Buffer.alloc(1 << 20, 'a');
    let sent = 0;
    const others = await connect();
    while (open && sent < MAX_INPUT_WITHOUT_MESSAGE_BYTES + (64 << 20)) {
      if (!socket.write(piece)) {
        await new Promise<void>((resolve) => {
          const done = () => {
            socket.off('drain', done).off('close', done);
            resolve();
          };
          socket.once('drain', done).once('close', done);
        });
      }
      sent += piece.length;
      if (sent % (64 << 20) === 0) expect(await others.execute('query-status'), 'others are served meanwhile').to.deep.equal(RUNNING);
    }
    await closed;
    expect(sent, 'dropped once past the bound, not before').to.be.above(MAX_INPUT_WITHOUT_MESSAGE_BYTES - (8 << 20));
    expect(await others.execute('query-status')).to.deep.equal(RUNNING);
  });

  it('keeps serving others when a client vanishes in the middle of a line', async () => {
    const socket = createConnection({ path: vm.socket });
    await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
    socket.write('{"execute": "qmp_capabilities"}{"execute": "query-st');
    socket.destroy();
    const client = await connect();
    expect(await client.execute('query-status')).to.deep.equal(RUNNING);
    expect(await vm.qmp.execute('query-status')).to.deep.equal(RUNNING);
  });

  it('still serves the first connection after all of the above', async () => {
    expect(await vm.qmp.execute('query-status')).to.deep.equal(RUNNING);
    expect(vm.process.exitCode).to.equal(null);
  });
});
