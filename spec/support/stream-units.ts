import { HELLO_SIZE } from '../../protocols/hello/constants.js';
import { FrameType } from '../../protocols/stream/constants.js';
import type { FaultProxyOptions, FrameLength } from './fault-proxy.js';

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

/**
 * A proxy's tampering that swallows the source's stream from the first
 * control frame that names `marker` (a message type, e.g. `packaged`) on:
 * nothing of it or after it reaches the destination. `swallowing()` says
 * whether that frame came.
 */
export function swallowFrom(marker: string): { tamperTowardsDestination: FaultProxyOptions['tamperTowardsDestination']; swallowing: () => boolean } {
  let swallowing = false;
  return {
    tamperTowardsDestination: {
      frames: streamUnits(),
      tamper: (unit) => {
        swallowing ||= unit[0] === FrameType.CONTROL && unit.includes(marker);
        return swallowing ? Buffer.alloc(0) : unit;
      },
    },
    swallowing: () => swallowing,
  };
}
