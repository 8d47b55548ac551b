/**
 * QEMU 8.2's MigrationParameters: the 31 parameters with their QAPI types and
 * defaults, migrate_params_check with QEMU's texts, and
 * migrate-set-parameters' test-apply-then-commit.
 *
 * 64-bit parameters (QAPI size and uint64) are bigints, so values above
 * 2^53 stay exact; uint8/uint32 ones are numbers.
 *
 * @example
 * const params = applyParameters(DEFAULT_PARAMETERS, { 'max-bandwidth': 1n << 30n, 'tls-hostname': null });
 * params['max-bandwidth'] === 1073741824n; params['tls-hostname'] === '';
 */
import { TARGET_PAGE_SIZE } from '../guest/constants.js';
import { unavailable } from '../../protocols/multifd/compression.js';
import { COMPRESSION_METHODS, type CompressionMethod } from '../../protocols/multifd/constants.js';
import { genericError } from '../../protocols/qmp/errors.js';
import { decodeJson } from '../../protocols/qmp/json-decode.js';
import { qapi, type Schema } from '../../protocols/qmp/schema.js';
import type { JsonObject, JsonValue } from '../../protocols/qmp/types.js';
import { validateArguments } from '../../protocols/qmp/validate-arguments.js';
import { parseSize } from '../../protocols/size.js';
import {
  blockBitmapMappingError,
  BLOCK_BITMAP_MAPPING_SCHEMA,
  type BitmapMigrationNodeAlias,
} from './block-bitmap-mapping.js';
import { parseFlagBool, splitFlag, StartupFlagError } from './startup-flag.js';

/** MigMode (8.2). */
export const MIG_MODES = ['normal', 'cpr-reboot'] as const;
export type MigMode = (typeof MIG_MODES)[number];

export interface MigrationParameters {
  'announce-initial': bigint;
  'announce-max': bigint;
  'announce-rounds': bigint;
  'announce-step': bigint;
  'compress-level': number;
  'compress-threads': number;
  'compress-wait-thread': boolean;
  'decompress-threads': number;
  'throttle-trigger-threshold': number;
  'cpu-throttle-initial': number;
  'cpu-throttle-increment': number;
  'cpu-throttle-tailslow': boolean;
  'tls-creds': string;
  'tls-hostname': string;
  'tls-authz': string;
  'max-bandwidth': bigint;
  'avail-switchover-bandwidth': bigint;
  'downtime-limit': bigint;
  'x-checkpoint-delay': number;
  'block-incremental': boolean;
  'multifd-channels': number;
  'xbzrle-cache-size': bigint;
  'max-postcopy-bandwidth': bigint;
  'max-cpu-throttle': number;
  'multifd-compression': CompressionMethod;
  'multifd-zlib-level': number;
  'multifd-zstd-level': number;
  /** Absent until set (query-migrate-parameters then leaves it out). */
  'block-bitmap-mapping'?: BitmapMigrationNodeAlias[];
  'x-vcpu-dirty-limit-period': bigint;
  'vcpu-dirty-limit': bigint;
  mode: MigMode;
}

export type MigrationParameterName = keyof MigrationParameters;

type Wide<T> = T extends bigint ? number | bigint : T;

/**
 * migrate-set-parameters' arguments (MigrateSetParameters): every member
 * optional, 64-bit values as number or bigint, tls-* also null (meaning "").
 */
export type MigrateSetParameters = {
  [K in Exclude<MigrationParameterName, 'tls-creds' | 'tls-hostname' | 'tls-authz'>]?: Wide<MigrationParameters[K]>;
} & {
  'tls-creds'?: string | null;
  'tls-hostname'?: string | null;
  'tls-authz'?: string | null;
};

