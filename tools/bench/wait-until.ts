/** Polls `check` every 50 ms until it returns true; past `timeoutMs`, throws naming what it waited for. */
export async function waitUntil(timeoutMs: number, what: string, check: () => Promise<boolean> | boolean): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
