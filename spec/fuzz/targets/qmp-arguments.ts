/**
 * A QMP request as a client sends it (protocols/qmp: request.ts and
 * validate-arguments.ts): the JSON text, the `execute`/`arguments`/`id`
 * envelope, then the arguments against the command's schema. Each refusal
 * is a JsonParseError or a QmpError with QEMU's text.
 */
import { expect } from 'chai';
import * as fc from 'fast-check';
import { QmpError } from '../../../protocols/qmp/errors.js';
import { decodeJson } from '../../../protocols/qmp/json-decode.js';
import { encodeJson } from '../../../protocols/qmp/json-encode.js';
import { JsonParseError } from '../../../protocols/qmp/json-parser.js';
import { checkRequest } from '../../../protocols/qmp/request.js';
import { qapi, type ObjectSchema, type Schema } from '../../../protocols/qmp/schema.js';
import type { JsonValue } from '../../../protocols/qmp/types.js';
import { validateArguments } from '../../../protocols/qmp/validate-arguments.js';
import { withinBounds } from '../bounds.js';
import { whole } from '../chunking.js';
import type { FuzzTarget } from '../fuzz-target.js';
import { hostileBytes } from '../mutation.js';
import { acceptsOrRejects } from '../rejection.js';
import { jsonValueArbitrary } from './qmp-json.js';

/** Schemas shaped like livemig's commands, between them every kind of member. */
const SCHEMAS: readonly ObjectSchema[] = [
  qapi.object({ capabilities: qapi.array(qapi.object({ capability: qapi.enumOf(['xbzrle', 'multifd', 'postcopy-ram']), state: qapi.bool })) }),
  qapi.object({
    'max-bandwidth': qapi.optional(qapi.size),
    'downtime-limit': qapi.optional(qapi.uint64),
    'multifd-channels': qapi.optional(qapi.uint8),
    'x-checkpoint-delay': qapi.optional(qapi.uint32),
    'tls-creds': qapi.optional(qapi.alternate('StrOrNull', qapi.str, qapi.null)),
    'announce-rounds': qapi.optional(qapi.int),
    'throttle-ratio': qapi.optional(qapi.number),
  }),
  qapi.object({ uri: qapi.optional(qapi.str), detach: qapi.optional(qapi.bool), blob: qapi.optional(qapi.any), nested: qapi.optional(qapi.object({ n: qapi.int, list: qapi.array(qapi.uint8) })) }),
];

const INT64_MIN = -(1n << 63n);
const INT64_MAX = (1n << 63n) - 1n;
const UINT64_MAX = (1n << 64n) - 1n;

/** As QMP hands integers on: a number when safe, a bigint beyond. */
const exactInteger = (min: bigint, max: bigint): fc.Arbitrary<JsonValue> =>
  fc.bigInt({ min, max }).map((n) => (Number.isSafeInteger(Number(n)) ? Number(n) : n));

/** Values `schema` accepts, written the way validation returns them. */
function valueFor(schema: Schema): fc.Arbitrary<JsonValue> {
  switch (schema.kind) {
    case 'str':
      return fc.string({ maxLength: 12 });
    case 'bool':
      return fc.boolean();
    case 'null':
      return fc.constant(null);
    case 'any':
      return jsonValueArbitrary;
    case 'number':
      return fc.double({ noNaN: true, noDefaultInfinity: true, min: -1e6, max: 1e6 }).filter((d) => !Number.isInteger(d));
    case 'int':
      return exactInteger(INT64_MIN, INT64_MAX);
    case 'uint64':
    case 'size':
      return exactInteger(0n, UINT64_MAX);
    case 'uint8':
      return fc.nat({ max: 0xff });
    case 'uint32':
      return fc.nat({ max: 0xffffffff });
    case 'enum':
      return fc.constantFrom(...schema.values);
    case 'array':
      return fc.array(valueFor(schema.of), { maxLength: 3 });
    case 'alternate':
      return fc.oneof(...schema.branches.map(valueFor));
    case 'object':
      return fc.record(
        Object.fromEntries(Object.entries(schema.members).map(([name, member]) => [name, valueFor(member.kind === 'optional' ? member.of : member)])),
        { requiredKeys: Object.entries(schema.members).filter(([, member]) => member.kind !== 'optional').map(([name]) => name) },
      );
  }
}

const request = (args: JsonValue, id: JsonValue): Uint8Array => Buffer.from(encodeJson({ execute: 'some-command', arguments: args, id }));

/** A valid request for the schema the input's first byte picks. */
const validArbitrary = fc.nat({ max: SCHEMAS.length - 1 }).chain((index) =>
  fc.tuple(valueFor(SCHEMAS[index] as ObjectSchema), fc.nat()).map(([args, id]) => ({ index, args, bytes: request(args, id) })),
);

/** Well-formed JSON whose members have the schema's names (and others) with any values, envelope members included. */
const junkArbitrary: fc.Arbitrary<Uint8Array> = fc
  .record({
    index: fc.nat({ max: SCHEMAS.length - 1 }),
    args: fc.dictionary(fc.constantFrom('capabilities', 'capability', 'state', 'max-bandwidth', 'multifd-channels', 'tls-creds', 'uri', 'nested', 'n', 'list', 'bogus', '__proto__'), jsonValueArbitrary, { maxKeys: 4 }),
    envelope: fc.dictionary(fc.constantFrom('execute', 'exec-oob', 'arguments', 'id', 'extra'), jsonValueArbitrary, { maxKeys: 2 }),
  })
  .map(({ index, args, envelope }) => Buffer.concat([Uint8Array.of(index), Buffer.from(encodeJson({ execute: 'some-command', arguments: args, ...envelope }))]));

function validate(bytes: Uint8Array): JsonValue {
  const schema = SCHEMAS[(bytes[0] ?? 0) % SCHEMAS.length] as ObjectSchema;
  const { arguments: args } = checkRequest(decodeJson(Buffer.from(bytes.subarray(1)).toString('utf8')), false);
  return validateArguments(schema, args) as JsonValue;
}

export const qmpArgumentsTarget: FuzzTarget = {
  name: 'qmp-arguments',
  input: whole(hostileBytes(validArbitrary.map(({ index, bytes }) => Buffer.concat([Uint8Array.of(index), bytes])), junkArbitrary)),
  check({ bytes }) {
    withinBounds(bytes.length, () => acceptsOrRejects(() => validate(bytes), [JsonParseError, QmpError]));
  },
  roundTrip: fc.property(validArbitrary, ({ index, args, bytes }) => {
    expect(validate(Buffer.concat([Uint8Array.of(index), bytes]))).to.deep.equal(args);
  }),
};