/** QEMU's defaults (migration_properties / migrate_params_init). */
export const DEFAULT_PARAMETERS: Readonly<MigrationParameters> = Object.freeze({
  'announce-initial': 50n,
  'announce-max': 550n,
  'announce-rounds': 5n,
  'announce-step': 100n,
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
  'max-bandwidth': 128n << 20n,
  'avail-switchover-bandwidth': 0n,
  'downtime-limit': 300n,
  'x-checkpoint-delay': 20_000,
  'block-incremental': false,
  'multifd-channels': 2,
  'xbzrle-cache-size': 64n << 20n,
  'max-postcopy-bandwidth': 0n,
  'max-cpu-throttle': 99,
  'multifd-compression': 'none',
  'multifd-zlib-level': 1,
  'multifd-zstd-level': 1,
  'x-vcpu-dirty-limit-period': 1000n,
  'vcpu-dirty-limit': 1n,
  mode: 'normal',
});

const strOrNull = qapi.alternate('StrOrNull', qapi.str, qapi.null);

/** Each parameter's QAPI type, in QAPI order (the order members are checked in). */
const PARAMETER_TYPES = {
  'announce-initial': qapi.size,
  'announce-max': qapi.size,
  'announce-rounds': qapi.size,
  'announce-step': qapi.size,
  'compress-level': qapi.uint8,
  'compress-threads': qapi.uint8,
  'compress-wait-thread': qapi.bool,
  'decompress-threads': qapi.uint8,
  'throttle-trigger-threshold': qapi.uint8,
  'cpu-throttle-initial': qapi.uint8,
  'cpu-throttle-increment': qapi.uint8,
  'cpu-throttle-tailslow': qapi.bool,
  'tls-creds': strOrNull,
  'tls-hostname': strOrNull,
  'tls-authz': strOrNull,
  'max-bandwidth': qapi.size,
  'avail-switchover-bandwidth': qapi.size,
  'downtime-limit': qapi.uint64,
  'x-checkpoint-delay': qapi.uint32,
  'block-incremental': qapi.bool,
  'multifd-channels': qapi.uint8,
  'xbzrle-cache-size': qapi.size,
  'max-postcopy-bandwidth': qapi.size,
  'max-cpu-throttle': qapi.uint8,
  'multifd-compression': qapi.enumOf(COMPRESSION_METHODS),
  'multifd-zlib-level': qapi.uint8,
  'multifd-zstd-level': qapi.uint8,
  'block-bitmap-mapping': BLOCK_BITMAP_MAPPING_SCHEMA,
  'x-vcpu-dirty-limit-period': qapi.uint64,
  'vcpu-dirty-limit': qapi.uint64,
  mode: qapi.enumOf(MIG_MODES),
} as const satisfies Record<MigrationParameterName, Schema>;

/** Parameter names in QAPI order (query-migrate-parameters' order). */
export const MIGRATION_PARAMETER_NAMES = Object.keys(PARAMETER_TYPES) as MigrationParameterName[];

type OptionalMembers<T> = { [K in keyof T]: { readonly kind: 'optional'; readonly of: T[K] } };

/** The QMP arguments of migrate-set-parameters: all 31 optional. */
export const MIGRATE_SET_PARAMETERS_ARGS = qapi.object(
  Object.fromEntries(Object.entries(PARAMETER_TYPES).map(([name, type]) => [name, qapi.optional(type)])) as OptionalMembers<
    typeof PARAMETER_TYPES
  >,
);

export interface ParameterCheckContext {
  /** The zero-copy-send capability is on (it forbids compression and TLS). */
  zeroCopySend: boolean;
}

const outOfRange = (name: string, range: string) => genericError(`Parameter '${name}' expects ${range}`);

/**
 * migrate_params_check on a complete parameter set, in QEMU's order and
 * with its texts (member names with underscores, as QEMU prints them).
 * max-bandwidth and avail-switchover-bandwidth need no check: QEMU's bound
 * is SIZE_MAX, which every uint64 meets. 8.2 forgot to test-apply the
 * multifd zlib/zstd levels, so it took out-of-range values for them; the
 * bounds are checked here as the reference gives them.
 *
 * @throws QmpError (GenericError)
 */
