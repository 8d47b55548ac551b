/**
 * Follows one live instance over QMP for the visualizer: its MIGRATION and
 * MIGRATION_PASS events, its actor messages (through the trace extension,
 * when the instance has it), and query-migrate (with the two parameters the
 * charts draw) every `pollMs`, every ACTIVE_POLL_MS while a migration moves,
 * and at once on each MIGRATION and MIGRATION_PASS event; while a side is
 * in COLO, its checkpoints too (livemig's query-colo). Events give
 * exact transition times when the `events` capability is on; polling sees
 * the status and the figures in any case. The watch never changes the
 * instance's migration settings. A lost connection is retried every second.
 */
import { QmpClient } from '../../protocols/qmp/client.js';
import type { JsonObject, QmpEvent } from '../../protocols/qmp/types.js';
import { ACTOR_MESSAGE_EVENT, EXTENSION_PREFIX, QUERY_COLO_COMMAND, TRACE_COMMAND } from '../../protocols/qmp/livemig-extensions.js';
import { statusOfQueryMigrate } from '../../protocols/qmp/migrate-status.js';
import type { Side } from './machines.js';
import type { PostcopySample, RamSample, Timeline } from './timeline.js';

const RETRY_MS = 1000;
/** The poll while a migration moves: even a sub-second one gets its shape on the charts. */
const ACTIVE_POLL_MS = 50;
/** Statuses in which nothing moves. */
const RESTING = new Set(['none', 'completed', 'failed', 'cancelled']);

export class InstanceWatch {
  private closed = false;
  private client: QmpClient | undefined;
  private lastStatus: string | null = null;
  private lastConnection = '';
  /** The id of the last COLO checkpoint published. */
  private lastCheckpoint = 0;
  /** MIGRATION events handled so far. */
  private migrationEvents = 0;
  private wake: (() => void) | undefined;
  private readonly running: Promise<void>;

  constructor(
    readonly side: Side,
    readonly address: string,
    private readonly timeline: Timeline,
    private readonly pollMs: number,
  ) {
    this.running = this.run();
  }

  async close(): Promise<void> {
    this.closed = true;
    this.wake?.();
    await this.client?.close();
    await this.running;
  }

  private async run(): Promise<void> {
    while (!this.closed) {
      this.connection('connecting', null, false);
      let client: QmpClient;
      try {
        client = await QmpClient.connect(this.address, { timeoutMs: 5000 });
      } catch (err) {
        this.connection('lost', (err as Error).message, false);
        await this.sleep(RETRY_MS);
        continue;
      }
      this.client = client;
      try {
        client.events.on('event', (event: QmpEvent) => this.onEvent(event));
        const commands = await client.execute<{ name: string }[]>('query-commands');
        const trace = commands.some((c) => c.name === TRACE_COMMAND);
        const withParams = commands.some((c) => c.name === 'query-migrate-parameters');
        const withColo = commands.some((c) => c.name === QUERY_COLO_COMMAND);
        if (trace) await client.execute(TRACE_COMMAND, { enable: true });
        this.connection('connected', null, trace);
        while (!this.closed) {
          const eventsBefore = this.migrationEvents;
          const info = await client.execute<JsonObject>('query-migrate');
          const params = withParams ? await client.execute<JsonObject>('query-migrate-parameters') : null;
          this.onQueryMigrate(info, this.migrationEvents !== eventsBefore, params);
          if (withColo && this.lastStatus === 'colo') this.onQueryColo(await client.execute<JsonObject>(QUERY_COLO_COMMAND));
          const moving = this.lastStatus !== null && !RESTING.has(this.lastStatus);
          await this.sleep(moving ? Math.min(this.pollMs, ACTIVE_POLL_MS) : this.pollMs);
        }
      } catch (err) {
        if (!this.closed) this.connection('lost', (err as Error).message, false);
      }
      await client.close();
      this.client = undefined;
      if (!this.closed) await this.sleep(RETRY_MS);
    }
  }

