/**
 * Migration capabilities and parameters end to end through a real `livemig
 * run`: set over QMP or with --cap/--param at start, checked as QEMU 8.2's
 * migrate_caps_check / migrate_params_check do, visible in the queries.
 * The rules one by one are spec/capabilities.test.ts and
 * spec/parameters.test.ts; here a representative set crosses the process.
 */
import { expect } from 'chai';
import { createConnection } from 'node:net';
import { startInstance, stopAllInstances, type TestInstance } from './support/instances.js';
import { refusal } from './support/qmp-expect.js';

const RAM = ['--ram', '16M'];

/** QEMU 8.2's capabilities in QAPI order: query-migrate-capabilities' order. */
const CAPABILITIES = [
  'xbzrle', 'rdma-pin-all', 'auto-converge', 'zero-blocks', 'compress', 'events', 'postcopy-ram', 'x-colo',
  'release-ram', 'block', 'return-path', 'pause-before-switchover', 'multifd', 'dirty-bitmaps',
  'postcopy-blocktime', 'late-block-activate', 'x-ignore-shared', 'validate-uuid', 'background-snapshot',
  'zero-copy-send', 'postcopy-preempt', 'switchover-ack', 'dirty-limit',
];

/** QEMU 8.2's parameter defaults, in QAPI order. */
const DEFAULT_PARAMETERS = {
  'announce-initial': 50,
  'announce-max': 550,
  'announce-rounds': 5,
  'announce-step': 100,
  'compress-level': 1,
  'compress-threads': 8,
  'compress-wait-thread': true,
  'decompress-threads': 2,
  'throttle-trigger-threshold': 50,
  'cpu-throttle-initial': 20,
  'cpu-throttle-increment': 10,
  'cpu-throttle-tailslow': false,
  'tls-creds': '',
  'tls-hostname': '',
  'tls-authz': '',
  'max-bandwidth': 134217728,
  'avail-switchover-bandwidth': 0,
  'downtime-limit': 300,
  'x-checkpoint-delay': 20000,
  'block-incremental': false,
  'multifd-channels': 2,
  'xbzrle-cache-size': 67108864,
  'max-postcopy-bandwidth': 0,
  'max-cpu-throttle': 99,
  'multifd-compression': 'none',
  'multifd-zlib-level': 1,
  'multifd-zstd-level': 1,
  'x-vcpu-dirty-limit-period': 1000,
  'vcpu-dirty-limit': 1,
  mode: 'normal',
};

/** The full query-migrate-capabilities answer with `on` set and everything else off. */
function capabilitiesWith(...on: string[]): { capability: string; state: boolean }[] {
  return CAPABILITIES.map((capability) => ({ capability, state: on.includes(capability) }));
}

const caps = (...set: [string, boolean][]) => ({ capabilities: set.map(([capability, state]) => ({ capability, state })) });

/**
 * Sends lines over a fresh raw connection and returns the text of the
 * first `count` lines the server writes (greeting included), untouched by
 * any JSON parser.
 */
async function rawExchange(path: string, lines: string[], count: number, timeoutMs = 5000): Promise<string[]> {
  const socket = createConnection({ path });
  let received = '';
  socket.on('data', (chunk: Buffer) => (received += chunk.toString()));
  try {
    await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
    socket.write(lines.map((l) => `${l}\n`).join(''));
    const deadline = Date.now() + timeoutMs;
    while (received.split('\r\n').length <= count) {
      if (Date.now() > deadline || socket.destroyed) throw new Error(`expected ${count} lines, got: ${received}`);
      await new Promise((r) => setTimeout(r, 10));
    }
    return received.split('\r\n').slice(0, count);
  } finally {
    socket.destroy();
  }
}