export function checkParameters(p: Readonly<MigrationParameters>, ctx: ParameterCheckContext = { zeroCopySend: false }): void {
  if (p['compress-level'] > 9) throw outOfRange('compress_level', 'a value between 0 and 9');
  if (p['compress-threads'] < 1) throw outOfRange('compress_threads', 'a value between 1 and 255');
  if (p['decompress-threads'] < 1) throw outOfRange('decompress_threads', 'a value between 1 and 255');
  const threshold = p['throttle-trigger-threshold'];
  if (threshold < 1 || threshold > 100) throw outOfRange('throttle_trigger_threshold', 'an integer in the range of 1 to 100');
  const initial = p['cpu-throttle-initial'];
  if (initial < 1 || initial > 99) throw outOfRange('cpu_throttle_initial', 'an integer in the range of 1 to 99');
  const increment = p['cpu-throttle-increment'];
  if (increment < 1 || increment > 99) throw outOfRange('cpu_throttle_increment', 'an integer in the range of 1 to 99');
  if (p['downtime-limit'] > 2_000_000n) throw outOfRange('downtime_limit', 'an integer in the range of 0 to (2000 * 1000) ms');
  // x-checkpoint-delay: any uint32 is valid ("always positive").
  if (p['multifd-channels'] < 1) throw outOfRange('multifd_channels', 'a value between 1 and 255');
  if (p['multifd-zlib-level'] > 9) throw outOfRange('multifd_zlib_level', 'a value between 0 and 9');
  if (p['multifd-zstd-level'] > 20) throw outOfRange('multifd_zstd_level', 'a value between 0 and 20');
  // As a QEMU built without zstd refuses the value, naming here why this build lacks it.
  const missing = unavailable(p['multifd-compression']);
  if (missing !== undefined) throw genericError(`Parameter 'multifd-compression' does not accept value '${p['multifd-compression']}': ${missing}`);
  const cache = p['xbzrle-cache-size'];
  if (cache < BigInt(TARGET_PAGE_SIZE) || (cache & (cache - 1n)) !== 0n) {
    throw outOfRange('xbzrle_cache_size', 'a power of two no less than the target page size');
  }
  const maxThrottle = p['max-cpu-throttle'];
  if (maxThrottle < initial || maxThrottle > 99) {
    throw outOfRange('max_cpu_throttle', 'an integer in the range of cpu_throttle_initial to 99');
  }
  if (p['announce-initial'] > 100_000n) throw outOfRange('announce_initial', 'a value between 0 and 100000');
  if (p['announce-max'] > 100_000n) throw outOfRange('announce_max', 'a value between 0 and 100000');
  if (p['announce-rounds'] > 1000n) throw outOfRange('announce_rounds', 'a value between 0 and 1000');
  const step = p['announce-step'];
  if (step < 1n || step > 10_000n) throw outOfRange('announce_step', 'a value between 0 and 10000');
  const mapping = p['block-bitmap-mapping'];
  const mappingError = mapping === undefined ? null : blockBitmapMappingError(mapping);
  if (mappingError !== null) throw genericError(`Invalid mapping given for block-bitmap-mapping: ${mappingError}`);
  if (ctx.zeroCopySend && (p['multifd-compression'] !== 'none' || p['tls-creds'] !== '')) {
    throw genericError('Zero copy only available for non-compressed non-TLS multifd migration');
  }
  const period = p['x-vcpu-dirty-limit-period'];
  if (period < 1n || period > 1000n) throw outOfRange('x-vcpu-dirty-limit-period', 'a value between 1 and 1000');
  // 8.2's text, grammar included.
  if (p['vcpu-dirty-limit'] < 1n) throw outOfRange('vcpu_dirty_limit', 'is invalid, it must greater then 1 MB/s');
}

/** Parameters held as bigints: QAPI size and uint64. */
const WIDE = new Set<MigrationParameterName>(
  MIGRATION_PARAMETER_NAMES.filter((name) => ['size', 'uint64'].includes(PARAMETER_TYPES[name].kind)),
);

