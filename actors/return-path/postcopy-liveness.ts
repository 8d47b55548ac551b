/**
 * How a postcopy migration tells a stalled link (a black hole: nothing
 * closes, nothing passes) from a slow one. QEMU waits on such a link until
 * an orchestrator runs migrate-pause; livemig pauses by itself, as if the
 * connection had broken, once nothing has moved for POSTCOPY_STALL_MS:
 * - the source keeps its stream alive with a PING every
 *   POSTCOPY_KEEPALIVE_MS (however low max-postcopy-bandwidth is), and
 *   pauses when a write has waited that long for the socket to drain;
 * - the destination pauses when nothing at all has come from the source
 *   for that long.
 * A slow link still moves bytes, so neither side mistakes it for a stall.
 */
export const POSTCOPY_STALL_MS = 10_000;
export const POSTCOPY_KEEPALIVE_MS = 1_000;
/** The PING value of a keepalive (QEMU's own PINGs use 1-4 at setup and at the switch; 6 closes the package). */
export const KEEPALIVE_PING = 5;
