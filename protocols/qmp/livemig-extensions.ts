/**
 * The names and shapes of livemig's QMP extensions, which the instance's
 * monitor serves and clients (the CLI, the visualizer) call. Named as QEMU
 * names downstream extensions (`__RFQDN_name`).
 */
import type { JsonObject } from './types.js';

export const EXTENSION_PREFIX = '__org.livemig_';

/** `{enable: bool}`: while on, ACTOR_MESSAGE events carry the messages between the instance's actors. */
export const TRACE_COMMAND = `${EXTENSION_PREFIX}trace`;
export const ACTOR_MESSAGE_EVENT = `${EXTENSION_PREFIX}ACTOR_MESSAGE`;
/** COLO figures: checkpoints, their totals and the last one (actors/monitor/colo-commands.ts). */
export const QUERY_COLO_COMMAND = `${EXTENSION_PREFIX}query-colo`;
/** A COLO checkpoint on one side: {checkpoint, mode, pages?, digest?} (digest with --colo-digests). */
export const COLO_CHECKPOINT_EVENT = `${EXTENSION_PREFIX}COLO_CHECKPOINT`;
/** `{dirty-rate?, bandwidth?, downtime-limit?, working-set?}`: whether precopy would converge, and which lever would make it. */
export const CONVERGENCE_COMMAND = `${EXTENSION_PREFIX}query-convergence`;

/** `{channel}`: ends the thread hosting that multifd channel of the migration under way, as a crash would; only with --fault-injection. */
export const KILL_MULTIFD_THREAD_COMMAND = `${EXTENSION_PREFIX}kill-multifd-thread`;

export type TraceSide = 'source' | 'destination';

/**
 * One message between actors, the data of an ACTOR_MESSAGE event. `kind`
 * is `event` for an event delivered to a statechart actor (XState
 * inspection; `from` is `monitor` when nothing sent it, i.e. a QMP
 * command), `message` for one between the actors that are not statecharts
 * (the return path, multifd), `transition` for a status change of a side's
 * statechart: `from` and `to` are then statuses and `type` the event that
 * made it, so a viewer can light the very edge
 * taken rather than guess one from the two statuses.
 * An `event` carries its `payload` (its fields besides `type`), a
 * `transition` the statechart's `context` as it entered the new status,
 * both as plain JSON cut to a few KB.
 */
export interface ActorMessage {
  side: TraceSide;
  from: string;
  to: string;
  type: string;
  kind: 'event' | 'message' | 'transition';
  payload?: JsonObject;
  context?: JsonObject;
}
