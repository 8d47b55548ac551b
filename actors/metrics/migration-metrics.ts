/**
 * The instance's migration figures as Prometheus metrics, named after
 * KubeVirt's kubevirt_vmi_migration_* where KubeVirt has the figure and
 * livemig_migration_* where it has none. Nothing is counted here: every
 * value is read on scrape (prom-client's collect()) from what query-migrate
 * reads — the outgoing migration's RamStats (their toQmp(), query-migrate's
 * `ram`) and timings, the incoming migration's info() — so the two always
 * agree. Only failures are counted here, as they happen: query-migrate
 * keeps the last one's error-desc, a counter needs every one.
 */
import type { Counter, Gauge, Registry } from 'prom-client';
import { migrationStatuses, type MigrationStatus } from '../../machines/status.js';
import type { IncomingInfo } from '../incoming/incoming-migration.js';
import type { SourceMigrationInfo } from '../outgoing/source-migration.js';
import { FAILURE_REASONS, failureReason } from './failure-reason.js';

/** What the metrics read of an instance (actors/instance's Instance is one). */
export interface MetricsHost {
  readonly sourceStatus: MigrationStatus;
  readonly destinationStatus: MigrationStatus;
  readonly sourceError: string | null;
  readonly destinationError: string | null;
  /** The current or last outgoing migration's figures (query-migrate's source side). */
  readonly outgoing: SourceMigrationInfo | undefined;
  /** The incoming migration's figures, once it has started (query-migrate's destination side). */
  incomingInfo(): IncomingInfo | undefined;
}

export type MigrationSide = 'source' | 'destination';

const SIDES: readonly MigrationSide[] = ['source', 'destination'];

/** query-migrate's mbps is in megabits (10^6 bits) per second. */
const BYTES_PER_MBPS = 1e6 / 8;

/** One registry per instance, and the one metric fed by events rather than read on scrape. */
export class MigrationMetrics {
  private constructor(
    readonly registry: Registry,
    private readonly host: MetricsHost,
    private readonly failures: Counter<'side' | 'reason'>,
  ) {}