  private onEvent(event: QmpEvent): void {
    const at = event.timestamp.seconds * 1000 + event.timestamp.microseconds / 1000;
    const data = event.data ?? {};
    switch (event.event) {
      case 'MIGRATION':
        this.migrationEvents++;
        this.status(String(data.status), at, 'event');
        // A sample at once: the figures as the status changed.
        this.wake?.();
        break;
      case 'MIGRATION_PASS':
        this.timeline.publish({ topic: 'pass', side: this.side, pass: Number(data.pass), at });
        // Each pass's dirty rate is in query-migrate only until the next sync: sample it now.
        this.wake?.();
        break;
      case ACTOR_MESSAGE_EVENT:
        if (data.kind === 'transition') {
          const side = data.side === 'destination' ? 'destination' : 'source';
          const context = data.context as JsonObject | undefined;
          this.timeline.publish({ topic: 'edge', side, from: String(data.from), to: String(data.to), event: String(data.type), at, ...(context ? { context } : {}) });
          break;
        }
        this.timeline.publish({
          topic: 'message',
          side: data.side === 'destination' ? 'destination' : 'source',
          from: String(data.from),
          to: String(data.to),
          type: String(data.type),
          kind: String(data.kind),
          at,
          ...(data.payload ? { payload: data.payload as JsonObject } : {}),
        });
        break;
    }
  }

  /**
   * `eventRaced`: a MIGRATION event was handled while the query was out.
   * The client hands events over at once but a reply only on the next
   * microtask, so an event written after the reply can be handled before
   * it; either way the event's status is at least as new as the reply's.
   */
  private onQueryMigrate(info: JsonObject, eventRaced: boolean, params: JsonObject | null): void {
    const at = Date.now();
    const status = statusOfQueryMigrate(info);
    if (!eventRaced) this.status(status, at, 'poll');
    const incoming = info[`${EXTENSION_PREFIX}incoming`] as JsonObject | undefined;
    const postcopy = postcopySample(info, incoming);
    this.timeline.publish({
      topic: 'sample',
      side: this.side,
      at,
      status,
      ram: ramSample(info.ram as JsonObject | undefined),
      incomingBytes: incoming === undefined ? null : Number(incoming.bytes),
      error: info['error-desc'] === undefined ? null : String(info['error-desc']),
      params: params === null ? null : { downtimeLimitMs: Number(params['downtime-limit']), maxBandwidth: Number(params['max-bandwidth']) },
      ...(postcopy ? { postcopy } : {}),
    });
  }

  /** A checkpoint not seen before (query-colo's last-checkpoint has a new id) is published once. */
  private onQueryColo(colo: JsonObject): void {
    const last = colo['last-checkpoint'] as JsonObject | undefined;
    if (last === undefined || Number(last.id) === this.lastCheckpoint) return;
    this.lastCheckpoint = Number(last.id);
    this.timeline.publish({
      topic: 'checkpoint',
      side: this.side,
      at: Date.now(),
      id: Number(last.id),
      reason: String(last.reason),
      ms: Number(last.ms),
      downtimeMs: Number(last['downtime-ms']),
      pages: Number(last.pages),
    });
  }

  private status(status: string, at: number, via: 'event' | 'poll'): void {
    if (status === this.lastStatus) return;
    this.timeline.publish({ topic: 'transition', side: this.side, from: this.lastStatus, to: status, at, via });
    this.lastStatus = status;
  }

  private connection(state: 'connecting' | 'connected' | 'lost', detail: string | null, trace: boolean): void {
    // While retrying, the page keeps showing why the last attempt failed rather than flickering.
    const key = `${state} ${detail}`;
    if (key === this.lastConnection || (state === 'connecting' && this.lastConnection.startsWith('lost'))) return;
    this.lastConnection = key;
    this.timeline.publish({ topic: 'connection', side: this.side, address: this.address, state, detail, trace });
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, ms);
      this.wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }
}

/** Postcopy's page traffic, once there is any: the source's requests served, or the destination's sent and its fault latency. */
function postcopySample(info: JsonObject, incoming: JsonObject | undefined): PostcopySample | undefined {
  const served = (info.ram as JsonObject | undefined)?.['postcopy-requests'];
  if (served !== undefined) return { requests: Number(served) };
  if (incoming?.['postcopy-requests'] === undefined) return undefined;
  const latency = incoming['fault-latency-us'] as JsonObject | undefined;
  return {
    requests: Number(incoming['postcopy-requests']),
    ...(latency ? { faultLatencyUs: { count: Number(latency.count), p50: Number(latency.p50), p99: Number(latency.p99), max: Number(latency.max) } } : {}),
  };
}

function ramSample(ram: JsonObject | undefined): RamSample | null {
  if (ram === undefined) return null;
  const num = (key: string) => (ram[key] === undefined ? null : Number(ram[key]));
  return {
    transferred: num('transferred') ?? 0,
    remaining: num('remaining'),
    total: num('total') ?? 0,
    mbps: num('mbps') ?? 0,
    dirtyPagesRate: num('dirty-pages-rate'),
    dirtySyncCount: num('dirty-sync-count') ?? 0,
  };
}
