/**
 * Multifd channels (protocols/multifd): an optional hello, then packets of
 * a header, run descriptors and page data, raw or compressed. Besides
 * rejecting cleanly, the decoder may write only guest pages a checked run
 * named, and reports SYNC rounds one after the other.
 */
import { expect } from 'chai';
import * as fc from 'fast-check';
import { ChannelKind } from '../../../protocols/hello/constants.js';
import { encodeHello } from '../../../protocols/hello/encode.js';
import { compressPages } from '../../../protocols/multifd/compression.js';
import { COMPRESSION_METHODS, type CompressionMethod } from '../../../protocols/multifd/constants.js';
import { MultifdDecoder } from '../../../protocols/multifd/decode.js';
import { encodePacketHeader } from '../../../protocols/multifd/encode.js';
import { MultifdError } from '../../../protocols/multifd/errors.js';
import type { PageRun } from '../../../protocols/page-runs/types.js';
import { expectedRam, type FakeGuest, PAGE, sourceRam } from '../../stream-fake-guest.js';
import { withinBounds } from '../bounds.js';
import { cutsArbitrary, feedPull } from '../chunking.js';
import { FILL, PAGE_COUNTS, blockRunsArbitrary, checkWrites, guestFor } from '../decoder-harness.js';
import type { FuzzInput, FuzzTarget } from '../fuzz-target.js';
import { BOUNDARY_WORDS, hostileBytes } from '../mutation.js';
import { acceptsOrRejects } from '../rejection.js';

const hello = encodeHello({ kind: ChannelKind.MULTIFD, channelId: 1, channelCount: 2, uuid: '00000000-0000-0000-0000-000000000001' });

interface ValidChannel {
  bytes: Uint8Array;
  ram: Uint8Array[];
  writes: { block: number; runs: PageRun[] }[];
  syncs: number[];
}

const packetArbitrary = fc.record({ sync: fc.boolean(), pages: fc.option(blockRunsArbitrary, { freq: 6 }), level: fc.nat({ max: 3 }) });

/** A channel as a source writes it: packets numbered from 0, a round that each SYNC advances, pages from `ram`. */
function validChannelArbitrary(compression: CompressionMethod, withHello: boolean): fc.Arbitrary<ValidChannel> {
  return fc
    .record({ seed: fc.nat({ max: 255 }), round: fc.nat({ max: 3 }), packets: fc.array(packetArbitrary, { minLength: 1, maxLength: 6 }) })
    .map(({ seed, round: firstRound, packets }) => {
      const ram = sourceRam(PAGE_COUNTS, seed);
      const parts: Uint8Array[] = withHello ? [hello] : [];
      const writes: ValidChannel['writes'] = [];
      const syncs: number[] = [];
      let round = firstRound;
      packets.forEach(({ sync: wantsSync, pages, level }, packetNumber) => {
        // A packet without pages must be a SYNC packet.
        const sync = wantsSync || pages === null;
        const { block, runs } = pages ?? { block: 0, runs: [] };
        const views = runs.filter((r) => !r.zero).map((r) => (ram[block] as Uint8Array).subarray(r.first * PAGE, (r.first + r.count) * PAGE));
        const data = compression === 'none' || views.length === 0 ? views : [compressPages(compression, level, views)];
        const dataLength = data.reduce((sum, v) => sum + v.length, 0);
        parts.push(encodePacketHeader({ sync, compression, packetNumber, round, block, runs, dataLength }), ...data);
        if (runs.length > 0) writes.push({ block, runs });
        if (sync) syncs.push(round++);
      });
      return { bytes: Buffer.concat(parts), ram, writes, syncs };
    });
}

