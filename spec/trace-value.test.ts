import { expect } from 'chai';
import { TRACE_VALUE_CHARS, traceValue } from '../actors/instance/trace-value.js';

describe('traceValue: what the actor trace shows of a payload or a context', () => {
  it('makes plain JSON of errors, bigints, byte arrays, actor references and functions', () => {
    const actor = { id: 'migration', sessionId: 'x:3', send: () => {} };
    expect(traceValue({ err: new Error('the connection was closed'), size: 5n, page: new Uint8Array(4096), ref: actor, done: () => {}, nan: NaN })).to.deep.equal({
      err: { error: 'the connection was closed' },
      size: '5',
      page: '<Uint8Array of 4096 bytes>',
      ref: '<actor migration>',
      nan: 'NaN',
    });
  });

  it('wraps a value that is not an object, and summarises deep nesting', () => {
    expect(traceValue('x')).to.deep.equal({ value: 'x' });
    expect(traceValue({ a: { b: { c: { d: { e: { f: { g: 1 } } } } } } })).to.deep.equal({ a: { b: { c: { d: { e: { f: '…' } } } } } });
  });

  it('cuts a value longer than a QMP event should carry, and says how long it was', () => {
    const big = traceValue({ pages: Array.from({ length: 2000 }, (_, i) => i) });
    expect(big.chars).to.be.greaterThan(TRACE_VALUE_CHARS);
    expect(String(big.truncated)).to.have.length(TRACE_VALUE_CHARS + 1);
  });
});
