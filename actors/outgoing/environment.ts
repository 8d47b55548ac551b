import type { ColoServices } from '../colo/colo-services.js';
import type { VcpuDirtyLimits } from '../guest/dirty-limit.js';
import type { FailoverPrimaries } from '../guest/failover-primaries.js';
import type { Guest } from '../guest/guest.js';
import type { MultifdSendPool } from '../multifd/send-pool.js';
import type { MigrationOptions } from '../options/migration-options.js';
import type { TlsClient } from '../../protocols/tls/session.js';
import type { MigrationUri } from '../../protocols/transport/uri.js';
import type { DescriptorPaths } from '../../protocols/transport/descriptor-paths.js';

/** What the source's migration thread needs of its instance. */
export interface SourceEnvironment extends ColoServices {
  guest: Guest;
  /** The vCPUs' dirty page rate limits, which a dirty-limit migration sets and lifts. */
  dirtyLimits: VcpuDirtyLimits;
  /** Passthrough devices the guest must unplug before its migration (wait-unplug). */
  failoverPrimaries: FailoverPrimaries;
  /** The guest's UUID (QEMU's -uuid), for validate-uuid and the channel hellos. */
  uuid: string | undefined;
  /** Capabilities and parameters, read live: migrate-set-parameters takes effect on a running migration. */
  options: MigrationOptions;
  log(message: string, fields?: Record<string, unknown>): void;
  /** A message between actors that are not statecharts (the return path, multifd), for the visualizer. */
  trace(from: string, to: string, type: string): void;
  /** A dirty-bitmap sync happened (MIGRATION_PASS). */
  onPass(pass: number): void;
  /** Warm multifd sender workers for `channels` channels (kept by the instance between migrations). */
  multifdPool(channels: number): MultifdSendPool;
  /**
   * What tls-creds and tls-hostname make of connections to `uri`: undefined
   * without TLS. Throws (QEMU's text) if tls-creds names no client credentials.
   */
  tlsClient(uri: MigrationUri): TlsClient | undefined;
  /** Opens `file:` paths that name a descriptor of the instance's fd sets (`/dev/fdset/N`). */
  descriptorPaths: DescriptorPaths;
}
