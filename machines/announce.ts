/**
 * The one place a status is emitted. Each machine registers
 * `emitStatus: emit(statusEvent)` (through `migrationActions`) and lists
 * `announce(<status>)` as the entry action of every status state, so each
 * entry into a status emits `{ type: 'status', status, cause }` exactly once; the
 * service listens with `actor.on('status', ...)` for MIGRATION events and
 * query-migrate.
 */
import type { StatusEmitted } from './events.js';
import type { MigrationStatus } from './status.js';

/** The emitted event, built from the entry action's params and the event that entered the state. */
export const statusEvent = ({ event }: { event: { type: string } }, params: { status: MigrationStatus }): StatusEmitted => ({
  type: 'status',
  status: params.status,
  cause: event.type,
});

/** The entry action announcing `status`. */
export const announce = (status: MigrationStatus) => ({ type: 'emitStatus', params: { status } }) as const;
