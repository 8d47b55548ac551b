import { expect } from 'chai';
import { decodeJson } from '../protocols/qmp/json-decode.js';
import { encodeJson } from '../protocols/qmp/json-encode.js';
import { JsonParseError } from '../protocols/qmp/json-parser.js';
import { JsonStreamer, QEMU_JSON_LIMITS } from '../protocols/qmp/json-streamer.js';

function parseErrorOf(text: string): string {
  try {
    decodeJson(text);
  } catch (error) {
    expect(error).to.be.instanceOf(JsonParseError);
    return (error as Error).message;
  }
  throw new Error(`'${text}' parsed`);
}

describe('QMP JSON', () => {
  describe('integers', () => {
    it('round-trips the largest uint64 exactly', () => {
      const text = '{"max-bandwidth": 18446744073709551615}';
      const value = decodeJson(text) as { 'max-bandwidth': bigint };
      expect(value['max-bandwidth']).to.equal(18446744073709551615n);
      expect(encodeJson(value)).to.equal(text);
    });

    it('keeps safe integers as numbers and larger ones as bigints', () => {
      expect(decodeJson('9007199254740991')).to.equal(9007199254740991);
      expect(decodeJson('9007199254740992')).to.equal(9007199254740992n);
      expect(decodeJson('-9007199254740991')).to.equal(-9007199254740991);
      expect(decodeJson('-9223372036854775808')).to.equal(-9223372036854775808n);
    });

    it('reads integers beyond int64 and uint64 as floats, as QEMU does', () => {
      expect(decodeJson('18446744073709551616')).to.equal(18446744073709551616);
      expect(decodeJson('-9223372036854775809')).to.equal(-9223372036854775809);
    });

    it('reads fractions and exponents as numbers', () => {
      expect(decodeJson('[1.5, -2e3, 0.25E-1]')).to.deep.equal([1.5, -2000, 0.025]);
    });
  });

  describe('strings', () => {
    it('accepts QEMU single-quoted strings and the \\\' escape', () => {
      expect(decodeJson(`{'execute': 'it\\'s "x"'}`)).to.deep.equal({ execute: 'it\'s "x"' });
    });

    it('decodes escapes and surrogate pairs', () => {
      expect(decodeJson('"a\\n\\t\\/\\u00e9\\ud83d\\ude00"')).to.equal('a\n\t/é😀');
    });

    it('refuses a lone surrogate, naming the leading half', () => {
      expect(parseErrorOf('"\\ud800"')).to.equal('JSON parse error, \\ud800 is not a valid Unicode character');
      expect(parseErrorOf('"\\ud800\\u0041"')).to.equal('JSON parse error, \\ud800 is not a valid Unicode character');
    });

    it('refuses noncharacters, escaped or not', () => {
      expect(parseErrorOf('"\\uffff"')).to.equal('JSON parse error, \\uffff is not a valid Unicode character');
      expect(parseErrorOf('"\\ufdd0"')).to.equal('JSON parse error, \\ufdd0 is not a valid Unicode character');
      expect(parseErrorOf('"\uffff"')).to.equal('JSON parse error, invalid UTF-8 sequence in string');
    });

    it("takes QEMU's modified UTF-8 for U+0000 and refuses other overlong forms", () => {
      const decode = (bytes: number[]) => new JsonStreamer().push(Buffer.from([0x22, ...bytes, 0x22, 0x20]));
      expect(decode([0xc0, 0x80])).to.deep.equal([{ value: '\u0000' }]);
      expect(decode([0xc3, 0xa9])).to.deep.equal([{ value: 'é' }]);
      for (const bad of [[0xc1, 0xbf], [0xe0, 0x80, 0x80], [0xc3], [0x80], [0xed, 0xa0, 0x80], [0xf4, 0x90, 0x80, 0x80]]) {
        const [message] = decode(bad);
        expect((message as { error: Error }).error.message, String(bad)).to.equal('JSON parse error, invalid UTF-8 sequence in string');
      }
    });

    it('refuses an unknown escape', () => {
      expect(parseErrorOf('"\\q"')).to.equal('JSON parse error, invalid escape sequence in string');
    });
  });

  describe("QEMU's parse errors", () => {
    const cases: Array<[string, string]> = [
      ['{"a": }', 'JSON parse error, expecting value'],
      ['{"a" 1}', 'JSON parse error, missing : in object pair'],
      ['{"a": 1 "b": 2}', 'JSON parse error, expected separator in dict'],
      ['[1 2]', 'JSON parse error, expected separator in list'],
      ['[1,]', 'JSON parse error, expecting value'],
      ['{1: 2}', 'JSON parse error, key is not a string in object'],
      ['{"a": 1, "a": 2}', 'JSON parse error, duplicate key'],
      ['{"a": tru}', "JSON parse error, invalid keyword 'tru'"],
      ['{"a": @}', "JSON parse error, stray '@'"],
      ['{"a": [1, 2}', 'JSON parse error, expected separator in list'],
      ['{"a": 01}', "JSON parse error, stray '01'"],
      ['[-x]', "JSON parse error, stray '-x'"],
      ['{"a": TRUE}', "JSON parse error, stray 'T'"],
      ['"tab\there"', 'JSON parse error, stray \'"tab\t\''],
      ['{"execute": "stop"', 'JSON parse error, premature EOI'],
      ['}', 'JSON parse error, expecting value'],
    ];
    for (const [text, message] of cases) {
      it(`${text} -> ${message}`, () => expect(parseErrorOf(text)).to.equal(message));
    }

    it('prefers a lexical error inside a message to a parse error before it', () => {
      expect(parseErrorOf('{"a" 1, @}')).to.equal("JSON parse error, stray '@'");
    });

    it('bounds nesting as QEMU does', () => {
      const { maxNesting } = QEMU_JSON_LIMITS;
      const deep = '['.repeat(maxNesting + 1) + ']'.repeat(maxNesting + 1);
      expect(parseErrorOf(deep)).to.equal('JSON nesting depth limit exceeded');
      expect(decodeJson('['.repeat(maxNesting) + ']'.repeat(maxNesting))).to.be.an('array');
    });

    it('takes exactly one value', () => {
      expect(parseErrorOf('1 2')).to.equal('Expecting at most one JSON value');
      expect(parseErrorOf(' ')).to.equal('JSON parse error, premature EOI');
    });
  });

  it('keeps a __proto__ key as a plain member', () => {
    const value = decodeJson('{"__proto__": {"polluted": true}}') as Record<string, unknown>;
    expect(Object.keys(value)).to.deep.equal(['__proto__']);
    expect(({} as Record<string, unknown>).polluted).to.equal(undefined);
    expect(encodeJson(value)).to.equal('{"__proto__": {"polluted": true}}');
  });

  describe('encoding', () => {
    it("uses QEMU's separators and leaves out undefined members", () => {
      expect(encodeJson({ return: {}, id: [1, 'a', null, true], skipped: undefined })).to.equal(
        '{"return": {}, "id": [1, "a", null, true]}',
      );
    });

    it('escapes strings and writes non-finite numbers as null', () => {
      expect(encodeJson({ desc: 'say "hi"\n', n: Number.NaN })).to.equal('{"desc": "say \\"hi\\"\\n", "n": null}');
    });
  });

  describe('fuzz (seeded)', () => {
    /** mulberry32: a small deterministic PRNG so every run checks the same inputs. */
    function prng(seed: number) {
      return () => {
        seed = (seed + 0x6d2b79f5) | 0;
        let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
        t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
        return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
      };
    }
    const random = prng(0x51e9);
    const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)]!;

    function randomValue(depth: number): unknown {
      const kind = depth > 3 ? pick(['s', 'n', 'b', 'z']) : pick(['s', 'n', 'b', 'z', 'a', 'o']);
      switch (kind) {
        case 's':
          return Array.from({ length: Math.floor(random() * 6) }, () => pick(['a', '"', '\\', '\n', 'é', '😀', '\u0001', ' '])).join('');
        case 'n':
          return pick([0, -1, 42, 1.5, -2.25e-7, Number.MAX_SAFE_INTEGER, Math.floor(random() * 1e6)]);
        case 'b':
          return random() < 0.5;
        case 'z':
          return null;
        case 'a':
          return Array.from({ length: Math.floor(random() * 4) }, () => randomValue(depth + 1));
        default:
          return Object.fromEntries(Array.from({ length: Math.floor(random() * 4) }, (_, i) => [`k${i}`, randomValue(depth + 1)]));
      }
    }

    it('decodes what JSON.stringify writes exactly as JSON.parse does', () => {
      for (let i = 0; i < 2000; i++) {
        const text = JSON.stringify(randomValue(0));
        expect(decodeJson(text), text).to.deep.equal(JSON.parse(text));
      }
    });

    it('answers mangled input with values or JsonParseErrors, never by throwing', () => {
      const noise = ['{', '}', '[', ']', ':', ',', '"', "'", '\\', 'u', '-', '0', '9', 'e', '.', 'x', '@', ' '];
      for (let i = 0; i < 2000; i++) {
        const chars = [...JSON.stringify(randomValue(0))];
        for (let edits = 1 + Math.floor(random() * 3); edits > 0; edits--) {
          chars.splice(Math.floor(random() * (chars.length + 1)), random() < 0.5 ? 1 : 0, pick(noise));
        }
        const text = chars.join('');
        const streamer = new JsonStreamer();
        for (const message of [...streamer.push(Buffer.from(text)), ...streamer.flush()]) {
          if ('error' in message) expect(message.error, text).to.be.instanceOf(JsonParseError);
        }
      }
    });
  });
});
