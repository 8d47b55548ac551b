/** The 32-byte channel hello that opens every connection (protocols/hello). */
import { expect } from 'chai';
import * as fc from 'fast-check';
import { ChannelKind, STREAM_VERSION } from '../../../protocols/hello/constants.js';
import { decodeHello } from '../../../protocols/hello/decode.js';
import { encodeHello } from '../../../protocols/hello/encode.js';
import { HelloError } from '../../../protocols/hello/errors.js';
import type { ChannelHello } from '../../../protocols/hello/types.js';
import { withinBounds } from '../bounds.js';
import { whole } from '../chunking.js';
import type { FuzzTarget } from '../fuzz-target.js';
import { hostileBytes } from '../mutation.js';
import { acceptsOrRejects } from '../rejection.js';

export const helloArbitrary: fc.Arbitrary<Omit<ChannelHello, 'version'>> = fc
  .record({
    kind: fc.constantFrom(...Object.values(ChannelKind)),
    channelCount: fc.integer({ min: 1, max: 255 }),
    channelId: fc.nat({ max: 254 }),
    uuid: fc.option(fc.uuid(), { nil: undefined }),
  })
  .map(({ uuid, ...hello }) => {
    const fitted = { ...hello, channelId: hello.channelId % hello.channelCount };
    return uuid === undefined ? fitted : { ...fitted, uuid };
  });

export const helloTarget: FuzzTarget = {
  name: 'hello',
  input: whole(hostileBytes(helloArbitrary.map((hello) => new Uint8Array(encodeHello(hello))))),
  check({ bytes }) {
    withinBounds(bytes.length, () => acceptsOrRejects(() => decodeHello(bytes), [HelloError]));
  },
  roundTrip: fc.property(helloArbitrary, (hello) => {
    expect(decodeHello(encodeHello(hello))).to.deep.equal({ version: STREAM_VERSION, ...hello });
  }),
};
