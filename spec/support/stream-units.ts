import { HELLO_SIZE } from '../../protocols/hello/constants.js';
import type { FrameLength } from './fault-proxy.js';

/** The source's stream cut into units for the proxy: the channel hello, then frames (8-byte header, body length at 4). */
export function streamUnits(): FrameLength {
  let helloSeen = false;
  return (buffered) => {
    if (!helloSeen) {
      if (buffered.length < HELLO_SIZE) return undefined;
      helloSeen = true;
      return HELLO_SIZE;
    }
    return buffered.length < 8 ? undefined : 8 + buffered.readUInt32BE(4);
  };
}
