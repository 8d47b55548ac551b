/**
 * The events the migration statecharts take and emit.
 *
 * Monitor commands are named after their QMP command and carry every fact
 * their guards need (run state, blockers, capabilities), read by the monitor
 * when the command arrives, so the guards stay pure functions of the event.
 * Reports from the actors that do the work are named after what happened.
 */
import type { MigrationStatus } from './status.js';

// ---- source: monitor commands ----

/** QMP `migrate`. */
export interface MigrateCommand {
  type: 'migrate';
  uri: string;
  /** `resume: true` asks to recover a paused postcopy migration. */
  resume: boolean;
  /** The guest's run state when the command arrived (`running`, `inmigrate`, `postmigrate`, …). */
  runState: string;
  /** Migration blocker messages, first first: non-migratable devices and explicit blockers. */
  blockers: readonly string[];
  /** The capabilities in force; the running migration keeps this set. */
  capabilities: Readonly<Record<string, boolean>>;
}

/** QMP `migrate_cancel`. */
export interface MigrateCancelCommand {
  type: 'migrate_cancel';
}

/** QMP `migrate-continue`: release a migration paused in `state`. */
export interface MigrateContinueCommand {
  type: 'migrate-continue';
  state: MigrationStatus;
}

/** The commands a running source migration passes on to its migration actor. */
export type MigrationActorCommand = MigrateCancelCommand | MigrateContinueCommand;

// ---- source: reports from the migration actor ----

/** Setup is done (header, setup sections sent): iteration starts. */
export interface SetupDoneEvent {
  type: 'setup.done';
}

/** Completion reached with `pause-before-switchover`: the guest is stopped, devices not yet saved. */
export interface SwitchoverPauseEvent {
  type: 'switchover.pause';
}

/** Everything sent and the destination's return path (if any) closed cleanly. */
export interface CompletedEvent {
  type: 'completed';
}

/** The migration failed; `error` becomes query-migrate's error-desc. */
export interface FailedEvent {
  type: 'failed';
  error: string;
}

/** Cleanup after a cancel is finished: channels closed, guest restored. */
export interface CancelDoneEvent {
  type: 'cancel.done';
}

export type MigrationActorReport =
  | SetupDoneEvent
  | SwitchoverPauseEvent
  | CompletedEvent
  | FailedEvent
  | CancelDoneEvent;

export type SourceEvent = MigrateCommand | MigrationActorCommand | MigrationActorReport;

// ---- destination ----

/** QMP `migrate-incoming`, or `--incoming URI` at start. */
export interface MigrateIncomingCommand {
  type: 'migrate-incoming';
  uri: string;
  /** The guest's run state: only `inmigrate` (started with `--incoming`) may take a migration. */
  runState: string;
}

/** The first bytes of the main channel arrived: loading starts. */
export interface StreamArrivedEvent {
  type: 'stream.arrived';
}

/** The whole stream is loaded and the guest handed over (started or left paused). */
export interface LoadDoneEvent {
  type: 'load.done';
}

export type IncomingActorReport = StreamArrivedEvent | LoadDoneEvent | FailedEvent;

export type DestinationEvent = MigrateIncomingCommand | IncomingActorReport;

// ---- emitted by both machines ----

/** Emitted on every entry into a status state: the source of MIGRATION events and query-migrate's status. */
export interface StatusEmitted {
  type: 'status';
  status: MigrationStatus;
}
