/**
 * QMP framing as QEMU's json-streamer does it: messages end where their
 * braces and brackets balance, newlines mean nothing, and every error is
 * followed by the same resynchronisation. The expected answers for the
 * recovery cases were recorded from QEMU 7.2's monitor with the same bytes.
 */
import { expect } from 'chai';
import { JsonStreamer, type JsonMessage } from '../protocols/qmp/json-streamer.js';

/** Messages as values, or as their error texts. */
const shown = (messages: JsonMessage[]) => messages.map((m) => ('error' in m ? `error: ${m.error.message}` : m.value));

function feed(input: string | Buffer, chunkBytes = Infinity): unknown[] {
  const bytes = typeof input === 'string' ? Buffer.from(input, 'latin1') : input;
  const streamer = new JsonStreamer();
  const messages: JsonMessage[] = [];
  for (let at = 0; at < bytes.length; at += Math.min(chunkBytes, bytes.length)) {
    messages.push(...streamer.push(bytes.subarray(at, at + chunkBytes)));
  }
  return shown(messages);
}

describe('QMP JSON streamer', () => {
  describe('framing', () => {
    it('ends a message where its braces balance, with no newline after it', () => {
      expect(feed('{"execute": "stop"}')).to.deep.equal([{ execute: 'stop' }]);
    });

    it('joins a message spread over many lines', () => {
      expect(feed('{\n"execute"\n:\r\n"stop",\n\t"id": [1,\n2]\n}')).to.deep.equal([{ execute: 'stop', id: [1, 2] }]);
    });

    it('splits several messages sharing one write, with or without whitespace between them', () => {
      expect(feed('{"a": 1}{"b": 2} [3]\n{"c": {}}')).to.deep.equal([{ a: 1 }, { b: 2 }, [3], { c: {} }]);
    });

    it('finds the same messages whatever the writes are cut into, a byte at a time included', () => {
      const input = `{"execute": "x", "id": "\u00e9\\u00e9\\"}{[", "n": [-1.5e3, 18446744073709551615, true, null]}{'sq': 'it\\'s'} [1 2] @ {"b": 1}`;
      const bytes = Buffer.from(input, 'utf8');
      const whole = feed(bytes);
      expect(whole).to.deep.equal([
        { execute: 'x', id: 'éé"}{[', n: [-1500, 18446744073709551615n, true, null] },
        { sq: "it's" },
        'error: JSON parse error, expected separator in list',
        "error: JSON parse error, stray '@'",
        { b: 1 },
      ]);
      for (const size of [1, 2, 3, 7, 16]) expect(feed(bytes, size), `chunks of ${size}`).to.deep.equal(whole);
    });

    it('hands on a message in the write that completes it, not before', () => {
      const streamer = new JsonStreamer();
      expect(streamer.push(Buffer.from('{"execute": "st'))).to.deep.equal([]);
      expect(streamer.push(Buffer.from('op", "id": 1'))).to.deep.equal([]);
      expect(shown(streamer.push(Buffer.from('}{"exec')))).to.deep.equal([{ execute: 'stop', id: 1 }]);
    });

    it('waits for the byte after a top-level number or keyword, which only that byte ends', () => {
      const streamer = new JsonStreamer();
      expect(streamer.push(Buffer.from('42'))).to.deep.equal([]);
      expect(shown(streamer.push(Buffer.from(' true')))).to.deep.equal([42]);
      expect(shown(streamer.flush())).to.deep.equal([true]);
    });

    it('finds nothing in whitespace alone', () => {
      expect(feed(' \t\r\n\n  ')).to.deep.equal([]);
    });
  });

  describe("errors and QEMU's resynchronisation (answers recorded from QEMU 7.2)", () => {
    const cases: Array<[string, unknown[]]> = [
      ['{"a": @}', ["error: JSON parse error, stray '@'", 'error: JSON parse error, expecting value']],
      ['{"a": 1} @ {"b": 3}', [{ a: 1 }, "error: JSON parse error, stray '@'", { b: 3 }]],
      ['[1 2] {"b": 4}', ['error: JSON parse error, expected separator in list', { b: 4 }]],
      ['"\xff" {"b": 5}', ["error: JSON parse error, stray '\"\ufffd'", { b: 5 }]],
      ['\xff{"b": 6}', ["error: JSON parse error, stray '\ufffd'", { b: 6 }]],
      ['{"a":01}', ["error: JSON parse error, stray '01'", 'error: JSON parse error, expecting value']],
      ['{"a":TRUE}', ["error: JSON parse error, stray 'T'", 'error: JSON parse error, expecting value']],
      ['{"a":"x\ty"}', ["error: JSON parse error, stray '\"x\t'", 'error: JSON parse error, expecting value']],
      ['{"a": [1,2}]', ['error: JSON parse error, expected separator in list']],
      ['{"a": [1,2}', []],
      [']]', ['error: JSON parse error, expecting value', 'error: JSON parse error, expecting value']],
      ['{"id": "\\ud800\\u0041"}', ['error: JSON parse error, \\ud800 is not a valid Unicode character']],
      ['{"id": "\xc0\x80", "n": 18446744073709551616}', [{ id: '\u0000', n: 18446744073709551616 }]],
    ];
    for (const [input, expected] of cases) {
      it(`${JSON.stringify(input)} -> ${JSON.stringify(expected)}`, () => expect(feed(input)).to.deep.equal(expected));
    }

    it('skips to the next brace or bracket after a stray byte, dropping what it skips', () => {
      expect(feed('@ "skipped" 12 {"b": 1}')).to.deep.equal(["error: JSON parse error, stray '@'", { b: 1 }]);
    });

    it('starts afresh at a control character after a stray byte', () => {
      expect(feed('@ skipped\n7 ')).to.deep.equal(["error: JSON parse error, stray '@'", 7]);
    });

    it('reports an open message as incomplete only when the input ends', () => {
      const streamer = new JsonStreamer();
      expect(streamer.push(Buffer.from('{"execute": "stop"'))).to.deep.equal([]);
      expect(shown(streamer.flush())).to.deep.equal(['error: JSON parse error, premature EOI']);
    });

    it('reports an unfinished string as stray when the input ends', () => {
      const streamer = new JsonStreamer();
      streamer.push(Buffer.from('"abc'));
      expect(shown(streamer.flush())).to.deep.equal(['error: JSON parse error, stray \'"abc\'']);
    });
  });

  describe("QEMU's bounds", () => {
    it('refuses a message whose tokens pass the size bound (whitespace is not counted)', () => {
      // Its tokens hold 24 bytes; QEMU's check is "bytes so far + next token + 1 > bound".
      const message = '{"a": "0123456789",   "b": 1}';
      expect(shown(new JsonStreamer({ maxTokenBytes: 25 }).push(Buffer.from(message)))).to.deep.equal([{ a: '0123456789', b: 1 }]);
      expect(shown(new JsonStreamer({ maxTokenBytes: 24 }).push(Buffer.from(message)))).to.deep.equal([
        'error: JSON token size limit exceeded',
      ]);
    });

    it('refuses one token past the bound as it crosses it, however it is cut, and lexes on from the next byte', () => {
      const input = `{"id": "${' '.repeat(40)}"}\n{"b": 1}`;
      const expected = ['error: JSON token size limit exceeded', "error: JSON parse error, stray '\"}\n'", { b: 1 }];
      for (const size of [1, 5, Infinity]) {
        const streamer = new JsonStreamer({ maxTokenBytes: 32 });
        const messages: JsonMessage[] = [];
        for (let at = 0; at < input.length; at += Math.min(size, input.length)) {
          messages.push(...streamer.push(Buffer.from(input.slice(at, at + size))));
        }
        expect(shown(messages), `chunks of ${size}`).to.deep.equal(expected);
      }
    });

    it('refuses a message of too many tokens', () => {
      const streamer = new JsonStreamer({ maxTokens: 5 });
      expect(shown(streamer.push(Buffer.from('[1, 2]')))).to.deep.equal([[1, 2]]);
      expect(shown(streamer.push(Buffer.from('[1, 2, 3]')))).to.deep.equal([
        'error: JSON token count limit exceeded',
        'error: JSON parse error, expecting value',
      ]);
    });

    it('refuses nesting past the bound, then reads the next message', () => {
      expect(feed(`${'['.repeat(1025)}{"b": 1}`)).to.deep.equal(['error: JSON nesting depth limit exceeded', { b: 1 }]);
      expect(feed(`${'{"a":'.repeat(3)}1}}}`)).to.deep.equal([{ a: { a: { a: 1 } } }]);
      expect(shown(new JsonStreamer({ maxNesting: 2 }).push(Buffer.from('{"a": {"a": [1]}}')))).to.deep.equal([
        'error: JSON nesting depth limit exceeded',
        1, // the streamer starts afresh after the error, so what follows is read as new messages
        'error: JSON parse error, expecting value',
        'error: JSON parse error, expecting value',
        'error: JSON parse error, expecting value',
      ]);
    });
  });
});
