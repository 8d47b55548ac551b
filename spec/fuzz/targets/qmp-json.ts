/**
 * The QMP monitor's JSON input (protocols/qmp/json-*.ts): bytes from a
 * client split into messages, each a value or a JsonParseError, the
 * streamer carrying on after an error. How the bytes are split must not
 * change the messages.
 */
import { expect } from 'chai';
import * as fc from 'fast-check';
import { encodeJson } from '../../../protocols/qmp/json-encode.js';
import { JsonParseError } from '../../../protocols/qmp/json-parser.js';
import { JsonStreamer, type JsonLimits, type JsonMessage } from '../../../protocols/qmp/json-streamer.js';
import type { JsonValue } from '../../../protocols/qmp/types.js';
import { withinBounds } from '../bounds.js';
import { chunks, cutsArbitrary, withCuts } from '../chunking.js';
import type { FuzzInput, FuzzTarget } from '../fuzz-target.js';
import { hostileBytes } from '../mutation.js';
import { acceptsOrRejects, expectClearRejection } from '../rejection.js';

/** Tight bounds besides QEMU's, so fuzz inputs reach the size, count and nesting limits too. */
const TIGHT_LIMITS: JsonLimits = { maxTokenBytes: 64, maxTokens: 24, maxNesting: 4 };

/** JSON values as QMP reads them back: integers beyond 2^53 (within int64/uint64, as QEMU) as bigints, no -0, no integral floats beyond 2^53. */
export const jsonValueArbitrary: fc.Arbitrary<JsonValue> = fc.letrec<{ value: JsonValue }>((tie) => ({
  value: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc.constantFrom<JsonValue>(null, true, false),
    fc.integer(),
    fc.bigInt({ min: -(1n << 63n), max: (1n << 64n) - 1n }).map((n) => (Number.isSafeInteger(Number(n)) ? Number(n) : n)),
    fc.double({ noNaN: true, noDefaultInfinity: true }).filter((d) => !Object.is(d, -0) && (!Number.isInteger(d) || Number.isSafeInteger(d))),
    fc.string({ unit: 'grapheme', maxLength: 12 }),
    fc.array(tie('value'), { maxLength: 4 }),
    fc.dictionary(fc.string({ maxLength: 8 }), tie('value'), { maxKeys: 4 }),
  ),
})).value;

const valuesArbitrary = fc.array(jsonValueArbitrary, { minLength: 1, maxLength: 4 });
const encodeAll = (values: readonly JsonValue[]): Uint8Array => Buffer.from(values.map((v) => encodeJson(v)).join(' '));

/** Pieces of QMP's JSON, QEMU's extensions (single quotes, %-interpolation) and plain mistakes, joined at random. */
const junkArbitrary: fc.Arbitrary<Uint8Array> = fc
  .array(fc.constantFrom('{', '}', '[', ']', ':', ',', '"', "'", '\\', '\\u', 'd800', '00', '"execute"', ' ', '\n', '1', '-', '.', 'e', '9'.repeat(25), 'true', 'nul', '%d', '\xff', '\x00', '\u00e9'), { maxLength: 40 })
  .map((pieces) => Buffer.from(pieces.join(''), 'latin1'));

function stream(input: FuzzInput, limits: Partial<JsonLimits>): JsonMessage[] {
  const streamer = new JsonStreamer(limits);
  const messages: JsonMessage[] = [];
  for (const chunk of chunks(input)) messages.push(...streamer.push(chunk));
  messages.push(...streamer.flush());
  return messages;
}

/** A message as something to compare: its value, or its error's text. */
const comparable = (m: JsonMessage): unknown => ('error' in m ? { error: m.error.message } : m);

export const qmpJsonTarget: FuzzTarget = {
  name: 'qmp-json',
  input: withCuts(hostileBytes(valuesArbitrary.map(encodeAll), junkArbitrary)),
  check(input) {
    for (const limits of [{}, TIGHT_LIMITS]) {
      // The streamer never throws: every bad input becomes an error message.
      let messages: JsonMessage[] = [];
      withinBounds(input.bytes.length, () => acceptsOrRejects(() => (messages = stream(input, limits)), []));
      for (const m of messages) if ('error' in m) expectClearRejection(m.error, [JsonParseError]);
      const whole = stream({ bytes: input.bytes, cuts: [] }, limits);
      expect(messages.map(comparable), 'the same messages however the bytes are split').to.deep.equal(whole.map(comparable));
    }
  },
  roundTrip: fc.property(valuesArbitrary, cutsArbitrary, (values, cuts) => {
    expect(stream({ bytes: encodeAll(values), cuts }, {})).to.deep.equal(values.map((value) => ({ value })));
  }),
};
