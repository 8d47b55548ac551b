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

/**
 * QMP `migrate-start-postcopy`: switch to postcopy at the next chance (once
 * the first pass is through). Only a request: the migration actor decides when.
 */
export interface MigrateStartPostcopyCommand {
  type: 'migrate-start-postcopy';
}

/**
 * QMP `migrate-pause`, on either side: break a postcopy migration's
 * connections off on purpose (in postcopy-active, or in a postcopy-recover
 * that hangs); both sides go to postcopy-paused.
 */
export interface MigratePauseCommand {
  type: 'migrate-pause';
}

/**
 * QMP `x-colo-lost-heartbeat`, on either side in `colo`: the other side is
 * gone; fail over (the primary drops the secondary, the secondary takes
 * over from the last checkpoint).
 */
export interface XColoLostHeartbeatCommand {
  type: 'x-colo-lost-heartbeat';
}

/**
 * A COLO checkpoint now, on the primary: livemig's `colo-checkpoint`, and
 * what setting `x-checkpoint-delay` does in QEMU.
 */
export interface ColoCheckpointCommand {
  type: 'colo-checkpoint';
}

/**
 * The statechart's answer to a `switchover.request`: whether the migration
 * may switch over now (the switchover-ack gate).
 */
export interface SwitchoverAnswerCommand {
  type: 'switchover.answer';
  allowed: boolean;
}

/** The commands a running source migration passes on to its migration actor (`migrate` only with resume). */
export type MigrationActorCommand =
  | MigrateCancelCommand
  | MigrateContinueCommand
  | MigrateStartPostcopyCommand
  | MigratePauseCommand
  | MigrateCommand
  | XColoLostHeartbeatCommand
  | ColoCheckpointCommand;

/** Everything the migration actor receives: the commands, and the statechart's answers. */
export type MigrationActorMessage = MigrationActorCommand | SwitchoverAnswerCommand;

// ---- source: reports from the migration actor ----

/**
 * Setup found failover primary devices still plugged into the guest: it asked
 * the guest to unplug them and waits (wait-unplug) until it has.
 */
export interface UnplugWaitEvent {
  type: 'unplug.wait';
}

/** The destination's SWITCHOVER_ACK came in on the return path: its devices are ready for the switchover. */
export interface SwitchoverAckedEvent {
  type: 'switchover.acked';
}

/**
 * Precopy has converged: may the migration switch over? The statechart
 * answers with `switchover.answer` (QEMU's migration_can_switchover).
 */
export interface SwitchoverRequestEvent {
  type: 'switchover.request';
  /** The guest runs: a stopped guest needs no acknowledgement to switch over. */
  guestRunning: boolean;
}

/** Setup is done (header, setup sections sent, failover primaries unplugged): iteration starts. */
export interface SetupDoneEvent {
  type: 'setup.done';
}

/** Completion reached with `pause-before-switchover`: the guest is stopped, devices not yet saved. */
export interface SwitchoverPauseEvent {
  type: 'switchover.pause';
  /** The guest stopped to switch to postcopy, not to complete by precopy. */
  postcopy?: boolean;
}

/** Everything sent and the destination's return path (if any) closed cleanly. */
export interface CompletedEvent {
  type: 'completed';
}

/**
 * The switch to postcopy has begun (the guest stops next, then the discard
 * list and the package go): from here the destination will run the guest.
 */
export interface PostcopyStartEvent {
  type: 'postcopy.start';
}

/**
 * A channel broke after the point of no return: the migration waits for
 * recovery instead of failing (DESIGN rule 5). `error` says what broke.
 */
export interface PostcopyPausedEvent {
  type: 'postcopy.paused';
  error: string;
}

/** Recovery of a paused postcopy migration began: the new main connection is up. */
export interface PostcopyRecoverEvent {
  type: 'postcopy.recover';
}

/** The recovery handshake is through (POSTCOPY_RESUME answered by RESUME_ACK): postcopy goes on. */
export interface PostcopyResumedEvent {
  type: 'postcopy.resumed';
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

/**
 * A cancel came after the whole stream was sent, and the destination then
 * confirmed it loaded everything (its SHUT): the guest is there, so the
 * migration completed after all rather than restart a second copy here.
 */
export interface CancelTooLateEvent {
  type: 'cancel.too-late';
}

/** x-colo: the first migration's stream is through; checkpointing begins (both sides). */
export interface ColoStartEvent {
  type: 'colo.start';
}

/** The COLO failover is through: this side runs the guest alone (both sides). */
export interface ColoFailoverEvent {
  type: 'colo.failover';
}

export type MigrationActorReport =
  | UnplugWaitEvent
  | SwitchoverAckedEvent
  | SwitchoverRequestEvent
  | SetupDoneEvent
  | SwitchoverPauseEvent
  | PostcopyStartEvent
  | PostcopyPausedEvent
  | PostcopyRecoverEvent
  | PostcopyResumedEvent
  | CompletedEvent
  | FailedEvent
  | CancelDoneEvent
  | CancelTooLateEvent
  | ColoStartEvent
  | ColoFailoverEvent;

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

/** POSTCOPY_LISTEN arrived: page requests may go out, the guest runs on the destination once POSTCOPY_RUN is in. */
export interface PostcopyListenEvent {
  type: 'postcopy.listen';
}

/** The whole stream is loaded and the guest handed over (started or left paused). */
export interface LoadDoneEvent {
  type: 'load.done';
}

/** QMP `migrate-recover`: a paused destination listens at `uri` for the source to reconnect. */
export interface MigrateRecoverCommand {
  type: 'migrate-recover';
  uri: string;
}

/** The commands a running incoming migration passes on to its actor. */
export type IncomingActorCommand = MigratePauseCommand | MigrateRecoverCommand | XColoLostHeartbeatCommand;

export type IncomingActorReport =
  | StreamArrivedEvent
  | PostcopyListenEvent
  | PostcopyPausedEvent
  | PostcopyRecoverEvent
  | PostcopyResumedEvent
  | LoadDoneEvent
  | FailedEvent
  | ColoStartEvent
  | ColoFailoverEvent;

export type DestinationEvent = MigrateIncomingCommand | IncomingActorCommand | IncomingActorReport;

// ---- emitted by both machines ----

/** Emitted on every entry into a status state: the source of MIGRATION events and query-migrate's status. */
export interface StatusEmitted {
  type: 'status';
  status: MigrationStatus;
  /** The event whose transition entered the status (XState's own names for its internal ones). */
  cause: string;
}
