/**
 * What QMP commands may ask of the instance they serve. The monitor knows
 * the instance only through this interface, and the instance knows nothing
 * of the commands: whoever creates an instance hands it the command table
 * (tools/run-command.ts), so neither folder imports the other.
 */
import type { EventEmitter } from 'node:events';
import type { FailoverPrimaries } from '../guest/failover-primaries.js';
import type { SwitchoverAckDevices } from '../guest/switchover-ack-devices.js';
import type { IncomingActorCommand, MigrateCommand, MigrationActorCommand } from '../../machines/events.js';
import type { MigrationStatus } from '../../machines/status.js';
import type { ActorMessage } from '../../protocols/qmp/livemig-extensions.js';
import type { FdSets } from '../../protocols/qmp/fd-sets.js';
import type { QmpServer } from '../../protocols/qmp/server.js';
import type { ColoStatus } from '../colo/colo-status.js';
import type { VcpuDirtyLimits } from '../guest/dirty-limit.js';
import type { Guest } from '../guest/guest.js';
import type { GuestNetwork } from '../net/guest-network.js';
import type { NetLinkCounters } from '../net/net-link.js';
import type { UserObjects } from '../objects/user-objects.js';
import type { IncomingInfo } from '../incoming/incoming-migration.js';
import type { MigrationOptions } from '../options/migration-options.js';
import type { SourceMigrationInfo } from '../outgoing/source-migration.js';

export interface MonitorHost {
  readonly guest: Guest;
  /** The guest's UUID (QEMU's -uuid). */
  readonly uuid: string | undefined;
  readonly options: MigrationOptions;
  readonly sourceStatus: MigrationStatus;
  readonly destinationStatus: MigrationStatus;
  /** migrate-incoming was accepted: the destination has left `none`. */
  readonly incomingStarted: boolean;
  /** Why the last migration failed, per side (query-migrate's error-desc). */
  readonly sourceError: string | null;
  readonly destinationError: string | null;
  /** The current or last outgoing migration's figures. */
  readonly outgoing: SourceMigrationInfo | undefined;
  /** The incoming migration's figures, once it has started. */
  incomingInfo(): IncomingInfo | undefined;
  /** Hands a QMP command to the source statechart, once the monitor has checked its refusals. */
  sendToSource(command: MigrateCommand | MigrationActorCommand): void;
  /** Hands a QMP command to the destination statechart (migrate-pause), once the monitor has checked its refusals. */
  sendToDestination(command: IncomingActorCommand): void;
  /**
   * migrate-incoming: listens before it returns, so a bad URI or a busy
   * address is the command's error. `resolve` turns the URI, once the
   * command is allowed, into the one to listen at (a getfd name taken).
   */
  startIncoming(uri: string, exitOnError: boolean, resolve?: (uri: string) => string): Promise<void>;
  /** migrate-recover: checks, then listens at `uri` before it returns, as startIncoming does. */
  recoverIncoming(uri: string): Promise<void>;
  /** Capabilities or parameters changed outside a migration: start (or stop) the multifd threads ahead of one. */
  warmMultifd(): void;
  /** QEMU's autostart: whether the guest runs once an incoming migration has loaded it. */
  setAutostart(on: boolean): void;
  /** `quit`: close everything and exit with `code`. */
  shutdown(code: number): Promise<void>;
  warn(message: string): void;
  /** The messages between the instance's actors, worked out while someone listens. */
  readonly actorTrace: EventEmitter<{ message: [ActorMessage] }>;
  /** A device that cannot be migrated, a migration blocker (QEMU's refusals: --only-migratable, a migration under way). */
  addNonMigratableDevice(name: string): void;
  /** A failover primary, which a migration has the guest unplug (`unplugDelayMs`: how long its OS takes; null: never by itself). */
  addFailoverPrimary(name: string, unplugDelayMs: number | null): void;
  readonly failoverPrimaries: FailoverPrimaries;
  /** Devices that hold the switchover of a migration into this instance until ready (switchover-ack). */
  readonly switchoverAckDevices: SwitchoverAckDevices;
  /** Unplugs such a device (its blocker goes), or a failover primary. */
  removeDevice(name: string): void;
  /** A migration is under way on either side (from migrate or migrate-incoming until it is over): QEMU's migration yank instance. */
  readonly migrationYankable: boolean;
  /** The running outgoing migration's threads (query-migrationthreads); none when idle. */
  migrationThreads(): { name: string; tid: number }[];
  /** Ends the thread of multifd channel `channel` of the migration under way (either side), as a crash would; refused without --fault-injection. @throws QmpError */
  killMultifdThread(channel: number): void;
  /** yank: shuts every channel of the migration down (it then fails, or in postcopy pauses). */
  yankMigration(): void;
  /** The process's fd sets (add-fd, remove-fd, query-fdsets; `/dev/fdset/N` paths). */
  readonly fdSets: FdSets;
  /** TLS credentials and authorisation objects (object-add, object-del). */
  readonly objects: UserObjects;
  /** The vCPUs' dirty page rate limits (set-vcpu-dirty-limit and the like, query-migrate's dirty-limit figures). */
  readonly dirtyLimits: VcpuDirtyLimits;
  /** COLO mode, failover state and checkpoint figures. */
  readonly colo: ColoStatus;
  /** The guest's network (announce-self sends its announcements there). */
  readonly network: GuestNetwork;
  /** The guest's network link's counters, when it has one (--net-out). */
  readonly networkLink: NetLinkCounters | undefined;
  /** The QMP server the commands run in (its sessions, its events). */
  readonly qmp: QmpServer;
}
