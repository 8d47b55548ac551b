/**
 * Checks a command's `arguments` against its schema the way QEMU's
 * qobject-input visitor does, with its error texts and in its order:
 * members in schema order (missing or mistyped ones first), then members
 * the schema does not know. Names in messages are QEMU's: the full path
 * (`capabilities[0].state`) for type, missing and unexpected errors, the bare
 * member name (or `null` inside a list) for range and enum errors.
 *
 * Integer handling follows QAPI: a uint64 also takes a negative int64 and
 * wraps it (QEMU keeps that for backward compatibility); uint8/uint32 then
 * check their range. A fraction, or a number beyond 2^53 that was not
 * written as an integer, is not an integer. An integral float such as `2.0`
 * is taken as the integer 2 (QEMU would refuse it; JSON numbers reach us
 * without their spelling).
 */
import { setMember } from './json-parser.js';
import { genericError } from './errors.js';
import type { AlternateSchema, ArgumentsOf, ObjectSchema, Schema } from './schema.js';
import type { JsonObject, JsonValue } from './types.js';

type Path = ReadonlyArray<string | number>;

/**
 * @returns a copy of `args` holding only the schema's members, integers
 * converted as QAPI converts them.
 * @throws QmpError (GenericError) with QEMU's text.
 */
export function validateArguments<S extends ObjectSchema>(schema: S, args: JsonObject): ArgumentsOf<S> {
  return visitObject(schema, args, []) as ArgumentsOf<S>;
}

const UINT64_MAX = (1n << 64n) - 1n;
const INT64_MIN = -(1n << 63n);
const INT64_MAX = (1n << 63n) - 1n;

/** QEMU's full_name(): `a.b[2].c`. */
function fullName(path: Path): string {
  return path.map((segment, i) => (typeof segment === 'number' ? `[${segment}]` : i === 0 ? segment : `.${segment}`)).join('');
}

/** The member's own name, as visit_type_uintN and enum input use it; list elements have none. */
function bareName(path: Path): string {
  const last = path[path.length - 1];
  return typeof last === 'string' ? last : 'null';
}

const invalidType = (name: string, expected: string) =>
  genericError(`Invalid parameter type for '${name}', expected: ${expected}`);

function isObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function visit(schema: Schema, value: JsonValue, path: Path): unknown {
  switch (schema.kind) {
    case 'str':
      if (typeof value !== 'string') throw invalidType(fullName(path), 'string');
      return value;
    case 'bool':
      if (typeof value !== 'boolean') throw invalidType(fullName(path), 'boolean');
      return value;
    case 'null':
      if (value !== null) throw invalidType(fullName(path), 'null');
      return null;
    case 'any':
      return value;
    case 'number':
      if (typeof value === 'number') return value;
      if (typeof value === 'bigint') return Number(value);
      throw invalidType(fullName(path), 'number');
    case 'int':
      if (typeof value === 'number' && Number.isSafeInteger(value)) return value;
      if (typeof value === 'bigint' && value >= INT64_MIN && value <= INT64_MAX) return exact(value);
      throw invalidType(fullName(path), 'integer');
    case 'uint64':
    case 'size':
      return exact(uint64(value, path));
    case 'uint8':
      return uintN(value, path, 0xffn, 'uint8_t');
    case 'uint32':
      return uintN(value, path, 0xffffffffn, 'uint32_t');
    case 'enum':
      if (typeof value !== 'string') throw invalidType(fullName(path), 'string');
      if (!schema.values.includes(value)) {
        throw genericError(`Parameter '${bareName(path)}' does not accept value '${value}'`);
      }
      return value;
    case 'array':
      if (!Array.isArray(value)) throw invalidType(fullName(path), 'array');
      return value.map((item, i) => visit(schema.of, item, [...path, i]));
    case 'object':
      if (!isObject(value)) throw invalidType(fullName(path), 'object');
      return visitObject(schema, value, path);
    case 'alternate':
      return visit(pickBranch(schema, value, path), value, path);
  }
}

function visitObject(schema: ObjectSchema, object: JsonObject, path: Path): JsonObject {
  const result: JsonObject = {};
  for (const [name, member] of Object.entries(schema.members)) {
    const memberPath = [...path, name];
    if (!Object.hasOwn(object, name)) {
      if (member.kind === 'optional') continue;
      throw genericError(`Parameter '${fullName(memberPath)}' is missing`);
    }
    const memberSchema = member.kind === 'optional' ? member.of : member;
    setMember(result, name, visit(memberSchema, object[name]!, memberPath) as JsonValue);
  }
  const unexpected = Object.keys(object).find((key) => !Object.hasOwn(schema.members, key));
  if (unexpected !== undefined) throw genericError(`Parameter '${fullName([...path, unexpected])}' is unexpected`);
  return result;
}

/** qobject_input_type_uint64: any int64 or uint64; negatives wrap. */
function uint64(value: JsonValue, path: Path): bigint {
  let n: bigint | null = null;
  if (typeof value === 'number' && Number.isSafeInteger(value)) n = BigInt(value);
  else if (typeof value === 'bigint') n = value;
  if (n === null || n > UINT64_MAX || n < INT64_MIN) throw genericError(`Parameter '${fullName(path)}' expects uint64`);
  return n < 0n ? n + (1n << 64n) : n;
}

function uintN(value: JsonValue, path: Path, max: bigint, type: string): number {
  const n = uint64(value, path);
  if (n > max) throw genericError(`Parameter '${bareName(path)}' expects ${type}`);
  return Number(n);
}

/** A number when it is safe as one, else the bigint. */
function exact(n: bigint): number | bigint {
  return n >= BigInt(Number.MIN_SAFE_INTEGER) && n <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(n) : n;
}

type JsonKind = 'string' | 'boolean' | 'number' | 'null' | 'object' | 'array';

function jsonKind(value: JsonValue): JsonKind {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  switch (typeof value) {
    case 'string':
      return 'string';
    case 'boolean':
      return 'boolean';
    case 'number':
    case 'bigint':
      return 'number';
    default:
      return 'object';
  }
}

const BRANCH_KIND: Record<Schema['kind'], JsonKind | null> = {
  str: 'string',
  enum: 'string',
  bool: 'boolean',
  int: 'number',
  uint8: 'number',
  uint32: 'number',
  uint64: 'number',
  size: 'number',
  number: 'number',
  null: 'null',
  object: 'object',
  array: 'array',
  any: null,
  alternate: null,
};

function pickBranch(schema: AlternateSchema, value: JsonValue, path: Path): Schema {
  const kind = jsonKind(value);
  const branch = schema.branches.find((b) => BRANCH_KIND[b.kind] === kind);
  if (branch === undefined) throw invalidType(bareName(path), schema.name);
  return branch;
}
