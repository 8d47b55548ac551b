/**
 * The actions both migration statecharts register: announcing a status and
 * recording why the migration failed. Each machine spreads
 * `migrationActions<ItsContext, ItsEvent>()` into its `setup({ actions })`
 * beside its own actions. Pure, like the machines: no I/O.
 *
 * Built outside `setup`, so the type arguments `setup` would infer are given
 * here; `setup` still checks every action against the machine's own context,
 * events and emitted events, and every action name the machine refers to.
 */
import { assign, emit } from 'xstate';
import { actorErrorText } from './actor-error.js';
import { statusEvent } from './announce.js';
import type { DestinationEvent, SourceEvent, StatusEmitted } from './events.js';
import type { MigrationStatus } from './status.js';

/** What the shared actions need of a machine's context. */
export interface MigrationErrorContext {
  /** Why the migration failed (query-migrate's error-desc on the source). */
  error: string | null;
}

/**
 * The shared actions, typed for one machine.
 *
 * The error actions return the whole context with `error` replaced, which
 * `assign` merges into the same context as `{ error }` alone would: TypeScript
 * cannot check a bare `{ error }` against the context type parameter.
 *
 * @example
 * setup({
 *   types: { context: {} as SourceContext, events: {} as SourceEvent, emitted: {} as StatusEmitted },
 *   actions: { ...migrationActions<SourceContext, SourceEvent>(), startMigration: assign(...) },
 * });
 */
export function migrationActions<TContext extends MigrationErrorContext, TEvent extends SourceEvent | DestinationEvent>() {
  return {
    /** The action `announce(<status>)` names: emits `{ type: 'status', status }`. */
    emitStatus: emit<TContext, TEvent, { status: MigrationStatus }, TEvent, StatusEmitted>(statusEvent),
    /** A `failed` or `postcopy.paused` report: its error becomes the migration's. */
    recordError: assign<TContext, TEvent, undefined, TEvent, never>(({ event, context }) => ({
      ...context,
      error: event.type === 'failed' || event.type === 'postcopy.paused' ? event.error : context.error,
    })),
    /** The invoked actor threw: its message becomes the migration's error. */
    recordActorError: assign<TContext, TEvent, undefined, TEvent, never>(({ event, context }) => ({
      ...context,
      error: actorErrorText(event),
    })),
  };
}
