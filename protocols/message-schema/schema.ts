/**
 * A small schema checker for msgpack-decoded messages from the network.
 *
 * Decoded input is hostile: a message must be a plain map holding exactly the
 * fields of its schema (no more), each of the right type and range. The
 * checker returns a description of the first problem, naming the field by its
 * path (`blocks[2].size`), and leaves the choice of error class to the
 * protocol that uses it.
 */

export type FieldSpec =
  | { readonly kind: 'uint'; readonly max: number; readonly optional?: boolean }
  | {
      readonly kind: 'string';
      readonly maxLength: number;
      readonly pattern?: RegExp;
      readonly optional?: boolean;
    }
  | { readonly kind: 'oneOf'; readonly values: readonly string[]; readonly optional?: boolean }
  | { readonly kind: 'bytes'; readonly optional?: boolean }
  | { readonly kind: 'list'; readonly of: FieldSpec; readonly maxItems: number; readonly optional?: boolean }
  | { readonly kind: 'map'; readonly fields: Fields; readonly optional?: boolean };

export type Fields = Readonly<Record<string, FieldSpec>>;

/** An integer from 0 to `max` (at most 2^53 - 1, so it is exact as a JS number). */
export const uint = (max: number): FieldSpec => ({ kind: 'uint', max });
/** A non-empty string of at most `maxLength` characters, optionally matching `pattern`. */
export const text = (maxLength: number, pattern?: RegExp): FieldSpec =>
  pattern ? { kind: 'string', maxLength, pattern } : { kind: 'string', maxLength };
export const oneOf = (values: readonly string[]): FieldSpec => ({ kind: 'oneOf', values });
export const bytes = (): FieldSpec => ({ kind: 'bytes' });
export const listOf = (of: FieldSpec, maxItems: number): FieldSpec => ({ kind: 'list', of, maxItems });
export const mapOf = (fields: Fields): FieldSpec => ({ kind: 'map', fields });
export const optional = (spec: FieldSpec): FieldSpec => ({ ...spec, optional: true });

export const U16_MAX = 0xffff;
export const U32_MAX = 0xffffffff;

/**
 * Checks that `value` is a plain map with exactly `fields`.
 * Returns undefined when it conforms, else what is wrong with which field.
 */
export function checkFields(value: unknown, fields: Fields, path = ''): string | undefined {
  if (!isPlainMap(value)) return `${path ? `field '${path}'` : 'message'} must be a map, got ${describe(value)}`;
  for (const key of Object.keys(value)) {
    if (!Object.hasOwn(fields, key)) return `field '${join(path, key)}' is not part of the message`;
  }
  for (const [key, spec] of Object.entries(fields)) {
    const fieldPath = join(path, key);
    // msgpack can carry an explicit nil/undefined; treat it as absent.
    const field = Object.hasOwn(value, key) ? value[key] : undefined;
    if (field === undefined) {
      if (spec.optional) continue;
      return `field '${fieldPath}' is missing`;
    }
    const problem = checkField(field, spec, fieldPath);
    if (problem) return problem;
  }
  return undefined;
}

function checkField(value: unknown, spec: FieldSpec, path: string): string | undefined {
  switch (spec.kind) {
    case 'uint':
      if (typeof value === 'number' && Number.isInteger(value) && value >= 0 && value <= spec.max) return undefined;
      return `field '${path}' must be an integer from 0 to ${spec.max}, got ${describe(value)}`;
    case 'string':
      if (typeof value !== 'string') return `field '${path}' must be a string, got ${describe(value)}`;
      if (value.length === 0 || value.length > spec.maxLength) {
        return `field '${path}' must be 1 to ${spec.maxLength} characters long, got ${value.length}`;
      }
      if (spec.pattern && !spec.pattern.test(value)) return `field '${path}' is malformed: ${quote(value)}`;
      return undefined;
    case 'oneOf':
      if (typeof value === 'string' && spec.values.includes(value)) return undefined;
      return `field '${path}' must be one of ${spec.values.join(', ')}, got ${describe(value)}`;
    case 'bytes':
      if (value instanceof Uint8Array) return undefined;
      return `field '${path}' must be binary data, got ${describe(value)}`;
    case 'list': {
      if (!Array.isArray(value)) return `field '${path}' must be a list, got ${describe(value)}`;
      if (value.length > spec.maxItems) return `field '${path}' has ${value.length} items, more than ${spec.maxItems}`;
      for (let i = 0; i < value.length; i++) {
        const problem = checkField(value[i], spec.of, `${path}[${i}]`);
        if (problem) return problem;
      }
      return undefined;
    }
    case 'map':
      return checkFields(value, spec.fields, path);
  }
}

function isPlainMap(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null) return false;
  const proto: unknown = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

function join(path: string, key: string): string {
  return path ? `${path}.${key}` : key;
}

/** A short, bounded description of a hostile value for an error message. */
export function describe(value: unknown): string {
  if (value === null) return 'nil';
  if (value === undefined) return 'nothing';
  if (typeof value === 'number') return `the number ${value}`;
  if (typeof value === 'string') return `the string ${quote(value)}`;
  if (typeof value === 'bigint') return `the integer ${value}`;
  if (typeof value === 'boolean') return String(value);
  if (value instanceof Uint8Array) return `${value.length} bytes of binary data`;
  if (Array.isArray(value)) return `a list of ${value.length} items`;
  if (isPlainMap(value)) return 'a map';
  if (typeof value === 'object') return `a ${Object.getPrototypeOf(value)?.constructor?.name ?? 'object'}`;
  return typeof value;
}

function quote(value: string): string {
  return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value);
}
