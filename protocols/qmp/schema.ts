/**
 * A small argument-schema language after QAPI's types, so a command table can
 * say what it takes and `validate-arguments.ts` can refuse the rest with
 * QEMU's errors. Builders live on the `qapi` object:
 *
 * @example
 * const args = qapi.object({
 *   capabilities: qapi.array(qapi.object({
 *     capability: qapi.enumOf(['events', 'multifd']),
 *     state: qapi.bool,
 *   })),
 *   detach: qapi.optional(qapi.bool),
 * });
 * type Args = Infer<typeof args>;
 * // { capabilities: { capability: 'events' | 'multifd'; state: boolean }[]; detach?: boolean }
 */
import type { JsonObject } from './types.js';

export type ScalarKind = 'str' | 'bool' | 'int' | 'uint8' | 'uint32' | 'uint64' | 'size' | 'number' | 'null' | 'any';

export interface ScalarSchema<K extends ScalarKind = ScalarKind> {
  readonly kind: K;
}
export interface EnumSchema<V extends string = string> {
  readonly kind: 'enum';
  readonly values: readonly V[];
}
export interface ArraySchema<T extends Schema = Schema> {
  readonly kind: 'array';
  readonly of: T;
}
/** A member that may be left out. */
export interface OptionalMember<T extends Schema = Schema> {
  readonly kind: 'optional';
  readonly of: T;
}
export type Member = Schema | OptionalMember;
export interface ObjectSchema<M extends Record<string, Member> = Record<string, Member>> {
  readonly kind: 'object';
  /** Visited in this order, like QAPI's generated visitors. */
  readonly members: M;
}
/**
 * QAPI's alternate: one of several types told apart by the JSON type of the
 * value (StrOrNull is `alternate('StrOrNull', qapi.str, qapi.null)`).
 */
export interface AlternateSchema<T extends readonly Schema[] = readonly Schema[]> {
  readonly kind: 'alternate';
  readonly name: string;
  readonly branches: T;
}

export type Schema = ScalarSchema | EnumSchema | ArraySchema | ObjectSchema | AlternateSchema;

const scalar = <K extends ScalarKind>(kind: K): ScalarSchema<K> => ({ kind });

export const qapi = {
  str: scalar('str'),
  bool: scalar('bool'),
  /** int64 */
  int: scalar('int'),
  uint8: scalar('uint8'),
  uint32: scalar('uint32'),
  uint64: scalar('uint64'),
  /** A byte count; on the wire a uint64. */
  size: scalar('size'),
  number: scalar('number'),
  null: scalar('null'),
  any: scalar('any'),
  enumOf: <const V extends string>(values: readonly V[]): EnumSchema<V> => ({ kind: 'enum', values }),
  array: <T extends Schema>(of: T): ArraySchema<T> => ({ kind: 'array', of }),
  optional: <T extends Schema>(of: T): OptionalMember<T> => ({ kind: 'optional', of }),
  object: <const M extends Record<string, Member>>(members: M): ObjectSchema<M> => ({ kind: 'object', members }),
  alternate: <const T extends readonly Schema[]>(name: string, ...branches: T): AlternateSchema<T> => ({
    kind: 'alternate',
    name,
    branches,
  }),
};

/** An object schema with no members: for commands that take no arguments. */
export const NO_ARGUMENTS = qapi.object({});

interface ScalarTypes {
  str: string;
  bool: boolean;
  /** Exact: a bigint beyond the safe range. */
  int: number | bigint;
  uint8: number;
  uint32: number;
  uint64: number | bigint;
  size: number | bigint;
  number: number;
  null: null;
  any: unknown;
}

type RequiredKeys<M> = { [K in keyof M]: M[K] extends OptionalMember ? never : K }[keyof M];
type OptionalKeys<M> = { [K in keyof M]: M[K] extends OptionalMember ? K : never }[keyof M];
type Simplify<T> = { [K in keyof T]: T[K] } & {};

/**
 * The arguments a command's schema accepts: its inferred type, or plain
 * JSON for a schema only known as "some object" (a table's erased entries).
 */
export type ArgumentsOf<S extends ObjectSchema> = ObjectSchema extends S ? JsonObject : Infer<S>;

/** The value a schema accepts, after validation. */
export type Infer<S> =
  S extends ScalarSchema<infer K>
    ? ScalarTypes[K]
    : S extends EnumSchema<infer V>
      ? V
      : S extends ArraySchema<infer T>
        ? Infer<T>[]
        : S extends AlternateSchema<infer T>
          ? Infer<T[number]>
          : S extends ObjectSchema<infer M>
            ? Simplify<
                { [K in RequiredKeys<M>]: Infer<M[K]> } & {
                  [K in OptionalKeys<M>]?: M[K] extends OptionalMember<infer T> ? Infer<T> : never;
                }
              >
            : never;
