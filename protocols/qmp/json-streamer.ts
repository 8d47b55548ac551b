/**
 * Splits a QMP byte stream into JSON messages where QEMU's json-streamer
 * does: a message ends when its braces and brackets balance again (outside
 * strings), or at once for a value that has none. Newlines mean nothing, so
 * a message may span lines and writes, several may share one, and none
 * needs a newline at its end.
 *
 * Every bad input becomes one error message and the streamer starts afresh
 * with the next token, as QEMU's does: a stray byte, a message whose tokens
 * pass the size or count bound, or nesting past the depth bound. The bounds
 * are QEMU's by default, and nothing but the current message's tokens is
 * ever held.
 *
 * @example
 * const streamer = new JsonStreamer();
 * streamer.push(Buffer.from('{"execute": "stop"}{"exec')); // [{ value: { execute: 'stop' } }]
 * streamer.push(Buffer.from('ute": "cont"}'));            // [{ value: { execute: 'cont' } }]
 */
import { JsonLexer, type TokenType } from './json-lexer.js';
import { JsonParseError, parseError, parseTokens, type Token } from './json-parser.js';
import type { JsonValue } from './types.js';

/** One message of the stream: its value, or why it is not one. */
export type JsonMessage = { value: JsonValue } | { error: JsonParseError };

export interface JsonLimits {
  /** Bytes of all tokens of one message (QEMU's MAX_TOKEN_SIZE, which also bounds one token). */
  maxTokenBytes: number;
  /** Tokens in one message (MAX_TOKEN_COUNT). */
  maxTokens: number;
  /** Open braces and brackets (MAX_NESTING). */
  maxNesting: number;
}

/** QEMU's bounds (json-streamer.c). */
export const QEMU_JSON_LIMITS: Readonly<JsonLimits> = { maxTokenBytes: 64 << 20, maxTokens: 2 << 20, maxNesting: 1024 };

export class JsonStreamer {
  private readonly lexer: JsonLexer;
  private readonly limits: JsonLimits;
  private tokens: Token[] = [];
  private tokenBytes = 0;
  private braces = 0;
  private brackets = 0;
  private out: JsonMessage[] = [];

  constructor(limits: Partial<JsonLimits> = {}) {
    this.limits = { ...QEMU_JSON_LIMITS, ...limits };
    this.lexer = new JsonLexer((type, text) => this.token(type, text), this.limits.maxTokenBytes);
  }

  /** Feeds bytes; returns the messages they complete, in order. */
  push(chunk: Uint8Array): JsonMessage[] {
    this.lexer.push(chunk);
    return this.drain();
  }

  /** Ends the input: a message still open is parsed as it stands (so it reports why it is incomplete). */
  flush(): JsonMessage[] {
    this.lexer.flush();
    if (this.tokens.length > 0) this.emit(parseTokens(this.tokens));
    return this.drain();
  }

  private drain(): JsonMessage[] {
    const messages = this.out;
    this.out = [];
    return messages;
  }

  private token(type: TokenType | 'error' | 'oversized', text: string): void {
    if (type === 'error') return this.emit({ error: parseError(`stray '${printable(text)}'`) });
    if (type === '{') this.braces++;
    else if (type === '}') this.braces--;
    else if (type === '[') this.brackets++;
    else if (type === ']') this.brackets--;
    const { maxTokenBytes, maxTokens, maxNesting } = this.limits;
    // An oversized token is the lexer's; it always fails the size bound.
    if (type === 'oversized' || this.tokenBytes + text.length + 1 > maxTokenBytes) {
      return this.emit({ error: new JsonParseError('JSON token size limit exceeded') });
    }
    if (this.tokens.length + 1 > maxTokens) return this.emit({ error: new JsonParseError('JSON token count limit exceeded') });
    if (this.braces + this.brackets > maxNesting) return this.emit({ error: new JsonParseError('JSON nesting depth limit exceeded') });
    this.tokens.push({ type, text });
    this.tokenBytes += text.length;
    // Still inside a message: wait for the rest. A surplus closer ends it (the parser says why).
    if ((this.braces > 0 || this.brackets > 0) && this.braces >= 0 && this.brackets >= 0) return;
    this.emit(parseTokens(this.tokens));
  }

  /** Hands on one message and starts the next from nothing. */
  private emit(message: JsonMessage): void {
    this.tokens = [];
    this.tokenBytes = 0;
    this.braces = 0;
    this.brackets = 0;
    this.out.push(message);
  }
}

/** A token's bytes as text for an error message; bytes that are not UTF-8 show as U+FFFD. */
function printable(text: string): string {
  return Buffer.from(text, 'latin1').toString('utf8');
}
