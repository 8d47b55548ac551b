/**
 * The return path's statechart: opening, open, and its three ends — closed
 * (a clean SHUT), bad (what it carried was wrong, or it ended before SHUT
 * outside postcopy), paused (a postcopy connection broke or was broken off;
 * a recovery opens a new path).
 */
import { expect } from 'chai';
import { createActor } from 'xstate';
import { returnPathMachine, returnPathState, type ReturnPathEvent } from '../machines/return-path.js';

function after(events: ReturnPathEvent[]) {
  const actor = createActor(returnPathMachine).start();
  for (const event of events) actor.send(event);
  const snapshot = actor.getSnapshot();
  return { state: returnPathState(snapshot), error: snapshot.context.error, done: snapshot.status === 'done' };
}

describe('return path machine', () => {
  it('opens, then closes cleanly on SHUT', () => {
    expect(after([])).to.deep.equal({ state: 'opening', error: null, done: false });
    expect(after([{ type: 'open' }])).to.deep.equal({ state: 'open', error: null, done: false });
    expect(after([{ type: 'open' }, { type: 'shut' }])).to.deep.equal({ state: 'closed', error: null, done: true });
  });

  it('goes bad from opening or open, keeping why', () => {
    expect(after([{ type: 'bad', error: 'x' }])).to.deep.equal({ state: 'bad', error: 'x', done: true });
    expect(after([{ type: 'open' }, { type: 'bad', error: 'Received invalid message 0x00ff length 0x0001' }]))
      .to.deep.equal({ state: 'bad', error: 'Received invalid message 0x00ff length 0x0001', done: true });
  });

  it('pauses from opening or open (postcopy), keeping how the connection went', () => {
    expect(after([{ type: 'pause', error: 'y' }])).to.deep.equal({ state: 'paused', error: 'y', done: true });
    expect(after([{ type: 'open' }, { type: 'pause', error: 'Postcopy migration is paused by the user' }]))
      .to.deep.equal({ state: 'paused', error: 'Postcopy migration is paused by the user', done: true });
  });

  it('stays at its end whatever comes after', () => {
    for (const end of [{ type: 'shut' }, { type: 'bad', error: 'b' }, { type: 'pause', error: 'p' }] as ReturnPathEvent[]) {
      const first = after([{ type: 'open' }, end]);
      for (const late of [{ type: 'open' }, { type: 'shut' }, { type: 'bad', error: 'late' }, { type: 'pause', error: 'late' }] as ReturnPathEvent[]) {
        expect(after([{ type: 'open' }, end, late])).to.deep.equal(first);
      }
    }
  });
});
