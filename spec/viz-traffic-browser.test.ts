/**
 * The visualizer's traffic views in headless Chromium, over real
 * migrations: postcopy's page requests and fault latency, a pause and its
 * recovery shaded on the timeline, and COLO's checkpoints one bar each.
 */
import { expect } from 'chai';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { startVizServer, type VizServer } from '../tools/viz/server.js';
import { ENSURE_CHROMIUM_MS, ensureChromium, launchChromium, type Chromium } from './support/chromium.js';
import { startColoPair, type ColoPair } from './support/colo-pair.js';
import { startInstance, stopAllInstances } from './support/instances.js';
import { EVENTS, boundTcpUri, waitForMigration } from './support/migration-driver.js';
import { POSTCOPY, abGuestArgs, migrateAndSwitch, postcopyLink, waitForStatuses, type AbGuest } from './support/postcopy-pair.js';
import { scratchDirPerTest } from './support/scratch-dir.js';
import { SCREENSHOTS, chartCount, followingPage, until } from './support/viz-page.js';

const MiB = 1 << 20;
const AB: AbGuest = { start: 1 * MiB, end: 49 * MiB, smp: 2 };
/** Precopy never ends alone; postcopy's background pages at 16 MB/s: the guest faults on the pages it touches first. */
const LINK = postcopyLink(64_000_000, 16_000_000);

describe('livemig viz: postcopy and COLO traffic in headless Chromium', function () {
  this.timeout(120_000);
  const scratch = scratchDirPerTest('livemig-viz-traffic-', stopAllInstances);
  let browser: Chromium | undefined;
  let viz: VizServer | undefined;
  let colo: ColoPair | undefined;

  before(async function () {
    this.timeout(ENSURE_CHROMIUM_MS);
    await ensureChromium();
    mkdirSync(SCREENSHOTS, { recursive: true });
  });

  afterEach(async () => {
    await browser?.close();
    await viz?.close();
    await colo?.sink.close();
    browser = viz = colo = undefined;
  });

  async function open(source: string, destination: string): Promise<{ page: Page; errors: string[] }> {
    viz = await startVizServer({ source, destination, port: 0, pollMs: 100 });
    browser = await launchChromium();
    return followingPage(browser.context, viz.url);
  }

  it('postcopy: page requests and fault latency over time, and a pause shaded until the recovery', async () => {
    const [destination, source] = await Promise.all([
      startInstance([...abGuestArgs('64M', AB, false), ...POSTCOPY, ...EVENTS, '--incoming', 'tcp:127.0.0.1:0'], { name: 'dst' }),
      startInstance([...abGuestArgs('64M', AB), ...POSTCOPY, ...EVENTS, ...LINK], { name: 'src' }),
    ]);
    const { page, errors } = await open(`unix:${source.socket}`, `unix:${destination.socket}`);
    expect(await page.locator('#postcopy-card').isVisible()).to.equal(false);
    await migrateAndSwitch(source, destination, await boundTcpUri(destination.qmp), AB);
    // At once: with every page the guest touches requested, postcopy is over in a second or two.
    await source.qmp.execute('migrate-pause');
    await waitForStatuses(source.qmp, ['postcopy-paused']);
    await waitForStatuses(destination.qmp, ['postcopy-paused']);
    await until('the pause shaded', async () => (await chartCount(page, 'chart-throughput', 'bands')) >= 1, 5_000);
    await until('page requests', async () => (await page.locator('#postcopy-card').isVisible()) && (await chartCount(page, 'chart-requests', 'points')) >= 1, 5_000);
    // The charts draw on the next animation frame, after their data- counts change: poll the drawing itself.
    await until('the pause labelled on the requests chart', async () =>
      (await page.locator('#chart-requests text.band-label').allTextContents()).includes('source postcopy-paused'), 5_000);
    await page.screenshot({ path: join(SCREENSHOTS, '9-postcopy-paused.png'), fullPage: true, animations: 'disabled' });

    await destination.qmp.execute('migrate-recover', { uri: 'tcp:127.0.0.1:0' });
    await source.qmp.execute('migrate', { uri: await boundTcpUri(destination.qmp), resume: true });
    expect((await waitForMigration(source.qmp, ['completed', 'failed'], 60_000)).status).to.equal('completed');
    await page.locator('#source-svg g.state.current#source-state-completed').waitFor({ timeout: 10_000 });
    await until('the pause closed', async () =>
      (await page.locator('#chart-throughput text.band-label').allTextContents()).some((l) => /^source paused [\d.]+ s, recovered$/.test(l)), 5_000);
    expect(await page.locator('#latency-card').isVisible()).to.equal(true);
    expect(await chartCount(page, 'chart-latency', 'points')).to.be.above(0);
    expect(await chartCount(page, 'chart-requests', 'points')).to.be.above(2);
    expect(await page.textContent('#requests-now')).to.match(/^[\d.]+k? (served|sent) so far$/);
    await page.screenshot({ path: join(SCREENSHOTS, '10-postcopy-recovered.png'), fullPage: true, animations: 'disabled' });
    expect(errors).to.deep.equal([]);
  });

  it('COLO: one bar per checkpoint the primary takes, with its time, reason and pages', async () => {
    colo = await startColoPair(scratch(), { delayMs: 200, digests: false });
    const { page, errors } = await open(`unix:${colo.primary.instance.socket}`, `unix:${colo.secondary.instance.socket}`);
    await until('three checkpoints', async () => (await page.locator('#colo-card').isVisible()) && (await chartCount(page, 'chart-checkpoints', 'bars')) >= 3, 30_000);
    expect(await page.textContent('#colo-now')).to.match(/^#\d+: [\d.]+ ms \(\w+\), [\d.]+k? pages$/);
    expect(await page.locator('#postcopy-card').isVisible()).to.equal(false);
    await page.screenshot({ path: join(SCREENSHOTS, '11-colo-checkpoints.png'), fullPage: true, animations: 'disabled' });
    expect(errors).to.deep.equal([]);
  });
});
