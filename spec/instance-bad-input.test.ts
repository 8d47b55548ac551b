/**
 * Bad QMP input to a real `livemig run`: each mistake gets the error QEMU
 * gives (class and desc, the id echoed when there is one), and the same
 * connection and the instance go on serving.
 */
import { expect } from 'chai';
import { createConnection } from 'node:net';
import { QmpClient } from '../protocols/qmp/client.js';
import type { JsonObject } from '../protocols/qmp/types.js';
import { startInstance, stopAllInstances, type TestInstance } from './support/instances.js';

const RUNNING = { running: true, singlestep: false, status: 'running' };
const LINE_BOUND = 1 << 20;

const generic = (desc: string) => ({ class: 'GenericError', desc });

/** Raw line → the whole response expected. */
const CASES: [what: string, line: string, response: JsonObject][] = [
  ['not JSON', 'hello', { error: generic("JSON parse error, invalid keyword 'hello'") }],
  ['broken JSON', '{"execute": }', { error: generic('JSON parse error, expecting value') }],
  ['a JSON array', '["execute", "query-status"]', { error: generic('QMP input must be a JSON object') }],
  ['a JSON number', '42', { error: generic('QMP input must be a JSON object') }],
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

  it('answers a line of exactly the bound (1 MiB)', async () => {
    const client = await connect();
    const head = '{"execute": "query-status", "id": "';
    const tail = '"}';
    const id = 'x'.repeat(LINE_BOUND - head.length - tail.length);
    const line = head + id + tail;
    expect(Buffer.byteLength(line)).to.equal(LINE_BOUND);
    client.sendRaw(line);
    const answer = await client.nextResponse();
    expect(answer.return).to.deep.equal(RUNNING);
    expect(answer.id === id, 'the 1 MiB id echoed intact').to.equal(true);
  });

  it('refuses a line longer than the bound, then answers the next command on the same connection', async () => {
    const client = await connect();
    const line = `{"execute": "query-status", "id": "${'y'.repeat(LINE_BOUND)}"}`;
    client.sendRaw(`${line}\n{"execute": "query-status", "id": "after"}`);
    const refused = await client.nextResponse();
    expect(Object.keys(refused)).to.deep.equal(['error']);
    const error = refused.error as { class: string; desc: string };
    expect(error.class).to.equal('GenericError');
    expect(error.desc).to.include(String(LINE_BOUND));
    expect(await client.nextResponse()).to.deep.equal({ return: RUNNING, id: 'after' });
    expect(await client.execute('query-status')).to.deep.equal(RUNNING);
  });

  it('refuses a line streamed past the bound in pieces, then answers the next one', async () => {
    // Through a raw socket: the client's sendRaw ends every write with a newline.
    const piece = 'z'.repeat(64 << 10);
    const socket = createConnection({ path: vm.socket });
    let received = '';
    socket.on('data', (chunk: Buffer) => (received += chunk.toString()));
    await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
    socket.write('{"execute": "qmp_capabilities"}\n{"execute": "query-status", "id": "');
    for (let i = 0; i < 64; i++) socket.write(piece); // 4 MiB, no newline
    socket.write('"}\n{"execute": "query-status", "id": "after"}\n');
    const deadline = Date.now() + 10_000;
    // greeting, qmp_capabilities, one refusal for the long line, then the next command.
    while (received.split('\r\n').length <= 4) {
      if (Date.now() > deadline || socket.destroyed) throw new Error(`no answer after the endless line; got: ${received.slice(0, 500)}`);
      await new Promise((r) => setTimeout(r, 20));
    }
    socket.destroy();
    const lines = received.split('\r\n').filter((l) => l !== '');
    expect(lines).to.have.length(4);
    expect(JSON.parse(lines[2]!)).to.have.nested.property('error.class', 'GenericError');
    expect(JSON.parse(lines[3]!)).to.deep.equal({ return: RUNNING, id: 'after' });
  });

  it('keeps serving others when a client vanishes in the middle of a line', async () => {
    const socket = createConnection({ path: vm.socket });
    await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
    socket.write('{"execute": "qmp_capabilities"}\n{"execute": "query-st');
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
