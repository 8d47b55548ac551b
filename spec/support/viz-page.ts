/**
 * What the visualizer's browser tests share: where screenshots go, how a
 * chart's drawn figures are read, and a poll from the test side.
 */
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { BrowserContext, Page } from 'playwright-core';

/** Where the screenshots go: $LIVEMIG_ARTIFACTS, or livemig-viz under the temporary directory. */
export const SCREENSHOTS = process.env.LIVEMIG_ARTIFACTS ?? join(tmpdir(), 'livemig-viz');

/** How many points, bars or shaded bands a chart has drawn (its data- attributes). */
export const chartCount = (page: Page, id: string, attribute: 'points' | 'bars' | 'bands') =>
  page.locator(`#${id}`).getAttribute(`data-${attribute}`).then(Number);

/**
 * The visualizer's page at `url`, at 1600×1000, once it is ready and
 * connected to both instances; `errors` gathers what the page throws, for
 * the test to check at its end.
 */
export async function followingPage(context: BrowserContext, url: string): Promise<{ page: Page; errors: string[] }> {
  const page = await context.newPage();
  const errors: string[] = [];
  page.on('pageerror', (err) => errors.push(err.message));
  await page.setViewportSize({ width: 1600, height: 1000 });
  await page.goto(url);
  await page.waitForSelector('body[data-ready="true"]');
  await page.locator('.connection.connected[data-side="source"]').waitFor();
  await page.locator('.connection.connected[data-side="destination"]').waitFor();
  return { page, errors };
}

/** Polls from the test side: the page's Content-Security-Policy forbids the eval waitForFunction needs. */
export async function until(what: string, check: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`the page never showed ${what} within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
