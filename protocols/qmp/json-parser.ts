/**
 * Parses one message's tokens into a value, after QEMU's json-parser: the
 * first error found in reading order is the one reported, with QEMU's text
 * ("JSON parse error, ..."). Strings are unescaped and checked for UTF-8
 * here, as QEMU does, so a bad string is reported in its place.
 *
 * Integers stay exact: a safe integer is a `number`; one beyond that but
 * within int64 or uint64 a `bigint`; larger ones are floats, as in QEMU. A
 * duplicate key is an error, as in QEMU.
 */
import type { TokenType } from './json-lexer.js';
import type { JsonObject, JsonValue } from './types.js';

export class JsonParseError extends Error {
  override readonly name = 'JsonParseError';
  readonly code = 'JSON_PARSE_ERROR';
}

/** A token as the lexer found it: `text` holds its bytes, one char per byte. */
export interface Token {
  type: TokenType;
  text: string;
}

export const parseError = (message: string) => new JsonParseError(`JSON parse error, ${message}`);

/** The value the tokens spell, or the first reason they do not spell one. */
export function parseTokens(tokens: readonly Token[]): { value: JsonValue } | { error: JsonParseError } {
  try {
    return { value: new Parser(tokens).value() };
  } catch (error) {
    if (error instanceof JsonParseError) return { error };
    throw error;
  }
}

class Parser {
  private pos = 0;
  constructor(private readonly tokens: readonly Token[]) {}

  value(): JsonValue {
    const token = this.next();
    switch (token.type) {
      case '{':
        return this.object();
      case '[':
        return this.array();
      case 'string':
        return stringValue(token.text);
      case 'integer':
        return integerValue(token.text);
      case 'float':
        return Number(token.text);
      case 'keyword':
        if (token.text === 'true') return true;
        if (token.text === 'false') return false;
        if (token.text === 'null') return null;
        throw parseError(`invalid keyword '${token.text}'`);
      default:
        throw parseError('expecting value');
    }
  }

  private object(): JsonObject {
    const object: JsonObject = {};
    if (this.peek().type === '}') {
      this.pos++;
      return object;
    }
    for (;;) {
      const key = this.value();
      if (typeof key !== 'string') throw parseError('key is not a string in object');
      if (this.next().type !== ':') throw parseError('missing : in object pair');
      const value = this.value();
      if (Object.hasOwn(object, key)) throw parseError('duplicate key');
      setMember(object, key, value);
      const separator = this.next().type;
      if (separator === '}') return object;
      if (separator !== ',') throw parseError('expected separator in dict');
    }
  }

  private array(): JsonValue[] {
    const array: JsonValue[] = [];
    if (this.peek().type === ']') {
      this.pos++;
      return array;
    }
    for (;;) {
      array.push(this.value());
      const separator = this.next().type;
      if (separator === ']') return array;
      if (separator !== ',') throw parseError('expected separator in list');
    }
  }

  private peek(): Token {
    const token = this.tokens[this.pos];
    if (token === undefined) throw parseError('premature EOI');
    return token;
  }

  private next(): Token {
    const token = this.peek();
    this.pos++;
    return token;
  }
}

/** Adds a member without letting a `__proto__` key reach the prototype. */
export function setMember(object: JsonObject, key: string, value: JsonValue): void {
  if (key === '__proto__') {
    Object.defineProperty(object, key, { value, enumerable: true, writable: true, configurable: true });
  } else {
    object[key] = value;
  }
}

const INT64_MIN = -(2n ** 63n);
const UINT64_MAX = 2n ** 64n - 1n;
const MIN_SAFE = BigInt(Number.MIN_SAFE_INTEGER);
const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);

function integerValue(text: string): number | bigint {
  const value = BigInt(text);
  if (value >= MIN_SAFE && value <= MAX_SAFE) return Number(value);
  return value >= INT64_MIN && value <= UINT64_MAX ? value : Number(text);
}

const ESCAPES: Record<string, string> = {
  '"': '"', "'": "'", '\\': '\\', '/': '/', b: '\b', f: '\f', n: '\n', r: '\r', t: '\t',
};

