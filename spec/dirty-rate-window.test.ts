import { expect } from 'chai';
import { DirtyRateWindow } from '../actors/ram/dirty-rate-window.js';

describe('the dirty-page rate query-migrate reports (over at least a second)', () => {
  it('reports the rate of a window of a second or more, then starts the next', () => {
    const w = new DirtyRateWindow(0);
    expect(w.sync(3000, 1500)).to.equal(2000);
    expect(w.sync(1000, 2500)).to.equal(1000);
  });

  it('a sync milliseconds after the last one weighs the window before it too, not a few pages over a few milliseconds', () => {
    const w = new DirtyRateWindow(0);
    expect(w.sync(1000, 1000)).to.equal(1000);
    // The switchover's sync, 2 ms after the pass's: 10 pages over 1.002 s, not 5000 pages a second.
    expect(w.sync(10, 1002)).to.be.closeTo(1010 / 1.002, 1e-9);
  });

  it('before the first second, the time since dirty logging began; a restart forgets the migration before', () => {
    const w = new DirtyRateWindow(0);
    expect(w.sync(100, 200)).to.equal(500);
    expect(w.sync(100, 400)).to.equal(500);
    w.restart(10_000);
    expect(w.sync(50, 10_100)).to.equal(500);
  });
});
