/**
 * What the visualizer has seen of the live instances, as a stream of
 * updates: connection changes, status transitions, query-migrate samples,
 * MIGRATION_PASS and actor messages. Each topic keeps a bounded history so a
 * page opened late (or reloaded) is replayed what happened so far; every
 * new update then goes to each subscriber as it arrives.
 */
import type { Side } from './machines.js';

export type ConnectionState = 'connecting' | 'connected' | 'lost';

export type LiveUpdate =
  | { topic: 'connection'; side: Side; address: string; state: ConnectionState; detail: string | null; trace: boolean }
  | { topic: 'transition'; side: Side; from: string | null; to: string; at: number; via: 'event' | 'poll' }
  | { topic: 'sample'; side: Side; at: number; status: string; ram: RamSample | null; incomingBytes: number | null }
  | { topic: 'pass'; side: Side; pass: number; at: number }
  | { topic: 'message'; side: Side; from: string; to: string; type: string; kind: string; at: number };

/** The query-migrate `ram` figures the charts draw (bytes, bytes, Mbit/s, pages/s). */
export interface RamSample {
  transferred: number;
  remaining: number | null;
  total: number;
  mbps: number;
  dirtyPagesRate: number | null;
  dirtySyncCount: number;
}

type Topic = LiveUpdate['topic'];

/** How much of each topic a late page is replayed. */
const HISTORY: Readonly<Record<Exclude<Topic, 'connection'>, number>> = {
  transition: 2000,
  sample: 6000,
  pass: 1000,
  message: 2000,
};

export class Timeline {
  private readonly connections = new Map<Side, LiveUpdate>();
  private readonly history = new Map<Topic, LiveUpdate[]>();
  private readonly subscribers = new Set<(update: LiveUpdate) => void>();

  publish(update: LiveUpdate): void {
    if (update.topic === 'connection') this.connections.set(update.side, update);
    else {
      let kept = this.history.get(update.topic);
      if (kept === undefined) this.history.set(update.topic, (kept = []));
      kept.push(update);
      if (kept.length > HISTORY[update.topic]) kept.splice(0, kept.length - HISTORY[update.topic]);
    }
    for (const subscriber of this.subscribers) subscriber(update);
  }

  /** Replays the history to `subscriber`, then sends it every update; returns the unsubscribe function. */
  subscribe(subscriber: (update: LiveUpdate) => void): () => void {
    for (const update of this.connections.values()) subscriber(update);
    for (const topic of ['transition', 'pass', 'sample', 'message'] as const) {
      for (const update of this.history.get(topic) ?? []) subscriber(update);
    }
    this.subscribers.add(subscriber);
    return () => this.subscribers.delete(subscriber);
  }
}
