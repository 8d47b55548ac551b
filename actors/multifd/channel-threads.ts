import { availableParallelism } from 'node:os';

/**
 * How many threads carry `channels` multifd channels on one side: one per
 * channel, but never more than the machine has cores. A channel is a socket
 * and its event loop turns, not a thread's worth of work, so four channels
 * on two cores share two threads instead of four threads taking turns on
 * them (which measured slower than two channels).
 */
export function channelThreads(channels: number): number {
  return Math.max(1, Math.min(channels, availableParallelism()));
}
