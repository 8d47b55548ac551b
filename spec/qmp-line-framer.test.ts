import { expect } from 'chai';
import { LineFramer, type LineEvent } from '../protocols/qmp/line-framer.js';

const text = (events: LineEvent[]) =>
  events.map((e) => (e.kind === 'line' ? e.bytes.toString('utf8') : `<oversized ${e.limit}>`));

describe('QMP line framer', () => {
  it('joins a line split across chunks and splits lines sharing a chunk', () => {
    const framer = new LineFramer(64);
    expect(text(framer.push(Buffer.from('{"exec')))).to.deep.equal([]);
    expect(text(framer.push(Buffer.from('ute": "a"}\n{"b"}\r\n{"c')))).to.deep.equal(['{"execute": "a"}', '{"b"}\r']);
    expect(text(framer.push(Buffer.from('"}\n')))).to.deep.equal(['{"c"}']);
  });

  it('accepts a line of exactly the limit', () => {
    const framer = new LineFramer(8);
    expect(text(framer.push(Buffer.from('12345678\n')))).to.deep.equal(['12345678']);
  });

  it('reports an oversized line once, as it crosses the bound, without holding it', () => {
    const framer = new LineFramer(8);
    expect(text(framer.push(Buffer.from('12345')))).to.deep.equal([]);
    expect(text(framer.push(Buffer.from('6789')))).to.deep.equal(['<oversized 8>']);
    expect(framer.pendingBytes).to.equal(0);
    expect(text(framer.push(Buffer.from('x'.repeat(100))))).to.deep.equal([]);
    expect(framer.pendingBytes).to.equal(0);
    expect(text(framer.push(Buffer.from('tail\nok\n')))).to.deep.equal(['ok']);
  });

  it('reports an oversized line that arrives whole with its newline, then carries on', () => {
    const framer = new LineFramer(4);
    expect(text(framer.push(Buffer.from('123456\nabc\n')))).to.deep.equal(['<oversized 4>', 'abc']);
  });

  it('refuses a bound that is not a positive integer', () => {
    expect(() => new LineFramer(0)).to.throw(RangeError);
  });
});