describe('livemig instance: migration capabilities and parameters', function () {

  describe('migrate-set-capabilities', () => {
    let vm: TestInstance;
    // One instance, put back to all-off after each test; the first test sees it fresh.
    before(async () => {
      vm = await startInstance(RAM, { name: 'caps' });
    });
    afterEach(async () => {
      await vm.qmp.execute('migrate-set-capabilities', caps(...CAPABILITIES.map((c): [string, boolean] => [c, false])));
    });
    after(stopAllInstances);

    it('starts with every QEMU 8.2 capability off, in QAPI order', async () => {
      expect(await vm.qmp.execute('query-migrate-capabilities')).to.deep.equal(capabilitiesWith());
    });

    it('accepts built and no-op capabilities and shows them in query-migrate-capabilities', async () => {
      expect(
        await vm.qmp.execute('migrate-set-capabilities', caps(['events', true], ['multifd', true], ['return-path', true], ['late-block-activate', true])),
      ).to.deep.equal({});
      expect(await vm.qmp.execute('query-migrate-capabilities')).to.deep.equal(
        capabilitiesWith('events', 'return-path', 'multifd', 'late-block-activate'),
      );
      // A later call changes only what it names.
      await vm.qmp.execute('migrate-set-capabilities', caps(['events', false], ['zero-blocks', true], ['validate-uuid', true]));
      expect(await vm.qmp.execute('query-migrate-capabilities')).to.deep.equal(
        capabilitiesWith('zero-blocks', 'return-path', 'multifd', 'late-block-activate', 'validate-uuid'),
      );
    });

    it('takes the last entry when a capability is named twice', async () => {
      await vm.qmp.execute('migrate-set-capabilities', caps(['events', true], ['events', false], ['multifd', false], ['multifd', true]));
      expect(await vm.qmp.execute('query-migrate-capabilities')).to.deep.equal(capabilitiesWith('multifd'));
    });

    const REFUSED: [what: string, set: [string, boolean][], desc: string][] = [
      ['postcopy-preempt without postcopy-ram', [['postcopy-preempt', true]], 'Postcopy preempt requires postcopy-ram'],
      ['switchover-ack without return-path', [['switchover-ack', true]], "Capability 'switchover-ack' requires capability 'return-path'"],
      ['multifd with xbzrle', [['multifd', true], ['xbzrle', true]], 'Multifd is not compatible with xbzrle'],
      ['multifd with compress', [['compress', true], ['multifd', true]], 'Multifd is not compatible with compress'],
      ['postcopy-ram with x-ignore-shared', [['postcopy-ram', true], ['x-ignore-shared', true]], 'Postcopy is not compatible with ignore-shared'],
      ['background-snapshot with return-path', [['return-path', true], ['background-snapshot', true]], 'Background-snapshot is not compatible with return-path'],
      ['zero-copy-send without multifd', [['zero-copy-send', true]], 'Zero copy only available for non-compressed non-TLS multifd migration'],
      [
        'dirty-limit with auto-converge',
        [['dirty-limit', true], ['auto-converge', true]],
        'dirty-limit conflicts with auto-converge either of then available currently',
      ],
      ['rdma-pin-all, not built', [['rdma-pin-all', true]], "Capability 'rdma-pin-all' is not supported by livemig yet"],
    ];
    for (const [what, set, desc] of REFUSED) {
      it(`refuses ${what} with QEMU's text and changes nothing`, async () => {
        expect(await refusal(vm.qmp.execute('migrate-set-capabilities', caps(...set)))).to.deep.equal({ class: 'GenericError', desc });
        expect(await vm.qmp.execute('query-migrate-capabilities')).to.deep.equal(capabilitiesWith());
      });
    }

    it('applies all or nothing: a refused entry keeps the accepted ones in the same call off', async () => {
      await vm.qmp.execute('migrate-set-capabilities', caps(['return-path', true]));
      expect(await refusal(vm.qmp.execute('migrate-set-capabilities', caps(['events', true], ['multifd', true], ['xbzrle', true])))).to.deep.equal({
        class: 'GenericError',
        desc: 'Multifd is not compatible with xbzrle',
      });
      expect(await vm.qmp.execute('query-migrate-capabilities')).to.deep.equal(capabilitiesWith('return-path'));
    });

    it('checks the set the call would leave: return-path turned off beside switchover-ack', async () => {
      await vm.qmp.execute('migrate-set-capabilities', caps(['return-path', true]));
      expect(
        await refusal(vm.qmp.execute('migrate-set-capabilities', caps(['return-path', false], ['switchover-ack', true]))),
      ).to.deep.equal({ class: 'GenericError', desc: "Capability 'switchover-ack' requires capability 'return-path'" });
      expect(await vm.qmp.execute('query-migrate-capabilities')).to.deep.equal(capabilitiesWith('return-path'));
    });
  });

  describe('capabilities and incoming migration', () => {
    afterEach(stopAllInstances);

    it('refuses multifd once --incoming tcp: has started listening', async () => {
      const vm = await startInstance([...RAM, '--incoming', 'tcp:127.0.0.1:0'], { name: 'incoming-tcp' });
      expect(await refusal(vm.qmp.execute('migrate-set-capabilities', caps(['multifd', true])))).to.deep.equal({
        class: 'GenericError',
        desc: 'Multifd must be set before incoming starts',
      });
      expect(await vm.qmp.execute('query-migrate-capabilities')).to.deep.equal(capabilitiesWith());
    });

    it('accepts multifd on a destination started with --incoming defer', async () => {
      const vm = await startInstance([...RAM, '--incoming', 'defer'], { name: 'incoming-defer' });
      await vm.qmp.execute('migrate-set-capabilities', caps(['multifd', true]));
      expect(await vm.qmp.execute('query-migrate-capabilities')).to.deep.equal(capabilitiesWith('multifd'));
    });

    it('gives a destination listening from the start multifd through --cap', async () => {
      const vm = await startInstance([...RAM, '--incoming', 'tcp:127.0.0.1:0', '--cap', 'multifd'], { name: 'incoming-cap' });
      expect(await vm.qmp.execute('query-migrate-capabilities')).to.deep.equal(capabilitiesWith('multifd'));
    });
  });

  describe('migrate-set-parameters', () => {
    let vm: TestInstance;
    // One instance, put back to the defaults after each test; the first test sees it fresh.
    before(async () => {
      vm = await startInstance(RAM, { name: 'params' });
    });
    afterEach(async () => {
      await vm.qmp.execute('migrate-set-parameters', DEFAULT_PARAMETERS);
    });
    after(stopAllInstances);

    it("starts with QEMU 8.2's defaults, in QAPI order", async () => {
      const params = await vm.qmp.execute<Record<string, unknown>>('query-migrate-parameters');
      expect(params).to.deep.equal(DEFAULT_PARAMETERS);
      expect(Object.keys(params)).to.deep.equal(Object.keys(DEFAULT_PARAMETERS));
    });

    it('accepts downtime-limit and max-bandwidth and shows them in query-migrate-parameters', async () => {
      expect(await vm.qmp.execute('migrate-set-parameters', { 'downtime-limit': 2_000_000, 'max-bandwidth': 1 << 30 })).to.deep.equal({});
      expect(await vm.qmp.execute('query-migrate-parameters')).to.deep.equal({
        ...DEFAULT_PARAMETERS,
        'downtime-limit': 2_000_000,
        'max-bandwidth': 1 << 30,
      });
      await vm.qmp.execute('migrate-set-parameters', { 'downtime-limit': 0, 'multifd-channels': 255, 'tls-hostname': 'dst.example' });
      expect(await vm.qmp.execute('query-migrate-parameters')).to.deep.equal({
        ...DEFAULT_PARAMETERS,
        'downtime-limit': 0,
        'max-bandwidth': 1 << 30,
        'multifd-channels': 255,
        'tls-hostname': 'dst.example',
      });
      // null clears a tls-* string, as in QEMU.
      await vm.qmp.execute('migrate-set-parameters', { 'tls-hostname': null });
      expect(await vm.qmp.execute('query-migrate-parameters')).to.have.property('tls-hostname', '');
    });

    const REFUSED: [what: string, set: Record<string, unknown>, desc: string][] = [
      ['downtime-limit above 2000 s', { 'downtime-limit': 2_000_001 }, "Parameter 'downtime_limit' expects an integer in the range of 0 to (2000 * 1000) ms"],
      ['multifd-channels 0', { 'multifd-channels': 0 }, "Parameter 'multifd_channels' expects a value between 1 and 255"],
      ['multifd-channels beyond uint8', { 'multifd-channels': 256 }, "Parameter 'multifd-channels' expects uint8_t"],
      ['throttle-trigger-threshold 101', { 'throttle-trigger-threshold': 101 }, "Parameter 'throttle_trigger_threshold' expects an integer in the range of 1 to 100"],
      ['xbzrle-cache-size not a power of two', { 'xbzrle-cache-size': 5000 }, "Parameter 'xbzrle_cache_size' expects a power of two no less than the target page size"],
      ['an unknown parameter', { 'no-such-parameter': 1 }, "Parameter 'no-such-parameter' is unexpected"],
    ];
    for (const [what, set, desc] of REFUSED) {
      it(`refuses ${what} with QEMU's text and changes nothing`, async () => {
        expect(await refusal(vm.qmp.execute('migrate-set-parameters', set))).to.deep.equal({ class: 'GenericError', desc });
        expect(await vm.qmp.execute('query-migrate-parameters')).to.deep.equal(DEFAULT_PARAMETERS);
      });
    }

    it('stores tls-creds without looking the object up (QEMU does that when a migration starts)', async () => {
      await vm.qmp.execute('migrate-set-parameters', { 'tls-creds': 'tls0' });
      expect(await vm.qmp.execute('query-migrate-parameters')).to.deep.include({ 'tls-creds': 'tls0' });
      await vm.qmp.execute('migrate-set-parameters', { 'tls-creds': null });
      expect(await vm.qmp.execute('query-migrate-parameters')).to.deep.equal(DEFAULT_PARAMETERS);
    });

    it('applies all or nothing: a valid member beside a refused one is not set', async () => {
      expect(await refusal(vm.qmp.execute('migrate-set-parameters', { 'downtime-limit': 400, 'max-bandwidth': 1000, 'multifd-channels': 0 }))).to.deep.equal({
        class: 'GenericError',
        desc: "Parameter 'multifd_channels' expects a value between 1 and 255",
      });
      expect(await vm.qmp.execute('query-migrate-parameters')).to.deep.equal(DEFAULT_PARAMETERS);
    });

    it('round-trips max-bandwidth 18446744073709551615 exactly, as the JSON text shows', async () => {
      const [, negotiated, set, query] = await rawExchange(
        vm.socket,
        [
          '{"execute": "qmp_capabilities"}',
          '{"execute": "migrate-set-parameters", "arguments": {"max-bandwidth": 18446744073709551615}, "id": 1}',
          '{"execute": "query-migrate-parameters", "id": 2}',
        ],
        4,
      );
      expect(JSON.parse(negotiated!)).to.deep.equal({ return: {} });
      expect(JSON.parse(set!)).to.deep.equal({ return: {}, id: 1 });
      expect(query).to.match(/"max-bandwidth": ?18446744073709551615[,}]/);
      // And through the client, which keeps integers beyond 2^53 as bigints.
      const params = await vm.qmp.execute<Record<string, unknown>>('query-migrate-parameters');
      expect(params['max-bandwidth']).to.equal(18446744073709551615n);
      await vm.qmp.execute('migrate-set-parameters', { 'max-bandwidth': 2n ** 53n + 1n });
      expect((await vm.qmp.execute<Record<string, unknown>>('query-migrate-parameters'))['max-bandwidth']).to.equal(2n ** 53n + 1n);
    });
  });

  describe('--cap and --param at start', () => {
    afterEach(stopAllInstances);

    it('shows the capabilities and parameters given on the command line in the queries', async () => {
      const vm = await startInstance(
        [...RAM, '--cap', 'multifd=on', '--cap', 'events', '--cap', 'return-path=off', '--param', 'max-bandwidth=1G', '--param', 'downtime-limit=500'],
        { name: 'startup-options' },
      );
      expect(await vm.qmp.execute('query-migrate-capabilities')).to.deep.equal(capabilitiesWith('events', 'multifd'));
      expect(await vm.qmp.execute('query-migrate-parameters')).to.deep.equal({
        ...DEFAULT_PARAMETERS,
        'max-bandwidth': 1073741824,
        'downtime-limit': 500,
      });
    });

    it('lets QMP change what --cap and --param set', async () => {
      const vm = await startInstance([...RAM, '--cap', 'events', '--param', 'multifd-channels=8'], { name: 'startup-then-qmp' });
      await vm.qmp.execute('migrate-set-capabilities', caps(['events', false]));
      await vm.qmp.execute('migrate-set-parameters', { 'multifd-channels': 4 });
      expect(await vm.qmp.execute('query-migrate-capabilities')).to.deep.equal(capabilitiesWith());
      expect(await vm.qmp.execute('query-migrate-parameters')).to.have.property('multifd-channels', 4);
    });
  });
});