/** A packet whose header is plausible (magic, version, numbering) and whose descriptors and data length sit on boundaries. */
const junkPacketArbitrary: fc.Arbitrary<Uint8Array> = fc
  .record({
    flags: fc.nat({ max: 0xffff }),
    round: fc.nat({ max: 4 }),
    block: fc.nat({ max: 3 }),
    descriptors: fc.array(fc.tuple(fc.constantFrom(0, 1, 7, 62, 63, 64, 0xffffffff), fc.constantFrom(0, 1, 2, 0x7fffffff, 0x80000000, 0x80000001, 2049)), { maxLength: 4 }),
    dataLength: fc.option(fc.constantFrom(...BOUNDARY_WORDS), { freq: 3 }),
    data: fc.uint8Array({ maxLength: 2 * PAGE }),
  })
  .map(({ flags, round, block, descriptors, dataLength, data }) => {
    const header = Buffer.alloc(24 + 8 * descriptors.length);
    header.writeUInt32BE(0x11223344, 0);
    header.writeUInt16BE(1, 4);
    header.writeUInt16BE(flags, 6);
    header.writeUInt32BE(round, 12);
    header.writeUInt16BE(block, 16);
    header.writeUInt16BE(descriptors.length, 18);
    header.writeUInt32BE(dataLength ?? data.length, 20);
    descriptors.forEach(([first, count], i) => {
      header.writeUInt32BE(first, 24 + 8 * i);
      header.writeUInt32BE(count, 28 + 8 * i);
    });
    return Buffer.concat([header, data]);
  });

/**
 * Which channel an input is: its compression and whether it starts with a
 * hello. Carried in the input's first byte, so a corpus entry is plain bytes.
 */
const VARIANTS = COMPRESSION_METHODS.flatMap((compression) => [true, false].map((withHello) => ({ compression, withHello })));

function variantOf(input: FuzzInput): { variant: (typeof VARIANTS)[number]; channel: FuzzInput } {
  const variant = VARIANTS[(input.bytes[0] ?? 0) % VARIANTS.length] as (typeof VARIANTS)[number];
  return { variant, channel: { bytes: input.bytes.subarray(1), cuts: input.cuts } };
}

function decoderFor({ compression, withHello }: (typeof VARIANTS)[number], guest: FakeGuest, syncs: number[]): MultifdDecoder {
  return new MultifdDecoder({ sink: guest, layout: guest.layout, compression, onSync: (round) => syncs.push(round), ...(withHello ? { onHello: () => {} } : {}) });
}

const inputArbitrary: fc.Arbitrary<FuzzInput> = fc.nat({ max: VARIANTS.length - 1 }).chain((index) => {
  const { compression, withHello } = VARIANTS[index] as (typeof VARIANTS)[number];
  const junk = junkPacketArbitrary.map((packet) => Buffer.concat([withHello ? hello : new Uint8Array(0), packet]));
  return fc.record({
    bytes: hostileBytes(validChannelArbitrary(compression, withHello).map((c) => c.bytes), junk).map((bytes) => Buffer.concat([Uint8Array.of(index), bytes])),
    cuts: cutsArbitrary,
  });
});

export const multifdTarget: FuzzTarget = {
  name: 'multifd',
  input: inputArbitrary,
  check(input) {
    const { variant, channel } = variantOf(input);
    const guest = guestFor(input.bytes.length);
    const syncs: number[] = [];
    withinBounds(input.bytes.length, () => acceptsOrRejects(() => feedPull(decoderFor(variant, guest, syncs), channel), [MultifdError]));
    checkWrites(guest);
    for (let i = 1; i < syncs.length; i++) expect(syncs[i], `SYNC rounds ${syncs.join(',')}`).to.equal((syncs[i - 1] as number) + 1);
  },
  roundTrip: fc.property(
    fc.constantFrom(...VARIANTS).chain((variant) => fc.tuple(fc.constant(variant), validChannelArbitrary(variant.compression, variant.withHello))),
    cutsArbitrary,
    fc.nat(),
    ([variant, channel], cuts, slab) => {
      const guest = guestFor(slab);
      const syncs: number[] = [];
      feedPull(decoderFor(variant, guest, syncs), { bytes: channel.bytes, cuts });
      expect(syncs).to.deep.equal(channel.syncs);
      const expected = expectedRam(PAGE_COUNTS, FILL, channel.ram, channel.writes);
      guest.ram.forEach((ram, block) => expect(Buffer.compare(ram, expected[block] as Uint8Array), `block ${block}`).to.equal(0));
    },
  ),
};
