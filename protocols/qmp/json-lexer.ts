/**
 * QMP's JSON lexer, after QEMU's json-lexer: a state machine fed one byte at
 * a time, so a token may be split across any number of socket reads. It
 * knows nothing of lines: whitespace (newlines included) only separates
 * tokens.
 *
 * What it hands on:
 * - each complete token, as its raw bytes (a latin1 string, one char per
 *   byte; strings are unescaped and checked for UTF-8 later, by the parser,
 *   as QEMU's parser does);
 * - an `error` token for a byte that cannot continue the token it is in
 *   (its text is the token so far, that byte included); the lexer then
 *   skips input until a structural character (`{ } [ ]`), a control
 *   character other than tab, or one of the bytes 0xFE/0xFF, which a client
 *   may send on purpose to resynchronise;
 * - an `oversized` token when one token grows past the bound, after which
 *   lexing starts afresh at the next byte.
 *
 * QEMU's extensions are kept: single-quoted strings, and the parser's `\'`.
 */

export type TokenType = '{' | '}' | '[' | ']' | ':' | ',' | 'integer' | 'float' | 'keyword' | 'string';

/** Receives what the lexer finds; `text` holds the token's bytes, one char per byte. */
export type LexerSink = (type: TokenType | 'error' | 'oversized', text: string) => void;

// Table entries below TERMINALS are what a byte completes; the rest are states.
const ERROR = 0;
const TOKEN_TYPES: readonly TokenType[] = ['{', '}', '[', ']', ':', ',', 'integer', 'float', 'keyword', 'string'];
const TERMINALS = TOKEN_TYPES.length + 1; // token types are 1..TOKEN_TYPES.length
const token = (type: TokenType) => TOKEN_TYPES.indexOf(type) + 1;

const START = TERMINALS;
const RECOVERY = START + 1;
const DQ_STRING = START + 2;
const DQ_ESCAPE = START + 3;
const SQ_STRING = START + 4;
const SQ_ESCAPE = START + 5;
const SIGN = START + 6;
const ZERO = START + 7;
const DIGITS = START + 8;
const MANTISSA = START + 9;
const MANTISSA_DIGITS = START + 10;
const EXP_E = START + 11;
const EXP_SIGN = START + 12;
const EXP_DIGITS = START + 13;
const KEYWORD = START + 14;
const STATES = KEYWORD + 1;

/** The byte is not part of the current token: it is looked at again from the next state. */
const LOOKAHEAD = 0x80;

const TABLE = buildTable();

function buildTable(): Uint8Array {
  const table = new Uint8Array(STATES * 256); // every unlisted byte is an error
  const set = (state: number, from: number | string, to: number | string, next: number) => {
    const lo = typeof from === 'string' ? from.charCodeAt(0) : from;
    const hi = typeof to === 'string' ? to.charCodeAt(0) : to;
    for (let byte = lo; byte <= hi; byte++) table[state * 256 + byte] = next;
  };
  const one = (state: number, ch: string, next: number) => set(state, ch, ch, next);
  /** The token ends before whatever byte comes next. */
  const terminal = (state: number, type: TokenType) => set(state, 0, 0xff, token(type) | LOOKAHEAD);

  for (const ch of '{}[]:,') one(START, ch, token(ch as TokenType));
  for (const ch of ' \t\r\n') one(START, ch, START);
  one(START, '"', DQ_STRING);
  one(START, "'", SQ_STRING);
  one(START, '-', SIGN);
  one(START, '0', ZERO);
  set(START, '1', '9', DIGITS);
  set(START, 'a', 'z', KEYWORD);

  set(RECOVERY, 0x00, 0x1f, START | LOOKAHEAD);
  set(RECOVERY, 0x20, 0xfd, RECOVERY);
  set(RECOVERY, 0xfe, 0xff, START | LOOKAHEAD);
  one(RECOVERY, '\t', RECOVERY);
  for (const ch of '{}[]') one(RECOVERY, ch, START | LOOKAHEAD);

  for (const [body, escape, quote] of [[DQ_STRING, DQ_ESCAPE, '"'], [SQ_STRING, SQ_ESCAPE, "'"]] as const) {
    set(body, 0x20, 0xfd, body);
    one(body, '\\', escape);
    one(body, quote, token('string'));
    set(escape, 0x20, 0xfd, body);
  }

  one(SIGN, '0', ZERO);
  set(SIGN, '1', '9', DIGITS);
  terminal(ZERO, 'integer');
  set(ZERO, '0', '9', ERROR);
  one(ZERO, '.', MANTISSA);
  terminal(DIGITS, 'integer');
  set(DIGITS, '0', '9', DIGITS);
  one(DIGITS, '.', MANTISSA);
  for (const state of [DIGITS, MANTISSA_DIGITS]) for (const ch of 'eE') one(state, ch, EXP_E);
  set(MANTISSA, '0', '9', MANTISSA_DIGITS);
  terminal(MANTISSA_DIGITS, 'float');
  set(MANTISSA_DIGITS, '0', '9', MANTISSA_DIGITS);
  for (const ch of 'eE') one(MANTISSA_DIGITS, ch, EXP_E);
  for (const ch of '+-') one(EXP_E, ch, EXP_SIGN);
  set(EXP_E, '0', '9', EXP_DIGITS);
  set(EXP_SIGN, '0', '9', EXP_DIGITS);
  terminal(EXP_DIGITS, 'float');
  set(EXP_DIGITS, '0', '9', EXP_DIGITS);

  terminal(KEYWORD, 'keyword');
  set(KEYWORD, 'a', 'z', KEYWORD);
  return table;
}

