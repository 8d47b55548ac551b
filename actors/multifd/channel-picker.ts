/**
 * Which channel takes the next page batch: a function over each channel's
 * batches in flight, undefined when every channel is full (the migration
 * then waits). The policy is pluggable, as piscina's balancer is.
 */
export type ChannelPicker = (inFlight: readonly number[], maxInFlight: number) => number | undefined;

/** The channel with the fewest batches in flight (the first of equals). */
export const leastBusy: ChannelPicker = (inFlight, maxInFlight) => {
  let best: number | undefined;
  for (let i = 0; i < inFlight.length; i++) {
    if (inFlight[i]! < maxInFlight && (best === undefined || inFlight[i]! < inFlight[best]!)) best = i;
  }
  return best;
};