/** A string token's value: `raw` is its bytes with their quotes, one char per byte. */
function stringValue(raw: string): string {
  let value = '';
  let pos = 1;
  const end = raw.length - 1;
  while (pos < end) {
    const byte = raw.charCodeAt(pos);
    if (byte >= 0x80) {
      const [codePoint, next] = utf8CodePoint(raw, pos);
      if (codePoint < 0) throw parseError('invalid UTF-8 sequence in string');
      value += String.fromCodePoint(codePoint);
      pos = next;
    } else if (byte !== 0x5c) {
      const runEnd = plainRunEnd(raw, pos, end);
      value += raw.slice(pos, runEnd);
      pos = runEnd;
    } else if (raw[pos + 1] === 'u') {
      let codePoint = hex4(raw, pos + 2);
      let next = pos + 6;
      if (codePoint >= 0xd800 && codePoint <= 0xdbff && raw.startsWith('\\u', next)) {
        const trailing = hex4(raw, next + 2);
        if (trailing >= 0xdc00 && trailing <= 0xdfff) {
          codePoint = 0x10000 + ((codePoint & 0x3ff) << 10) + (trailing & 0x3ff);
          next += 6;
        } else {
          codePoint = -1; // the error names the leading half only, as QEMU's does
        }
      }
      if (!isValidCodePoint(codePoint)) throw parseError(`${raw.slice(pos, next)} is not a valid Unicode character`);
      value += String.fromCodePoint(codePoint);
      pos = next;
    } else {
      const unescaped = ESCAPES[raw[pos + 1] ?? ''];
      if (unescaped === undefined) throw parseError('invalid escape sequence in string');
      value += unescaped;
      pos += 2;
    }
  }
  return value;
}

/** Where the run of ASCII bytes other than a backslash from `pos` ends: they are their own value. */
function plainRunEnd(raw: string, pos: number, end: number): number {
  let at = pos;
  while (at < end) {
    const byte = raw.charCodeAt(at);
    if (byte >= 0x80 || byte === 0x5c) break;
    at++;
  }
  return at;
}

/** Four hex digits at `pos` as a number, or -1. */
function hex4(raw: string, pos: number): number {
  const digits = raw.slice(pos, pos + 4);
  return /^[0-9a-fA-F]{4}$/.test(digits) ? parseInt(digits, 16) : -1;
}

/** QEMU refuses surrogates, noncharacters and anything past U+10FFFF, escaped or not. */
function isValidCodePoint(codePoint: number): boolean {
  if (codePoint < 0 || codePoint > 0x10ffff) return false;
  if ((codePoint >= 0xfdd0 && codePoint <= 0xfdef) || (codePoint & 0xfffe) === 0xfffe) return false;
  return codePoint < 0xd800 || codePoint > 0xdfff;
}

const MIN_CODE_POINT_OF_LENGTH = [0, 0, 0x80, 0x800, 0x10000, 0x200000, 0x4000000];

/**
 * The UTF-8 sequence at `pos` (a lead byte ≥ 0x80): its code point, or -1,
 * and where the next one starts. Overlong forms are refused except C0 80,
 * QEMU's "modified UTF-8" spelling of U+0000.
 */
function utf8CodePoint(raw: string, pos: number): [number, number] {
  const lead = raw.charCodeAt(pos);
  if (lead >= 0xfe || (lead & 0x40) === 0) return [-1, pos + 1];
  let length = 0;
  let mask = 0x80;
  for (; lead & mask; mask >>= 1) length++;
  let codePoint = lead & (mask - 1);
  let next = pos + 1;
  for (let i = 1; i < length; i++, next++) {
    const byte = raw.charCodeAt(next); // NaN past the end: not a continuation byte
    if ((byte & 0xc0) !== 0x80) return [-1, next];
    codePoint = codePoint * 64 + (byte & 0x3f);
  }
  if (!isValidCodePoint(codePoint)) return [-1, next];
  if (codePoint < MIN_CODE_POINT_OF_LENGTH[length]! && !(codePoint === 0 && length === 2)) return [-1, next];
  return [codePoint, next];
}
