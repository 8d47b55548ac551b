/**
 * JSON decoder for QMP input, after QEMU's json-lexer/json-streamer/
 * json-parser: a line is lexed into tokens, the tokens are grouped into
 * messages by counting braces and brackets (so `{"a":1}{"b":2}` is two
 * messages), and each message is parsed on its own. Error texts are QEMU's
 * ("JSON parse error, ...").
 *
 * Integers stay exact: a safe integer is a `number`, a larger one a `bigint`.
 * QEMU's extensions are accepted too: single-quoted strings and the `\'`
 * escape. A duplicate key is an error, as in QEMU.
 */
import type { JsonObject, JsonValue } from './types.js';

/** QEMU's json-streamer bound on nesting (MAX_NESTING). */
export const MAX_JSON_NESTING = 1024;

export class JsonParseError extends Error {
  override readonly name = 'JsonParseError';
  readonly code = 'JSON_PARSE_ERROR';
}

/** One message of a line: its value, or why it is not one. */
export type JsonMessage = { value: JsonValue } | { error: JsonParseError };

type Punctuation = '{' | '}' | '[' | ']' | ':' | ',';
type Token =
  | { type: Punctuation }
  | { type: 'string'; value: string }
  | { type: 'number'; value: number | bigint }
  | { type: 'keyword'; text: string };

const parseError = (message: string) => new JsonParseError(`JSON parse error, ${message}`);

/**
 * Decodes every message of one input line, in order. Decoding stops at the
 * first lexical error, which is reported as the last message; a parse error
 * in one message does not affect the next.
 */
export function decodeJsonMessages(line: string): JsonMessage[] {
  const { tokens, error: lexError } = lex(line);
  const messages: JsonMessage[] = [];
  let start = 0;
  let depth = 0;
  for (let i = 0; i < tokens.length; i++) {
    const { type } = tokens[i]!;
    if (type === '{' || type === '[') depth++;
    else if (type === '}' || type === ']') depth--;
    if (depth > MAX_JSON_NESTING) {
      return [...messages, { error: new JsonParseError('JSON nesting depth limit exceeded') }];
    }
    // A message ends where the nesting returns to the top (or below it).
    if (depth <= 0) {
      messages.push(parseMessage(tokens.slice(start, i + 1)));
      start = i + 1;
      depth = 0;
    }
  }
  if (lexError) messages.push({ error: lexError });
  else if (start < tokens.length) messages.push({ error: parseError('premature EOI') });
  return messages;
}

/**
 * Decodes text holding exactly one JSON value.
 *
 * @example decodeJson('{"max": 18446744073709551615}') // { max: 18446744073709551615n }
 */
export function decodeJson(text: string): JsonValue {
  const messages = decodeJsonMessages(text);
  const first = messages[0];
  if (first === undefined) throw parseError('premature EOI');
  if ('error' in first) throw first.error;
  if (messages.length > 1) throw parseError('expecting end of input');
  return first.value;
}

function parseMessage(tokens: Token[]): JsonMessage {
  try {
    return { value: new Parser(tokens).value() };
  } catch (error) {
    if (error instanceof JsonParseError) return { error };
    throw error;
  }
}

class Parser {
  private pos = 0;
  constructor(private readonly tokens: Token[]) {}

  value(): JsonValue {
    const token = this.next();
    switch (token.type) {
      case '{':
        return this.object();
      case '[':
        return this.array();
      case 'string':
      case 'number':
        return token.value;
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

const NUMBER = /-?(?:0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?/y;
const KEYWORD = /[a-z]+/y;
const MIN_SAFE = BigInt(Number.MIN_SAFE_INTEGER);
const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);

function lex(line: string): { tokens: Token[]; error: JsonParseError | null } {
  const tokens: Token[] = [];
  let pos = 0;
  while (pos < line.length) {
    const c = line[pos]!;
    if (c === ' ' || c === '\t' || c === '\r' || c === '\n') {
      pos++;
    } else if ('{}[]:,'.includes(c)) {
      tokens.push({ type: c as Punctuation });
      pos++;
    } else if (c === '"' || c === "'") {
      const string = lexString(line, pos);
      if (string instanceof JsonParseError) return { tokens, error: string };
      tokens.push({ type: 'string', value: string.value });
      pos = string.end;
    } else if (c === '-' || (c >= '0' && c <= '9')) {
      NUMBER.lastIndex = pos;
      const m = NUMBER.exec(line);
      if (!m) return { tokens, error: parseError(`stray '${c}'`) };
      tokens.push({ type: 'number', value: numberValue(m[0], m[1] !== undefined || m[2] !== undefined) });
      pos = NUMBER.lastIndex;
    } else if (c >= 'a' && c <= 'z') {
      KEYWORD.lastIndex = pos;
      const text = KEYWORD.exec(line)![0];
      tokens.push({ type: 'keyword', text });
      pos += text.length;
    } else {
      return { tokens, error: parseError(`stray '${String.fromCodePoint(line.codePointAt(pos)!)}'`) };
    }
  }
  return { tokens, error: null };
}

function numberValue(text: string, isFloat: boolean): number | bigint {
  if (isFloat) return Number(text);
  const value = BigInt(text);
  return value >= MIN_SAFE && value <= MAX_SAFE ? Number(value) : value;
}

const ESCAPES: Record<string, string> = {
  '"': '"', "'": "'", '\\': '\\', '/': '/', b: '\b', f: '\f', n: '\n', r: '\r', t: '\t',
};

function lexString(line: string, start: number): { value: string; end: number } | JsonParseError {
  const quote = line[start]!;
  let value = '';
  let pos = start + 1;
  for (;;) {
    const c = line[pos];
    if (c === undefined) return parseError('premature EOI');
    if (c === quote) return { value, end: pos + 1 };
    if (c < ' ') return parseError(`stray '${line.slice(start, pos)}'`);
    if (c !== '\\') {
      value += c;
      pos++;
      continue;
    }
    const escape = line[pos + 1];
    if (escape === 'u') {
      const unit = hex4(line, pos + 2);
      let end = pos + 6;
      let codePoint = unit;
      if (unit >= 0xd800 && unit <= 0xdbff && line.startsWith('\\u', end)) {
        const trailing = hex4(line, end + 2);
        codePoint = trailing >= 0xdc00 && trailing <= 0xdfff ? 0x10000 + ((unit & 0x3ff) << 10) + (trailing & 0x3ff) : -1;
        end += 6;
      }
      if (codePoint < 0 || (codePoint >= 0xd800 && codePoint <= 0xdfff)) {
        return parseError(`${line.slice(pos, end)} is not a valid Unicode character`);
      }
      value += String.fromCodePoint(codePoint);
      pos = end;
    } else {
      const unescaped = escape === undefined ? undefined : ESCAPES[escape];
      if (unescaped === undefined) return parseError('invalid escape sequence in string');
      value += unescaped;
      pos += 2;
    }
  }
}

/** Four hex digits at `pos` as a number, or -1. */
function hex4(line: string, pos: number): number {
  const digits = line.slice(pos, pos + 4);
  return /^[0-9a-fA-F]{4}$/.test(digits) ? parseInt(digits, 16) : -1;
}