export class JsonLexer {
  private state = START;
  /** Bytes of the token in progress from earlier chunks. */
  private carried = '';
  /** Where the token in progress starts in the current chunk, or -1. */
  private start = -1;
  private length = 0;

  /** @param maxTokenBytes one token longer than this is reported as `oversized` */
  constructor(
    private readonly sink: LexerSink,
    private readonly maxTokenBytes: number,
  ) {
    if (!Number.isSafeInteger(maxTokenBytes) || maxTokenBytes < 1) {
      throw new RangeError(`maxTokenBytes must be a positive integer, got ${maxTokenBytes}`);
    }
  }

  push(chunk: Uint8Array): void {
    let i = 0;
    while (i < chunk.length) {
      if (this.state === DQ_STRING || this.state === SQ_STRING) {
        // A long string's body is the one place that holds many bytes: take it in one step.
        const end = this.stringBodyEnd(chunk, i);
        if (end > i) {
          if (this.start < 0) this.start = i;
          this.length += end - i;
          i = end;
          this.checkSize(chunk, i);
          continue;
        }
      }
      const entry = TABLE[this.state * 256 + chunk[i]!]!;
      if ((entry & LOOKAHEAD) === 0) {
        if (this.start < 0) this.start = i;
        this.length++;
        i++;
      }
      this.advance(entry & ~LOOKAHEAD, chunk, i);
    }
    if (this.start >= 0) {
      this.carried += latin1(chunk, this.start, chunk.length);
      this.start = -1;
    }
  }

  /**
   * Ends the input (QEMU's flush): a token that only a following byte would
   * end (a number, a keyword) is handed on; an unfinished string is an error.
   */
  flush(): void {
    const none = new Uint8Array(0);
    // QEMU looks at a NUL byte it never consumes until the lexer is back at its start.
    while (this.state !== START) this.advance(TABLE[this.state * 256]! & ~LOOKAHEAD, none, 0);
  }

  /** Moves to `next`; a token that this ends, ends at `end` of `chunk`. */
  private advance(next: number, chunk: Uint8Array, end: number): void {
    if (next === ERROR) {
      this.sink('error', this.take(chunk, end));
      this.state = RECOVERY;
    } else if (next < TERMINALS) {
      this.sink(TOKEN_TYPES[next - 1]!, this.take(chunk, end));
      this.state = START;
    } else if (next === START || next === RECOVERY) {
      this.take(chunk, end);
      this.state = next;
    } else {
      this.state = next;
      this.checkSize(chunk, end);
    }
  }

  /** The end of the run of plain string bytes from `i`, bounded so a token never passes the size limit unseen. */
  private stringBodyEnd(chunk: Uint8Array, i: number): number {
    const quote = this.state === DQ_STRING ? 0x22 : 0x27;
    const limit = Math.min(chunk.length, i + this.maxTokenBytes + 1 - this.length);
    let end = i;
    for (; end < limit; end++) {
      const byte = chunk[end]!;
      if (byte < 0x20 || byte > 0xfd || byte === 0x5c || byte === quote) break;
    }
    return end;
  }

  private checkSize(chunk: Uint8Array, i: number): void {
    if (this.length <= this.maxTokenBytes) return;
    this.sink('oversized', this.take(chunk, i));
    this.state = START;
  }

  /** The token's bytes up to `end` of this chunk; the lexer then holds no token. */
  private take(chunk: Uint8Array, end: number): string {
    const text = this.start < 0 ? this.carried : this.carried + latin1(chunk, this.start, end);
    this.carried = '';
    this.start = -1;
    this.length = 0;
    return text;
  }
}

function latin1(bytes: Uint8Array, start: number, end: number): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset + start, end - start).toString('latin1');
}
