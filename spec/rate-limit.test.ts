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
