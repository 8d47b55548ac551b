import { expect } from 'chai';
import { decodeJson, decodeJsonMessages, JsonParseError, MAX_JSON_NESTING } from '../protocols/qmp/json-decode.js';
import { encodeJson } from '../protocols/qmp/json-encode.js';

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

    it('refuses a lone surrogate', () => {
      expect(parseErrorOf('"\\ud800"')).to.equal('JSON parse error, \\ud800 is not a valid Unicode character');
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
      ['{"a": [1, 2}', 'JSON parse error, premature EOI'],
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
      const deep = '['.repeat(MAX_JSON_NESTING + 1) + ']'.repeat(MAX_JSON_NESTING + 1);
      expect(parseErrorOf(deep)).to.equal('JSON nesting depth limit exceeded');
      expect(decodeJson('['.repeat(MAX_JSON_NESTING) + ']'.repeat(MAX_JSON_NESTING))).to.be.an('array');
    });
  });

  describe('messages on one line', () => {
    it('splits back-to-back objects into separate messages', () => {
      expect(decodeJsonMessages('{"a": 1}{"b": 2} 3')).to.deep.equal([{ value: { a: 1 } }, { value: { b: 2 } }, { value: 3 }]);
    });

    it('keeps messages before a stray character and stops at it', () => {
      const messages = decodeJsonMessages('{"a": 1} @ {"b": 2}');
      expect(messages).to.have.length(2);
      expect(messages[0]).to.deep.equal({ value: { a: 1 } });
      expect((messages[1] as { error: Error }).error.message).to.equal("JSON parse error, stray '@'");
    });

    it('lets a message after a parse error through', () => {
      const messages = decodeJsonMessages('[1 2] {"b": 2}');
      expect((messages[0] as { error: Error }).error.message).to.equal('JSON parse error, expected separator in list');
      expect(messages[1]).to.deep.equal({ value: { b: 2 } });
    });

    it('finds no message in a blank line', () => {
      expect(decodeJsonMessages(' \t\r')).to.deep.equal([]);
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
        for (const message of decodeJsonMessages(text)) {
          if ('error' in message) expect(message.error, text).to.be.instanceOf(JsonParseError);
        }
      }
    });
  });
});
