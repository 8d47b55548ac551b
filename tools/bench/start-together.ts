/**
 * Starting a run's processes at once (a source and a destination), so that
 * a failure to start one still leaves the other to be torn down.
 */

/**
 * Waits for every start; pushes each process that did start onto `started`
 * (which the run's teardown ends), then throws the first failure, if any.
 */
export async function startTogether<T>(starts: Promise<T>[], started: T[]): Promise<void> {
  const settled = await Promise.allSettled(starts);
  for (const s of settled) if (s.status === 'fulfilled') started.push(s.value);
  for (const s of settled) if (s.status === 'rejected') throw s.reason;
}
