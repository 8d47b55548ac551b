import { expect } from 'chai';
import {
  applyParameters,
  checkParameters,
  DEFAULT_PARAMETERS,
  MIGRATE_SET_PARAMETERS_ARGS,
  MIGRATION_PARAMETER_NAMES,
  parseParamFlag,
  queryParameters,
  type MigrateSetParameters,
  type MigrationParameters,
} from '../actors/options/parameters.js';
import { StartupFlagError } from '../actors/options/startup-flag.js';
import { QmpError } from '../protocols/qmp/errors.js';
import { decodeJson } from '../protocols/qmp/json-decode.js';
import { encodeJson } from '../protocols/qmp/json-encode.js';
import type { JsonObject } from '../protocols/qmp/types.js';
import { validateArguments } from '../protocols/qmp/validate-arguments.js';

function refusal(set: MigrateSetParameters, current: Readonly<MigrationParameters> = DEFAULT_PARAMETERS): string | null {
  try {
    applyParameters(current, set);
    return null;
  } catch (error) {
    expect(error).to.be.instanceOf(QmpError);
    expect((error as QmpError).errorClass).to.equal('GenericError');
    return (error as QmpError).desc;
  }
}

describe('migration parameters', () => {
  it("has QEMU 8.2's 31 parameters in QAPI order", () => {
    expect(MIGRATION_PARAMETER_NAMES).to.have.length(31);
    expect(MIGRATION_PARAMETER_NAMES.slice(0, 3)).to.deep.equal(['announce-initial', 'announce-max', 'announce-rounds']);
    expect(MIGRATION_PARAMETER_NAMES.at(-1)).to.equal('mode');
  });

  it("has QEMU's defaults, and they pass the check", () => {
    expect(DEFAULT_PARAMETERS['max-bandwidth']).to.equal(134217728n);
    expect(DEFAULT_PARAMETERS['downtime-limit']).to.equal(300n);
    expect(DEFAULT_PARAMETERS['xbzrle-cache-size']).to.equal(67108864n);
    expect(DEFAULT_PARAMETERS['multifd-channels']).to.equal(2);
    expect(DEFAULT_PARAMETERS['x-checkpoint-delay']).to.equal(20000);
    expect(DEFAULT_PARAMETERS['max-cpu-throttle']).to.equal(99);
    expect(DEFAULT_PARAMETERS['compress-wait-thread']).to.equal(true);
    expect(DEFAULT_PARAMETERS['block-bitmap-mapping']).to.equal(undefined);
    expect(() => checkParameters(DEFAULT_PARAMETERS)).not.to.throw();
  });

  describe("migrate_params_check's ranges, just inside and just outside", () => {
    const ranges: Array<[MigrateSetParameters, MigrateSetParameters, string]> = [
      [{ 'compress-level': 9 }, { 'compress-level': 10 }, "Parameter 'compress_level' expects a value between 0 and 9"],
      [{ 'compress-threads': 1 }, { 'compress-threads': 0 }, "Parameter 'compress_threads' expects a value between 1 and 255"],
      [{ 'decompress-threads': 1 }, { 'decompress-threads': 0 }, "Parameter 'decompress_threads' expects a value between 1 and 255"],
      [{ 'throttle-trigger-threshold': 1 }, { 'throttle-trigger-threshold': 0 }, "Parameter 'throttle_trigger_threshold' expects an integer in the range of 1 to 100"],
      [{ 'throttle-trigger-threshold': 100 }, { 'throttle-trigger-threshold': 101 }, "Parameter 'throttle_trigger_threshold' expects an integer in the range of 1 to 100"],
      [{ 'cpu-throttle-initial': 1 }, { 'cpu-throttle-initial': 0 }, "Parameter 'cpu_throttle_initial' expects an integer in the range of 1 to 99"],
      [{ 'cpu-throttle-initial': 99 }, { 'cpu-throttle-initial': 100 }, "Parameter 'cpu_throttle_initial' expects an integer in the range of 1 to 99"],
      [{ 'cpu-throttle-increment': 1 }, { 'cpu-throttle-increment': 0 }, "Parameter 'cpu_throttle_increment' expects an integer in the range of 1 to 99"],
      [{ 'cpu-throttle-increment': 99 }, { 'cpu-throttle-increment': 100 }, "Parameter 'cpu_throttle_increment' expects an integer in the range of 1 to 99"],
      [{ 'downtime-limit': 2_000_000 }, { 'downtime-limit': 2_000_001 }, "Parameter 'downtime_limit' expects an integer in the range of 0 to (2000 * 1000) ms"],
      [{ 'multifd-channels': 1 }, { 'multifd-channels': 0 }, "Parameter 'multifd_channels' expects a value between 1 and 255"],
      [{ 'multifd-zlib-level': 9 }, { 'multifd-zlib-level': 10 }, "Parameter 'multifd_zlib_level' expects a value between 0 and 9"],
      [{ 'multifd-zstd-level': 20 }, { 'multifd-zstd-level': 21 }, "Parameter 'multifd_zstd_level' expects a value between 0 and 20"],
      [{ 'xbzrle-cache-size': 4096 }, { 'xbzrle-cache-size': 2048 }, "Parameter 'xbzrle_cache_size' expects a power of two no less than the target page size"],
      [{ 'xbzrle-cache-size': 8192 }, { 'xbzrle-cache-size': 8192 + 4096 }, "Parameter 'xbzrle_cache_size' expects a power of two no less than the target page size"],
      [{ 'max-cpu-throttle': 99 }, { 'max-cpu-throttle': 100 }, "Parameter 'max_cpu_throttle' expects an integer in the range of cpu_throttle_initial to 99"],
      [{ 'max-cpu-throttle': 20 }, { 'max-cpu-throttle': 19 }, "Parameter 'max_cpu_throttle' expects an integer in the range of cpu_throttle_initial to 99"],
      [{ 'announce-initial': 100_000 }, { 'announce-initial': 100_001 }, "Parameter 'announce_initial' expects a value between 0 and 100000"],
      [{ 'announce-max': 100_000 }, { 'announce-max': 100_001 }, "Parameter 'announce_max' expects a value between 0 and 100000"],
      [{ 'announce-rounds': 1000 }, { 'announce-rounds': 1001 }, "Parameter 'announce_rounds' expects a value between 0 and 1000"],
      [{ 'announce-step': 1 }, { 'announce-step': 0 }, "Parameter 'announce_step' expects a value between 0 and 10000"],
      [{ 'announce-step': 10_000 }, { 'announce-step': 10_001 }, "Parameter 'announce_step' expects a value between 0 and 10000"],
      [{ 'x-vcpu-dirty-limit-period': 1 }, { 'x-vcpu-dirty-limit-period': 0 }, "Parameter 'x-vcpu-dirty-limit-period' expects a value between 1 and 1000"],
      [{ 'x-vcpu-dirty-limit-period': 1000 }, { 'x-vcpu-dirty-limit-period': 1001 }, "Parameter 'x-vcpu-dirty-limit-period' expects a value between 1 and 1000"],
      [{ 'vcpu-dirty-limit': 1 }, { 'vcpu-dirty-limit': 0 }, "Parameter 'vcpu_dirty_limit' expects is invalid, it must greater then 1 MB/s"],
    ];
    for (const [inside, outside, text] of ranges) {
      it(`${encodeJson(inside)} is taken, ${encodeJson(outside)} refused`, () => {
        expect(refusal(inside)).to.equal(null);
        expect(refusal(outside)).to.equal(text);
      });
    }

    it('checks max-cpu-throttle against the cpu-throttle-initial being set with it', () => {
      expect(refusal({ 'cpu-throttle-initial': 50, 'max-cpu-throttle': 50 })).to.equal(null);
      expect(refusal({ 'cpu-throttle-initial': 51, 'max-cpu-throttle': 50 })).to.equal(
        "Parameter 'max_cpu_throttle' expects an integer in the range of cpu_throttle_initial to 99",
      );
    });

    it('takes any uint64 for the bandwidths and any uint32 for x-checkpoint-delay', () => {
      const next = applyParameters(DEFAULT_PARAMETERS, {
        'max-bandwidth': 18446744073709551615n,
        'avail-switchover-bandwidth': 18446744073709551615n,
        'max-postcopy-bandwidth': 18446744073709551615n,
        'x-checkpoint-delay': 4294967295,
      });
      expect(next['max-bandwidth']).to.equal(18446744073709551615n);
      expect(next['x-checkpoint-delay']).to.equal(4294967295);
    });

    it('refuses compression or TLS while zero-copy-send is on', () => {
      const text = 'Zero copy only available for non-compressed non-TLS multifd migration';
      expect(() => applyParameters(DEFAULT_PARAMETERS, { 'multifd-compression': 'zlib' }, { zeroCopySend: true })).to.throw(QmpError, text);
      expect(() => applyParameters(DEFAULT_PARAMETERS, { 'tls-creds': 'tls0' }, { zeroCopySend: true })).to.throw(QmpError, text);
      expect(applyParameters(DEFAULT_PARAMETERS, { 'multifd-compression': 'zlib' })['multifd-compression']).to.equal('zlib');
    });

    it('checks the block bitmap mapping', () => {
      const node = (nodeName: string, alias: string, bitmaps: Array<{ name: string; alias: string }> = []) => ({
        'node-name': nodeName,
        alias,
        bitmaps,
      });
      const prefix = 'Invalid mapping given for block-bitmap-mapping: ';
      expect(refusal({ 'block-bitmap-mapping': [node('disk0', 'a0', [{ name: 'b', alias: 'b0' }])] })).to.equal(null);
      expect(refusal({ 'block-bitmap-mapping': [node('disk0', '0bad')] })).to.equal(`${prefix}The node alias '0bad' is not well-formed`);
      expect(refusal({ 'block-bitmap-mapping': [node('disk0', 'a0'), node('disk0', 'a1')] })).to.equal(
        `${prefix}The node name 'disk0' is mapped twice`,
      );
      expect(refusal({ 'block-bitmap-mapping': [node('disk0', 'a0'), node('disk1', 'a0')] })).to.equal(
        `${prefix}The node alias 'a0' is used twice`,
      );
      expect(refusal({ 'block-bitmap-mapping': [node('n'.repeat(32), 'a0')] })).to.equal(
        `${prefix}The node name '${'n'.repeat(32)}' is longer than 31 bytes`,
      );
      expect(
        refusal({ 'block-bitmap-mapping': [node('disk0', 'a0', [{ name: 'b', alias: 'x' }, { name: 'c', alias: 'x' }])] }),
      ).to.equal(`${prefix}The bitmap alias 'a0'/'x' is used twice`);
      expect(
        refusal({ 'block-bitmap-mapping': [node('disk0', 'a0', [{ name: 'b', alias: 'x' }, { name: 'b', alias: 'y' }])] }),
      ).to.equal(`${prefix}The bitmap 'disk0'/'b' is mapped twice`);
    });
  });

  describe('applyParameters', () => {
    it('applies all or nothing', () => {
      const current = applyParameters(DEFAULT_PARAMETERS, { 'downtime-limit': 500 });
      expect(refusal({ 'max-bandwidth': 1, 'multifd-channels': 0 }, current)).to.equal(
        "Parameter 'multifd_channels' expects a value between 1 and 255",
      );
      expect(current['max-bandwidth']).to.equal(134217728n);
      expect(current['downtime-limit']).to.equal(500n);
    });

    it('keeps what is not set and turns null TLS strings into ""', () => {
      const withTls = applyParameters(DEFAULT_PARAMETERS, { 'tls-creds': '', 'tls-hostname': 'dst', 'tls-authz': 'authz0' });
      const cleared = applyParameters(withTls, { 'tls-creds': null, 'tls-authz': null });
      expect([cleared['tls-creds'], cleared['tls-hostname'], cleared['tls-authz']]).to.deep.equal(['', 'dst', '']);
      expect(cleared['downtime-limit']).to.equal(300n);
    });

    it('takes tls-creds naming any id: as in QEMU, the object is looked up when a migration starts', () => {
      expect(applyParameters(DEFAULT_PARAMETERS, { 'tls-creds': 'tls0' })['tls-creds']).to.equal('tls0');
    });

    it('stores 64-bit values as bigints whatever they came as', () => {
      const next = applyParameters(DEFAULT_PARAMETERS, { 'downtime-limit': 1000, 'announce-rounds': 7n });
      expect(next['downtime-limit']).to.equal(1000n);
      expect(next['announce-rounds']).to.equal(7n);
    });

    it('returns a frozen set', () => {
      expect(Object.isFrozen(applyParameters(DEFAULT_PARAMETERS, {}))).to.equal(true);
    });
  });

  describe('migrate-set-parameters arguments', () => {
    const parse = (args: JsonObject): MigrateSetParameters => validateArguments(MIGRATE_SET_PARAMETERS_ARGS, args);

    it('has all 31 members optional', () => {
      expect(Object.keys(MIGRATE_SET_PARAMETERS_ARGS.members)).to.deep.equal(MIGRATION_PARAMETER_NAMES);
      expect(Object.values(MIGRATE_SET_PARAMETERS_ARGS.members).every((m) => m.kind === 'optional')).to.equal(true);
      expect(parse({})).to.deep.equal({});
    });

    it("refuses wrong types with QEMU's texts", () => {
      const error = (args: JsonObject) => {
        try {
          parse(args);
        } catch (e) {
          return (e as QmpError).desc;
        }
        return null;
      };
      expect(error({ 'multifd-channels': 256 })).to.equal("Parameter 'multifd-channels' expects uint8_t");
      expect(error({ 'x-checkpoint-delay': 4294967296 })).to.equal("Parameter 'x-checkpoint-delay' expects uint32_t");
      expect(error({ 'max-bandwidth': '1G' })).to.equal("Parameter 'max-bandwidth' expects uint64");
      expect(error({ 'downtime-limit': 18446744073709551616n })).to.equal("Parameter 'downtime-limit' expects uint64");
      expect(error({ 'cpu-throttle-tailslow': 1 })).to.equal("Invalid parameter type for 'cpu-throttle-tailslow', expected: boolean");
      expect(error({ 'tls-creds': 5 })).to.equal("Invalid parameter type for 'tls-creds', expected: StrOrNull");
      expect(error({ 'multifd-compression': 'lz4' })).to.equal("Parameter 'multifd-compression' does not accept value 'lz4'");
      expect(error({ mode: 'cpr-exec' })).to.equal("Parameter 'mode' does not accept value 'cpr-exec'");
      expect(error({ 'block-bitmap-mapping': [{ 'node-name': 'd', alias: 'a' }] })).to.equal(
        "Parameter 'block-bitmap-mapping[0].bitmaps' is missing",
      );
      expect(error({ 'max-bandwiths': 1 })).to.equal("Parameter 'max-bandwiths' is unexpected");
    });

    it('wraps a negative downtime-limit as QEMU does, which the range check then refuses', () => {
      expect(refusal(parse({ 'downtime-limit': -1 }))).to.equal(
        "Parameter 'downtime_limit' expects an integer in the range of 0 to (2000 * 1000) ms",
      );
    });

    it('round-trips the largest uint64 through QMP JSON', () => {
      const args = parse(decodeJson('{"max-bandwidth": 18446744073709551615}') as JsonObject);
      const params = applyParameters(DEFAULT_PARAMETERS, args);
      const reply = encodeJson({ return: queryParameters(params) });
      expect(reply).to.contain('"max-bandwidth": 18446744073709551615,');
      expect((decodeJson(reply) as { return: JsonObject }).return['max-bandwidth']).to.equal(18446744073709551615n);
    });
  });

  describe('query-migrate-parameters', () => {
    it('lists every parameter but an unset block-bitmap-mapping, in QAPI order, tls-authz as ""', () => {
      const out = queryParameters(DEFAULT_PARAMETERS);
      expect(Object.keys(out)).to.deep.equal(MIGRATION_PARAMETER_NAMES.filter((n) => n !== 'block-bitmap-mapping'));
      expect(out['tls-authz']).to.equal('');
      expect(out['downtime-limit']).to.equal(300n);
    });

    it('lists block-bitmap-mapping once it is set', () => {
      const mapping = [{ 'node-name': 'disk0', alias: 'a0', bitmaps: [] }];
      const out = queryParameters(applyParameters(DEFAULT_PARAMETERS, { 'block-bitmap-mapping': mapping }));
      expect(out['block-bitmap-mapping']).to.deep.equal(mapping);
      expect(Object.keys(out)).to.have.length(31);
    });
  });

  describe('parseParamFlag', () => {
    it('takes binary size suffixes for size parameters', () => {
      expect(parseParamFlag('max-bandwidth=1G')).to.deep.equal({ 'max-bandwidth': 1073741824n });
      expect(parseParamFlag('xbzrle-cache-size=256M')).to.deep.equal({ 'xbzrle-cache-size': 268435456n });
      expect(parseParamFlag('max-postcopy-bandwidth=2t')).to.deep.equal({ 'max-postcopy-bandwidth': 2n << 40n });
      expect(parseParamFlag('announce-step=100')).to.deep.equal({ 'announce-step': 100n });
      expect(parseParamFlag('max-bandwidth=18446744073709551615')).to.deep.equal({ 'max-bandwidth': 18446744073709551615n });
    });

    it('types every other kind', () => {
      expect(parseParamFlag('downtime-limit=500')).to.deep.equal({ 'downtime-limit': 500n });
      expect(parseParamFlag('multifd-channels=8')).to.deep.equal({ 'multifd-channels': 8 });
      expect(parseParamFlag('cpu-throttle-tailslow=on')).to.deep.equal({ 'cpu-throttle-tailslow': true });
      expect(parseParamFlag('multifd-compression=zlib')).to.deep.equal({ 'multifd-compression': 'zlib' });
      expect(parseParamFlag('tls-hostname=dst.example')).to.deep.equal({ 'tls-hostname': 'dst.example' });
      expect(parseParamFlag('block-bitmap-mapping=[{"node-name":"d","alias":"a","bitmaps":[]}]')).to.deep.equal({
        'block-bitmap-mapping': [{ 'node-name': 'd', alias: 'a', bitmaps: [] }],
      });
    });

    it('leaves ranges to applyParameters', () => {
      expect(refusal(parseParamFlag('multifd-channels=0'))).to.equal("Parameter 'multifd_channels' expects a value between 1 and 255");
    });

    it('refuses bad flags with one-line errors', () => {
      const cases: Array<[string, string]> = [
        ['turbo=1', "--param turbo=1: unknown parameter 'turbo'"],
        ['max-bandwidth', '--param max-bandwidth: expected NAME=VALUE'],
        ['max-bandwidth=fast', "--param max-bandwidth=fast: 'fast' is not a size (expected a number with an optional K, M, G or T suffix)"],
        ['max-bandwidth=16E', "--param max-bandwidth=16E: size '16E' is larger than 2^64-1"],
        ['downtime-limit=1G', "--param downtime-limit=1G: '1G' is not an integer"],
        ['multifd-channels=256', '--param multifd-channels=256: 256 is out of range (0 to 255)'],
        ['cpu-throttle-tailslow=maybe', "--param cpu-throttle-tailslow=maybe: 'maybe' is not on or off"],
        ['multifd-compression=lz4', "--param multifd-compression=lz4: 'lz4' is not one of none, zlib, zstd"],
        ['block-bitmap-mapping={}', "--param block-bitmap-mapping={}: Invalid parameter type for 'block-bitmap-mapping', expected: array"],
      ];
      for (const [flag, message] of cases) {
        let error: unknown;
        try {
          parseParamFlag(flag);
        } catch (e) {
          error = e;
        }
        expect(error, flag).to.be.instanceOf(StartupFlagError);
        expect((error as Error).message).to.equal(message);
        expect((error as Error).message).not.to.contain('\n');
      }
    });
  });
});