/** The parameters with `set` overlaid: QEMU's migrate_params_test_apply (null tls-* become ""). */
function overlay(current: Readonly<MigrationParameters>, set: MigrateSetParameters): MigrationParameters {
  const next: Record<string, unknown> = { ...current };
  for (const name of MIGRATION_PARAMETER_NAMES) {
    const value = set[name];
    if (value === undefined) continue;
    if (value === null) next[name] = '';
    else if (WIDE.has(name)) next[name] = BigInt(value as number | bigint);
    else next[name] = value;
  }
  return next as unknown as MigrationParameters;
}

/**
 * migrate-set-parameters: overlays `set` on `current`, checks the whole
 * result, and returns it; a refused set changes nothing. Allowed while a
 * migration runs; the caller applies the live ones.
 *
 * @throws QmpError (GenericError)
 */
export function applyParameters(
  current: Readonly<MigrationParameters>,
  set: MigrateSetParameters,
  ctx?: ParameterCheckContext,
): Readonly<MigrationParameters> {
  const next = overlay(current, set);
  checkParameters(next, ctx);
  return Object.freeze(next);
}

/**
 * query-migrate-parameters: every parameter in QAPI order; tls-authz is ""
 * when unset, block-bitmap-mapping only once it has been set.
 */
export function queryParameters(p: Readonly<MigrationParameters>): JsonObject {
  const result: JsonObject = {};
  for (const name of MIGRATION_PARAMETER_NAMES) {
    const value = p[name];
    if (value !== undefined) result[name] = value as JsonValue;
  }
  return result;
}

export function isMigrationParameter(name: string): name is MigrationParameterName {
  return Object.hasOwn(PARAMETER_TYPES, name);
}

const UINT64_MAX = (1n << 64n) - 1n;
const UINT_MAX: Partial<Record<Schema['kind'], bigint>> = { uint8: 0xffn, uint32: 0xffffffffn, uint64: UINT64_MAX };

/**
 * A `--param NAME=VALUE` flag, typed: size parameters take K/M/G/T/P/E
 * suffixes (binary, e.g. `max-bandwidth=1G`), other integers plain
 * decimals, booleans on/off, block-bitmap-mapping its JSON. Ranges are left
 * to applyParameters, which gives QEMU's texts.
 *
 * @throws StartupFlagError with a one-line message
 */
export function parseParamFlag(text: string): MigrateSetParameters {
  const { name, value } = splitFlag(text);
  const bad = (why: string) => new StartupFlagError(`--param ${text}: ${why}`);
  if (!isMigrationParameter(name)) throw bad(`unknown parameter '${name}'`);
  if (value === undefined) throw bad('expected NAME=VALUE');
  const type: Schema = PARAMETER_TYPES[name];
  switch (type.kind) {
    case 'size':
      try {
        return { [name]: parseSize(value) };
      } catch (error) {
        throw bad((error as Error).message);
      }
    case 'uint8':
    case 'uint32':
    case 'uint64': {
      const max = UINT_MAX[type.kind]!;
      if (!/^\d+$/.test(value)) throw bad(`'${value}' is not an integer`);
      const n = BigInt(value);
      if (n > max) throw bad(`${value} is out of range (0 to ${max})`);
      return { [name]: type.kind === 'uint64' ? n : Number(n) };
    }
    case 'bool': {
      const state = parseFlagBool(value);
      if (state === null) throw bad(`'${value}' is not on or off`);
      return { [name]: state };
    }
    case 'enum':
      if (!type.values.includes(value)) throw bad(`'${value}' is not one of ${type.values.join(', ')}`);
      return { [name]: value };
    case 'alternate':
      return { [name]: value };
    default:
      try {
        return validateArguments(qapi.object({ [name]: type }), { [name]: decodeJson(value) }) as MigrateSetParameters;
      } catch (error) {
        throw bad((error as Error).message);
      }
  }
}
