/** Thrown into the migration's awaits once it is cancelled. */
export class CancelledError extends Error {
  constructor() {
    super('migration cancelled');
  }
}

/**
 * Races a promise against an AbortSignal, so every wait of the migration
 * thread (drain, rate limit, pre-switchover, the return path) ends at once on
 * cancel or failure.
 */
export function abortable<T>(signal: AbortSignal, promise: Promise<T>): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (e) => {
        signal.removeEventListener('abort', onAbort);
        reject(e);
      },
    );
  });
}

export function sleep(signal: AbortSignal, ms: number): Promise<void> {
  return abortable(signal, new Promise((r) => setTimeout(r, ms)));
}
