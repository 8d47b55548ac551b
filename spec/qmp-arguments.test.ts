import { expect } from 'chai';
import { QmpError } from '../protocols/qmp/errors.js';
import { qapi } from '../protocols/qmp/schema.js';
import type { JsonObject } from '../protocols/qmp/types.js';
import { validateArguments } from '../protocols/qmp/validate-arguments.js';

const capabilitiesArgs = qapi.object({
  capabilities: qapi.array(qapi.object({ capability: qapi.enumOf(['events', 'multifd']), state: qapi.bool })),
});

function refusal(schema: Parameters<typeof validateArguments>[0], args: JsonObject): string {
  try {
    validateArguments(schema, args);
  } catch (error) {
    expect(error).to.be.instanceOf(QmpError);
    expect((error as QmpError).errorClass).to.equal('GenericError');
    return (error as QmpError).desc;
  }
  throw new Error('arguments were accepted');
}

describe('QMP argument validation', () => {
  it('returns the typed arguments', () => {
    const args = validateArguments(capabilitiesArgs, { capabilities: [{ capability: 'events', state: true }] });
    expect(args.capabilities[0]!.capability).to.equal('events');
    expect(args).to.deep.equal({ capabilities: [{ capability: 'events', state: true }] });
  });

  it('reports a missing member by its full name', () => {
    expect(refusal(capabilitiesArgs, {})).to.equal("Parameter 'capabilities' is missing");
    expect(refusal(capabilitiesArgs, { capabilities: [{ capability: 'events' }] })).to.equal(
      "Parameter 'capabilities[0].state' is missing",
    );
  });

  it('reports an unexpected member, after the known ones check out', () => {
    expect(refusal(capabilitiesArgs, { capabilities: [], bogus: 1 })).to.equal("Parameter 'bogus' is unexpected");
    expect(refusal(capabilitiesArgs, { bogus: 1, capabilities: 'x' })).to.equal(
      "Invalid parameter type for 'capabilities', expected: array",
    );
    expect(refusal(capabilitiesArgs, { capabilities: [{ capability: 'events', state: true, x: 1 }] })).to.equal(
      "Parameter 'capabilities[0].x' is unexpected",
    );
  });

  it('names nested members in type errors', () => {
    expect(refusal(capabilitiesArgs, { capabilities: [{ capability: 'events', state: true }, { capability: 'events', state: 'on' }] })).to.equal(
      "Invalid parameter type for 'capabilities[1].state', expected: boolean",
    );
  });

  it("refuses an enum value QEMU's way, with the bare member name", () => {
    expect(refusal(capabilitiesArgs, { capabilities: [{ capability: 'bogus', state: true }] })).to.equal(
      "Parameter 'capability' does not accept value 'bogus'",
    );
    expect(refusal(qapi.object({ list: qapi.array(qapi.enumOf(['a'])) }), { list: ['a', 'b'] })).to.equal(
      "Parameter 'null' does not accept value 'b'",
    );
    expect(refusal(capabilitiesArgs, { capabilities: [{ capability: 7, state: true }] })).to.equal(
      "Invalid parameter type for 'capabilities[0].capability', expected: string",
    );
  });

  describe('type errors for each scalar', () => {
    const cases: Array<[keyof typeof qapi, unknown, string]> = [
      ['str', 1, 'string'],
      ['bool', 'yes', 'boolean'],
      ['int', 1.5, 'integer'],
      ['int', '1', 'integer'],
      ['number', '1', 'number'],
      ['null', 0, 'null'],
    ];
    for (const [kind, value, expected] of cases) {
      it(`${kind} refuses ${JSON.stringify(value)}`, () => {
        const schema = qapi.object({ x: qapi[kind] as typeof qapi.str });
        expect(refusal(schema, { x: value as string })).to.equal(`Invalid parameter type for 'x', expected: ${expected}`);
      });
    }
    it('object and array refuse other types', () => {
      expect(refusal(qapi.object({ o: qapi.object({}) }), { o: [] })).to.equal("Invalid parameter type for 'o', expected: object");
      expect(refusal(qapi.object({ a: qapi.array(qapi.int) }), { a: {} })).to.equal("Invalid parameter type for 'a', expected: array");
    });
  });

  describe('QAPI integers', () => {
    const u64 = qapi.object({ v: qapi.uint64 });
    const u8 = qapi.object({ v: qapi.uint8 });
    const u32 = qapi.object({ v: qapi.uint32 });
    const i64 = qapi.object({ v: qapi.int });

    it('keeps a uint64 above 2^53 exact', () => {
      expect(validateArguments(u64, { v: 18446744073709551615n }).v).to.equal(18446744073709551615n);
      expect(validateArguments(qapi.object({ v: qapi.size }), { v: 1 }).v).to.equal(1);
    });

    it('wraps a negative uint64 as QEMU does', () => {
      expect(validateArguments(u64, { v: -1 }).v).to.equal(18446744073709551615n);
      expect(validateArguments(u64, { v: -9223372036854775808n }).v).to.equal(9223372036854775808n);
    });

    it('refuses what no uint64 can hold, with the full name', () => {
      expect(refusal(u64, { v: 18446744073709551616n })).to.equal("Parameter 'v' expects uint64");
      expect(refusal(u64, { v: -9223372036854775809n })).to.equal("Parameter 'v' expects uint64");
      expect(refusal(u64, { v: 1.5 })).to.equal("Parameter 'v' expects uint64");
      expect(refusal(u64, { v: 'x' })).to.equal("Parameter 'v' expects uint64");
      expect(refusal(qapi.object({ l: qapi.array(qapi.uint64) }), { l: [1, true] })).to.equal("Parameter 'l[1]' expects uint64");
    });

    it('checks uint8 and uint32 ranges with the bare name', () => {
      expect(validateArguments(u8, { v: 255 }).v).to.equal(255);
      expect(refusal(u8, { v: 256 })).to.equal("Parameter 'v' expects uint8_t");
      expect(refusal(u8, { v: -1 })).to.equal("Parameter 'v' expects uint8_t");
      expect(validateArguments(u32, { v: 4294967295 }).v).to.equal(4294967295);
      expect(refusal(u32, { v: 4294967296 })).to.equal("Parameter 'v' expects uint32_t");
      expect(refusal(qapi.object({ l: qapi.array(qapi.uint8) }), { l: [300] })).to.equal("Parameter 'null' expects uint8_t");
    });

    it('takes any int64 for int and refuses beyond it', () => {
      expect(validateArguments(i64, { v: -9223372036854775808n }).v).to.equal(-9223372036854775808n);
      expect(refusal(i64, { v: 9223372036854775808n })).to.equal("Invalid parameter type for 'v', expected: integer");
    });

    it('treats a number beyond 2^53 that is not a bigint as a float', () => {
      expect(refusal(i64, { v: 1e300 })).to.equal("Invalid parameter type for 'v', expected: integer");
    });

    it('gives number a bigint as a float', () => {
      expect(validateArguments(qapi.object({ v: qapi.number }), { v: 18446744073709551615n }).v).to.equal(18446744073709551615);
    });
  });

  describe('alternates', () => {
    const strOrNull = qapi.object({ 'tls-creds': qapi.optional(qapi.alternate('StrOrNull', qapi.str, qapi.null)) });

    it('takes either branch', () => {
      expect(validateArguments(strOrNull, { 'tls-creds': 'tls0' })['tls-creds']).to.equal('tls0');
      expect(validateArguments(strOrNull, { 'tls-creds': null })['tls-creds']).to.equal(null);
      expect(validateArguments(strOrNull, {})).to.deep.equal({});
    });

    it('refuses another type by the alternate name', () => {
      expect(refusal(strOrNull, { 'tls-creds': 5 })).to.equal("Invalid parameter type for 'tls-creds', expected: StrOrNull");
    });
  });

  it('passes any value through untouched', () => {
    expect(validateArguments(qapi.object({ v: qapi.any }), { v: { deep: [1n << 70n] } }).v).to.deep.equal({ deep: [1n << 70n] });
  });
});
