/**
 * The bench's rounds (tools/bench/round-plan.ts): each livemig scenario
 * right beside its references, every scenario once a round, the order
 * within a pair reversed every other round, and the loopback limit
 * measured every round that has pairs.
 */
import { expect } from 'chai';
import { DRIFT_PROBE, roundOrder, withDriftProbe } from '../tools/bench/round-plan.js';
import { allScenarios, selectScenarios } from '../tools/bench/scenarios.js';

const all = allScenarios(256 << 20);
const select = (filters: string[], qemu = true) => withDriftProbe(all, selectScenarios(all, { quick: false, filters, qemu }));
const names = (filters: string[], round: number, qemu = true) => roundOrder(select(filters, qemu), round).map((s) => s.name);

describe('bench round plan', () => {
  it('runs a livemig scenario beside its QEMU run and loopback limit, reversed every other round', () => {
    expect(names(['multifd2'], 0).slice(0, 4)).to.deep.equal(['loopback-1', 'loopback-2', 'qemu-multifd2', 'multifd2']);
    expect(names(['multifd2'], 1).slice(0, 4)).to.deep.equal(['loopback-1', 'multifd2', 'qemu-multifd2', 'loopback-2']);
  });

  it('adds the loopback limit as the drift probe, first in the round, when it is no pair\'s reference', () => {
    expect(names(['multifd2'], 0, false).slice(0, 3)).to.deep.equal([DRIFT_PROBE, 'loopback-2', 'multifd2']);
    // Already precopy's reference: run beside it, not twice.
    expect(names(['precopy'], 0, false).filter((n) => n === DRIFT_PROBE)).to.have.length(1);
    expect(names(['precopy'], 0, false).slice(0, 2)).to.deep.equal([DRIFT_PROBE, 'precopy']);
  });

  it('adds no probe where nothing is paired', () => {
    expect(select(['colo'], false).map((s) => s.name)).to.deep.equal(['colo']);
  });

  it('runs every selected scenario exactly once a round', () => {
    const selected = select([]);
    for (const round of [0, 1]) {
      expect([...roundOrder(selected, round).map((s) => s.name)].sort()).to.deep.equal(selected.map((s) => s.name).sort());
    }
  });

  it('keeps the compression and convergence pairs side by side, in their own alternating order', () => {
    const order = names([], 0);
    const adjacent = (a: string, b: string) => Math.abs(order.indexOf(a) - order.indexOf(b)) === 1;
    expect(order.indexOf('qemu-multifd2-zstd')).to.equal(order.indexOf('multifd2-zstd') - 1);
    expect(order.indexOf('multifd2-zstd-text')).to.equal(order.indexOf('qemu-multifd2-zstd-text') - 1);
    expect(adjacent('conv-no-lever', 'qemu-conv-no-lever')).to.equal(true);
    expect(adjacent('conv-xbzrle', 'qemu-conv-xbzrle')).to.equal(true);
    expect(adjacent('postcopy-preempt', 'qemu-postcopy-preempt')).to.equal(true);
  });
});
