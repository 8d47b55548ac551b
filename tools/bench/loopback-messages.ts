/** What crosses the thread boundary between a loopback peer and its channel workers. */
import type { Slice } from './loopback-channel.js';

export interface ChannelWorkerData {
  role: 'send' | 'receive';
  slice: Slice;
}

/** Receiving workers report their port, sending workers that they can start (then get the port to connect to). */
export type ChannelWorkerMessage =
  | { kind: 'port'; port: number }
  | { kind: 'ready' }
  | { kind: 'done' }
  | { kind: 'error'; message: string };

/** The JSON lines a loopback peer process prints on stdout, one per event. */
export type PeerReport =
  | { event: 'ready'; ports: number[] }
  | { event: 'done'; elapsedMs?: number; verified?: boolean; cpuSeconds: number; maxRssBytes: number }
  | { event: 'error'; message: string };
