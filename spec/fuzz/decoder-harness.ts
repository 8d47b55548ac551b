/**
 * What the decoder fuzz tests share: feeding input the ways a transport
 * does, and checking that no page was written that no run named.
 */
import { expect } from 'chai';
import type { PullDecoder } from '../../protocols/pull-decoder/pull-decoder.js';
import type { FakeGuest } from '../stream-fake-guest.js';
import type { SeededRandom } from './seeded-random.js';

/** Feeds a whole input to a pull decoder in one of three ways: at once, in odd chunks, or as socket reads into want(). */
export function feed(random: SeededRandom, decoder: PullDecoder, input: Uint8Array): void {
  switch (random.int(0, 3)) {
    case 0:
      decoder.push(input);
      break;
    case 1: {
      // Tiny chunks over the first bytes (hello, headers), larger ones after, to keep runs short.
      const split = random.int(0, Math.min(input.length, 3000));
      for (const chunk of random.chunks(input.subarray(0, split), random.pick([1, 3, 17]))) decoder.push(chunk);
      for (const chunk of random.chunks(input.subarray(split), random.pick([500, 5000]))) decoder.push(chunk);
      break;
    }
    default: {
      // Like a socket's onread: each read fills part of the wanted view.
      let at = 0;
      while (at < input.length) {
        const view = decoder.want();
        if (view.length === 0) throw new Error('want() returned an empty view');
        const n = Math.min(view.length, input.length - at, random.int(1, 6000));
        view.set(input.subarray(at, at + n));
        decoder.commit(n);
        at += n;
      }
    }
  }
  decoder.end();
}

/** Every page whose bytes changed must have been handed out by pageView, named by a zero run, or patched by an XBZRLE delta. */
export function checkWrites(guest: FakeGuest, pageCounts: readonly number[], filledPage: Uint8Array): void {
  expect(guest.guardsIntact(), 'guard bytes around guest RAM').to.equal(true);
  const allowed = pageCounts.map((pages) => new Uint8Array(pages));
  for (const event of guest.events) {
    const count = event.call === 'pageView' ? event.given : event.count;
    for (let p = event.first; p < event.first + count; p++) (allowed[event.block] as Uint8Array)[p] = 1;
  }
  for (const { block, page } of guest.xbzrlePages) (allowed[block] as Uint8Array)[page] = 1;
  for (let block = 0; block < pageCounts.length; block++) {
    for (let page = 0; page < (pageCounts[block] as number); page++) {
      if ((allowed[block] as Uint8Array)[page]) continue;
      if (Buffer.compare(guest.page(block, page), filledPage) !== 0) {
        throw new Error(`page ${page} of block ${block} was written without a run naming it`);
      }
    }
  }
}
