/** Longest a migration may take before it is cancelled and counted as failed. */
const MIGRATION_TIMEOUT_MS = 180_000;
/** How long a cancelled migration may take to end before the run gives up on it. */
const CANCEL_GRACE_MS = 30_000;

/**
 * Bounds a migration: past the limit (`limitMs`, by default the bench's
 * deadline for any migration) `cancel` (migrate_cancel) ends it instead of
 * hanging; one that does not even end when cancelled is given up with an
 * error, and the run's teardown ends its processes.
 */
export async function withDeadline<T>(migration: Promise<T>, cancel: () => Promise<unknown>, limitMs = MIGRATION_TIMEOUT_MS): Promise<T> {
  let cancelTimer: NodeJS.Timeout | undefined;
  let giveUpTimer: NodeJS.Timeout | undefined;
  const stuck = new Promise<never>((_, reject) => {
    cancelTimer = setTimeout(() => void cancel().catch(() => {}), limitMs);
    giveUpTimer = setTimeout(
      () => reject(new Error(`the migration did not end within ${limitMs / 1000} s, nor when cancelled`)),
      limitMs + CANCEL_GRACE_MS,
    );
  });
  try {
    return await Promise.race([migration, stuck]);
  } finally {
    clearTimeout(cancelTimer);
    clearTimeout(giveUpTimer);
  }
}