  /**
   * Loads prom-client (only an instance given --metrics pays for it) and
   * registers every metric, each reading `host` when scraped.
   *
   * @example const metrics = await MigrationMetrics.create(instance); await metrics.registry.metrics();
   */
  static async create(host: MetricsHost): Promise<MigrationMetrics> {
    const client = await import('prom-client');
    const registry = new client.Registry();
    const registers = [registry];
    type Read<L extends string> = (metric: Gauge<L>) => void;
    const gauge = <L extends string = never>(name: string, help: string, labelNames: readonly L[], read: Read<L>): void =>
      void new client.Gauge<L>({ name, help, labelNames, registers, collect() { this.reset(); read(this); } });
    /** A counter whose value is a figure counted elsewhere: reset, then set to it (a new migration starts it at 0, which Prometheus reads as a counter reset). */
    const counter = <L extends string = never>(name: string, help: string, labelNames: readonly L[], read: (set: (value: number, labels?: Partial<Record<L, string>>) => void) => void): void =>
      void new client.Counter<L>({
        name, help, labelNames, registers,
        collect() {
          this.reset();
          read((value, labels) => (labels ? this.inc(labels, value) : this.inc(value)));
        },
      });
    const source = () => sourceFigures(host);
    const incoming = () => host.incomingInfo();

    gauge('livemig_migration_status', "The migration status on each side (QEMU's MigrationStatus, query-migrate's status): 1 for the current one, 0 for the others.", ['side', 'status'], (g) => {
      for (const side of SIDES) {
        const now = side === 'source' ? host.sourceStatus : host.destinationStatus;
        for (const status of migrationStatuses) g.set({ side, status }, status === now ? 1 : 0);
      }
    });
    gauge('kubevirt_vmi_migration_succeeded', 'Indicates if the last migration on this side succeeded (1 = completed).', ['side'], (g) => {
      g.set({ side: 'source' }, host.sourceStatus === 'completed' ? 1 : 0);
      g.set({ side: 'destination' }, host.destinationStatus === 'completed' ? 1 : 0);
    });
    gauge('kubevirt_vmi_migration_failed', 'Indicates if the last migration on this side failed (1 = failed).', ['side'], (g) => {
      g.set({ side: 'source' }, host.sourceStatus === 'failed' ? 1 : 0);
      g.set({ side: 'destination' }, host.destinationStatus === 'failed' ? 1 : 0);
    });
    gauge('kubevirt_vmi_migration_start_time_seconds', 'The time at which the migration started (Unix seconds), on each side that had one.', ['side'], (g) => {
      const m = host.outgoing;
      const info = incoming();
      if (m) g.set({ side: 'source' }, m.startTime / 1000);
      if (info?.startTime !== undefined) g.set({ side: 'destination' }, info.startTime / 1000);
    });
    gauge('kubevirt_vmi_migration_end_time_seconds', 'The time at which the migration ended (Unix seconds), on each side whose migration has ended.', ['side'], (g) => {
      const m = host.outgoing;
      const info = incoming();
      if (m?.endTime !== undefined) g.set({ side: 'source' }, m.endTime / 1000);
      if (info?.endTime !== undefined) g.set({ side: 'destination' }, info.endTime / 1000);
    });

    gauge('kubevirt_vmi_migration_data_processed_bytes', 'The guest memory data sent to the destination so far, in bytes (query-migrate ram.transferred).', [], (g) => {
      g.set(source()?.transferred ?? 0);
    });
    gauge('kubevirt_vmi_migration_data_remaining_bytes', 'The guest memory data still to send, in bytes (query-migrate ram.remaining).', [], (g) => {
      g.set(source()?.remaining ?? 0);
    });
    counter('kubevirt_vmi_migration_data_bytes_total', "The guest memory data to migrate, in bytes: all RAM blocks (query-migrate ram.total; KubeVirt's former name kubevirt_vmi_migration_data_total_bytes).", [], (set) => {
      set(source()?.total ?? 0);
    });
    gauge('kubevirt_vmi_migration_memory_transfer_rate_bytes', 'The rate at which memory is being transferred, in bytes per second (query-migrate ram.mbps).', [], (g) => {
      g.set((source()?.mbps ?? 0) * BYTES_PER_MBPS);
    });
    gauge('kubevirt_vmi_migration_dirty_memory_rate_bytes', 'The rate at which the guest dirties memory, in bytes per second (query-migrate ram.dirty-pages-rate times ram.page-size).', [], (g) => {
      const ram = source();
      g.set((ram?.['dirty-pages-rate'] ?? 0) * (ram?.['page-size'] ?? 0));
    });
    counter('livemig_migration_dirty_syncs_total', 'Dirty-bitmap syncs of the current or last outgoing migration (query-migrate ram.dirty-sync-count).', [], (set) => {
      set(source()?.['dirty-sync-count'] ?? 0);
    });
    gauge('livemig_migration_downtime_seconds', 'How long the guest was stopped for switchover, once it was (query-migrate downtime); 0 before.', [], (g) => {
      g.set((host.outgoing?.downtime ?? 0) / 1000);
    });
    gauge('livemig_migration_expected_downtime_seconds', 'The downtime the outgoing migration expects at switchover, from the remaining data and the bandwidth (query-migrate expected-downtime).', [], (g) => {
      g.set((host.outgoing?.expectedDowntime ?? 0) / 1000);
    });
    counter('livemig_migration_multifd_bytes_total', 'Bytes the outgoing migration sent through its multifd channels, all channels together (query-migrate ram.multifd-bytes).', [], (set) => {
      set(source()?.['multifd-bytes'] ?? 0);
    });
    const xbzrle = () => host.outgoing?.xbzrle;
    counter('livemig_migration_xbzrle_bytes_total', 'Bytes the outgoing migration sent for pages its XBZRLE cache held: deltas, and overflowed pages whole (query-migrate xbzrle-cache.bytes).', [], (set) => {
      set(xbzrle()?.bytes ?? 0);
    });
    counter('livemig_migration_xbzrle_pages_total', 'Pages sent again that the XBZRLE cache held (query-migrate xbzrle-cache.pages).', [], (set) => {
      set(xbzrle()?.pages ?? 0);
    });
    counter('livemig_migration_xbzrle_cache_misses_total', 'Pages sent again that the XBZRLE cache did not hold, sent whole (query-migrate xbzrle-cache.cache-miss).', [], (set) => {
      set(xbzrle()?.cacheMiss ?? 0);
    });
    counter('livemig_migration_received_bytes_total', 'Bytes the incoming migration received, on every channel (query-migrate __org.livemig_incoming.bytes).', [], (set) => {
      set(incoming()?.bytes ?? 0);
    });
    counter('livemig_migration_postcopy_requests_total', 'Postcopy page requests: served by the source (query-migrate ram.postcopy-requests), sent by the destination (__org.livemig_incoming.postcopy-requests).', ['side'], (set) => {
      set(source()?.['postcopy-requests'] ?? 0, { side: 'source' });
      set(incoming()?.postcopyRequests ?? 0, { side: 'destination' });
    });
    gauge('livemig_migration_postcopy_blocktime_seconds', 'Postcopy, with the postcopy-blocktime capability: how long all vCPUs waited on missing pages at once (query-migrate postcopy-blocktime, which QEMU shows once completed; here from the start of postcopy).', [], (g) => {
      g.set((incoming()?.blocktime?.total ?? 0) / 1000);
    });
    gauge('livemig_migration_postcopy_vcpu_blocktime_seconds', 'Postcopy, with the postcopy-blocktime capability: how long each vCPU waited on missing pages (query-migrate postcopy-vcpu-blocktime).', ['vcpu'], (g) => {
      incoming()?.blocktime?.perVcpu.forEach((ms, vcpu) => g.set({ vcpu: String(vcpu) }, ms / 1000));
    });

    const failures = new client.Counter({
      name: 'livemig_migration_failures_total',
      help: `Migrations that failed, by side and by reason class (${FAILURE_REASONS.join(', ')}), classed from query-migrate's error-desc.`,
      labelNames: ['side', 'reason'] as const,
      registers,
    });
    for (const side of SIDES) for (const reason of FAILURE_REASONS) failures.inc({ side, reason }, 0);
    return new MigrationMetrics(registry, host, failures);
  }

  /** The instance tells every status change; a failure is counted with its reason's class. */
  statusChanged(side: MigrationSide, status: MigrationStatus): void {
    if (status !== 'failed') return;
    const error = side === 'source' ? this.host.sourceError : this.host.destinationError;
    this.failures.inc({ side, reason: failureReason(error) });
  }
}

/**
 * query-migrate's `ram` for the current or last outgoing migration, as
 * query-migrate fills it for its status (once completed, no remaining bytes
 * nor dirty rate); kept after a failure or a cancel too, where query-migrate
 * shows none, so a dashboard still sees how far it got.
 */
function sourceFigures(host: MetricsHost): Record<string, number> | undefined {
  return host.outgoing?.stats.toQmp(host.sourceStatus === 'completed');
}
