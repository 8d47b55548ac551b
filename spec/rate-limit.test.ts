/**
 * max-bandwidth's pacing unit: no frame or multifd batch carries more than
 * one 100 ms window's worth of pages under a limit, so a small round is not
 * sent in one burst (see precopy-convergence for the migration it keeps
 * iterating).
 */
import { expect } from 'chai';
import { RateLimiter } from '../actors/outgoing/rate-limit.js';

const PAGE = 4096;
const MAX = 1024;

describe('RateLimiter.windowPages', () => {
  it('without a limit (0 or Infinity), a frame takes its full size', () => {
    expect(new RateLimiter(() => 0).windowPages(MAX, PAGE)).to.equal(MAX);
    expect(new RateLimiter(() => Infinity).windowPages(MAX, PAGE)).to.equal(MAX);
  });

  it('at 10 MB/s, a frame holds at most the 1 MB of one window: 244 pages', () => {
    expect(new RateLimiter(() => 10_000_000).windowPages(MAX, PAGE)).to.equal(244);
  });

  it('a window larger than a frame leaves the frame at its full size', () => {
    expect(new RateLimiter(() => 200_000_000).windowPages(MAX, PAGE)).to.equal(MAX);
  });

  it('a limit below one page per window still moves one page at a time', () => {
    expect(new RateLimiter(() => 1000).windowPages(MAX, PAGE)).to.equal(1);
  });

  it('reads the limit at every call, so migrate-set-parameters applies at once', () => {
    let limit = 10_000_000;
    const limiter = new RateLimiter(() => limit);
    expect(limiter.windowPages(MAX, PAGE)).to.equal(244);
    limit = 100_000_000_000;
    expect(limiter.windowPages(MAX, PAGE)).to.equal(MAX);
  });
});

describe('RateLimiter.delay', () => {
  const MiB = 1 << 20;

  it('at a steady limit, a batch larger than a window is paid back in full', () => {
    const limiter = new RateLimiter(() => 1000);
    limiter.account(100 + PAGE); // the first window's 100 bytes, then one page of debt
    expect(limiter.delay()).to.be.within(PAGE - 5, PAGE);
  });

  it('a debt made at a higher limit costs at most one window at the lowered one', () => {
    let limit = 64 * MiB;
    const limiter = new RateLimiter(() => limit);
    limiter.account(64 * MiB * 0.1 + 64 * MiB * 0.1); // a window's budget spent, and a window owed
    expect(limiter.delay()).to.be.within(95, 100);
    limit = MiB; // paid at 1 MiB/s the old debt would be 6.4 s
    expect(limiter.delay()).to.be.within(95, 100);
  });

  it('no limit, no wait, and no debt carried into a later limit', () => {
    let limit = 0;
    const limiter = new RateLimiter(() => limit);
    limiter.account(10 * MiB);
    expect(limiter.delay()).to.equal(0);
    limit = MiB;
    expect(limiter.delay()).to.equal(0);
  });
});
