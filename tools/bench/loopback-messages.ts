/** What crosses the thread boundary between a loopback peer and its channel workers. */
import type { Slice } from './loopback-channel.js';

export interface ChannelWorkerData {
  role: 'send' | 'receive';
  slice: Slice;
}

/**
 * Receiving workers report their port, sending workers that they can start
 * (then get the port to connect to); both with their OS thread id, for the
 * bench's thread profile.
 */
export type ChannelWorkerMessage =
  | { kind: 'port'; port: number; tid: number }
  | { kind: 'ready'; tid: number }
  | { kind: 'done' }
  | { kind: 'error'; message: string };

/**
 * The JSON lines a loopback peer process prints on stdout, one per event.
 * channelThreads: the OS thread ids of its connection workers. A sender is
 * `armed` once its workers are up, and sends when told on stdin; a receiver
 * is `done` once every byte landed, and verifies them when told: so the
 * bench's thread profiles cover the moving of the bytes only.
 */
export type PeerReport =
  | { event: 'ready'; ports: number[]; channelThreads: number[] }
  | { event: 'armed'; channelThreads: number[] }
  | { event: 'done'; elapsedMs?: number; cpuSeconds: number; maxRssBytes: number }
  | { event: 'verified'; verified: boolean }
  | { event: 'error'; message: string };
