import type { Worker } from 'node:worker_threads';
import type { IncomingListener } from '../../protocols/transport/incoming.js';
import type { ColoServices } from '../colo/colo-services.js';
import type { Guest } from '../guest/guest.js';
import type { SwitchoverAckDevices } from '../guest/switchover-ack-devices.js';
import type { MigrationOptions } from '../options/migration-options.js';
import type { TlsServerData } from '../objects/migration-tls.js';
import type { TlsServer } from '../../protocols/tls/session.js';
import type { DescriptorPaths } from '../../protocols/transport/descriptor-paths.js';

/** What the destination's incoming migration needs of its instance. */
export interface IncomingEnvironment extends ColoServices {
  guest: Guest;
  /** The guest's UUID (QEMU's -uuid), checked against the stream header's. */
  uuid: string | undefined;
  /** Capabilities and parameters as set before incoming started. */
  options: MigrationOptions;
  log(message: string, fields?: Record<string, unknown>): void;
  /** A message between actors that are not statecharts (the return path, multifd), for the visualizer. */
  trace(from: string, to: string, type: string): void;
  /** Devices that hold the switchover until ready (switchover-ack). */
  switchoverAckDevices: SwitchoverAckDevices;
  /** False with -S (until `cont` during inmigrate sets it): the guest then stays paused. */
  autostart(): boolean;
  /** The listener migrate-incoming already opened (undefined: open it here). */
  takeListener(): IncomingListener | undefined;
  /** Idle destination channel threads for `channels` channels (channel-threads.ts), started ahead when possible; the caller owns them. */
  multifdRecvWorkers(channels: number): Worker[];
  /** What tls-creds and tls-authz make of incoming connections: undefined without TLS; throws (QEMU's text) if unusable. */
  tlsServer(): TlsServer | undefined;
  /** The same for the channel threads. */
  tlsServerData(): TlsServerData | undefined;
  /** Opens `file:` paths that name a descriptor of the instance's fd sets (`/dev/fdset/N`). */
  descriptorPaths: DescriptorPaths;
}
