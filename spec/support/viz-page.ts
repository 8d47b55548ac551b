/**
 * What the visualizer's browser tests share: where screenshots go, how a
 * chart's drawn figures are read, and a poll from the test side.
 */
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Page } from 'playwright-core';

/** Where the screenshots go: $LIVEMIG_ARTIFACTS, or livemig-viz under the temporary directory. */
export const SCREENSHOTS = process.env.LIVEMIG_ARTIFACTS ?? join(tmpdir(), 'livemig-viz');

/** How many points, bars or shaded bands a chart has drawn (its data- attributes). */
export const chartCount = (page: Page, id: string, attribute: 'points' | 'bars' | 'bands') =>
  page.locator(`#${id}`).getAttribute(`data-${attribute}`).then(Number);

/** Polls from the test side: the page's Content-Security-Policy forbids the eval waitForFunction needs. */
export async function until(what: string, check: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`the page never showed ${what} within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
