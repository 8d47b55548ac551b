/** Longest a migration may take before it is cancelled and counted as failed. */
const MIGRATION_TIMEOUT_MS = 180_000;
/** How long a cancelled migration may take to end before the run gives up on it. */
const CANCEL_GRACE_MS = 30_000;

/**
 * Bounds a migration: past the limit `cancel` (migrate_cancel) ends it as
 * failed instead of hanging; one that does not even end when cancelled is
 * given up with an error, and the run's teardown ends its processes.
 */
export async function withDeadline<T>(migration: Promise<T>, cancel: () => Promise<unknown>): Promise<T> {
  let cancelTimer: NodeJS.Timeout | undefined;
  let giveUpTimer: NodeJS.Timeout | undefined;
  const stuck = new Promise<never>((_, reject) => {
    cancelTimer = setTimeout(() => void cancel().catch(() => {}), MIGRATION_TIMEOUT_MS);
    giveUpTimer = setTimeout(
      () => reject(new Error(`the migration did not end within ${MIGRATION_TIMEOUT_MS / 1000} s, nor when cancelled`)),
      MIGRATION_TIMEOUT_MS + CANCEL_GRACE_MS,
    );
  });
  try {
    return await Promise.race([migration, stuck]);
  } finally {
    clearTimeout(cancelTimer);
    clearTimeout(giveUpTimer);
  }
}
