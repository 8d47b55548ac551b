/**
 * What the visualizer has seen of the live instances, as a stream of
 * updates: connection changes, status transitions (and, from a traced
 * instance, the event that made each), query-migrate samples,
 * MIGRATION_PASS and actor messages. A bounded history, in the order things
 * happened, is replayed to a page opened late (or reloaded), so that it
 * splits the migrations where they began; every new update then goes to
 * each subscriber as it arrives.
 */
import type { JsonObject } from '../../protocols/qmp/types.js';
import type { Side } from './machines.js';

/** `replayed`: the side's updates come from a saved trace, not from a live instance. */
export type ConnectionState = 'connecting' | 'connected' | 'lost' | 'replayed';

export type LiveUpdate =
  | { topic: 'connection'; side: Side; address: string; state: ConnectionState; detail: string | null; trace: boolean }
  | { topic: 'transition'; side: Side; from: string | null; to: string; at: number; via: 'event' | 'poll' }
  /** The statechart's own account of a status change: the event whose transition it was. */
  | { topic: 'edge'; side: Side; from: string; to: string; event: string; at: number; context?: JsonObject }
  | {
      topic: 'sample'; side: Side; at: number; status: string; ram: RamSample | null; incomingBytes: number | null; error: string | null; params: SampleParams | null;
      postcopy?: PostcopySample;
    }
  /** A COLO checkpoint done on `side` (query-colo's last-checkpoint, seen as it changes). */
  | { topic: 'checkpoint'; side: Side; at: number; id: number; reason: string; ms: number; downtimeMs: number; pages: number }
  | { topic: 'pass'; side: Side; pass: number; at: number }
  | { topic: 'message'; side: Side; from: string; to: string; type: string; kind: string; at: number; payload?: JsonObject };

/** The query-migrate `ram` figures the charts draw (bytes, bytes, Mbit/s, pages/s). */
export interface RamSample {
  transferred: number;
  remaining: number | null;
  total: number;
  mbps: number;
  dirtyPagesRate: number | null;
  dirtySyncCount: number;
}

/**
 * Postcopy's page traffic on a side: requests served (the source's
 * ram.postcopy-requests) or sent (the destination's), and on the
 * destination how long the guest's faults waited for their pages (µs).
 */
export interface PostcopySample {
  requests: number;
  faultLatencyUs?: { count: number; p50: number; p99: number; max: number };
}

/** The parameters the charts draw: the switchover threshold's downtime limit, and max-bandwidth (bytes/s) for its markers. */
export interface SampleParams {
  downtimeLimitMs: number;
  maxBandwidth: number;
}

/** How many updates a late page is replayed, and a saved trace holds (minutes of a busy migration pair, hours of a quiet one). */
const HISTORY = 40_000;

export class Timeline {
  private readonly connections = new Map<Side, LiveUpdate>();
  private readonly history: LiveUpdate[] = [];
  private readonly subscribers = new Set<(update: LiveUpdate) => void>();

  publish(update: LiveUpdate): void {
    if (update.topic === 'connection') this.connections.set(update.side, update);
    else {
      this.history.push(update);
      if (this.history.length > HISTORY) this.history.splice(0, this.history.length - HISTORY);
    }
    for (const subscriber of this.subscribers) subscriber(update);
  }

  /** Everything a page opened now would be shown: the connections, then the history. */
  updates(): LiveUpdate[] {
    return [...this.connections.values(), ...this.history];
  }

  /** Replays the history to `subscriber`, then sends it every update; returns the unsubscribe function. */
  subscribe(subscriber: (update: LiveUpdate) => void): () => void {
    for (const update of this.connections.values()) subscriber(update);
    for (const update of this.history) subscriber(update);
    this.subscribers.add(subscriber);
    return () => this.subscribers.delete(subscriber);
  }
}
