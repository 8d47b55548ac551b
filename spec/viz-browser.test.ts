import { expect } from 'chai';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { startVizServer, type VizServer } from '../tools/viz/server.js';
import { parseTrace } from '../tools/viz/trace-file.js';
import { ENSURE_CHROMIUM_MS, ensureChromium, launchChromium, type Chromium } from './support/chromium.js';
import { startInstance, stopAllInstances } from './support/instances.js';
import { SCREENSHOTS, chartCount, followingPage, until } from './support/viz-page.js';

/**
 * Records, in the page, every state each chart highlights as current, in
 * order: a status held for a few milliseconds is seen too.
 */
const RECORD_HIGHLIGHTS = `(() => {
  const seen = { source: [], destination: [] };
  const record = () => {
    for (const side of ['source', 'destination']) {
      const id = document.querySelector('#' + side + '-svg g.state.current')?.id ?? null;
      const state = id === null ? null : id.slice((side + '-state-').length);
      if (state !== null && seen[side][seen[side].length - 1] !== state) seen[side].push(state);
    }
  };
  new MutationObserver(record).observe(document.querySelector('.statecharts'), { subtree: true, attributes: true, attributeFilter: ['class'] });
  record();
  window.__highlights = seen;
})()`;

const highlighted = (page: Page, side: string) =>
  page.locator(`#${side}-svg g.state.current`).getAttribute('id', { timeout: 1000 }).then((id) => id?.replace(`${side}-state-`, ''));

/** Moves the time-travel slider to `at` (ms since the epoch), as a person dragging it would. */
async function travelTo(page: Page, at: number): Promise<void> {
  const start = Number(await page.locator('#scrub').getAttribute('data-start'));
  await page.locator('#scrub').fill(String(Math.round(at - start)));
  await page.locator('body[data-travel="past"]').waitFor({ timeout: 2_000 });
}

describe('livemig viz in headless Chromium', function () {
  this.timeout(90_000);
  let browser: Chromium | undefined;
  let viz: VizServer | undefined;

  before(async function () {
    this.timeout(ENSURE_CHROMIUM_MS);
    await ensureChromium();
    mkdirSync(SCREENSHOTS, { recursive: true });
  });

  afterEach(async () => {
    await browser?.close();
    await viz?.close();
    browser = undefined;
    viz = undefined;
    await stopAllInstances();
  });

  it('highlights each status of a real migration in turn until completed, and fills the charts', async () => {
    // At 16 MiB/s the 16 MiB the ab guest keeps dirtying never fits the 300 ms downtime limit:
    // the migration iterates (about 0.7 s a pass) until the test lifts the limit.
    const [dst, src] = await Promise.all([
      startInstance(['--ram', '256M', '--incoming', 'tcp:127.0.0.1:0', '--cap', 'events'], { name: 'dst' }),
      startInstance(['--ram', '256M', '--workload', 'ab', '--ab-end', '17M', '--cap', 'events', '--param', 'max-bandwidth=16M'], { name: 'src' }),
    ]);
    viz = await startVizServer({ source: `unix:${src.socket}`, destination: `unix:${dst.socket}`, port: 0, pollMs: 200 });
    browser = await launchChromium();
    const page = await browser.context.newPage();
    const pageErrors: string[] = [];
    const foreignRequests: string[] = [];
    page.on('pageerror', (err) => pageErrors.push(err.message));
    page.on('request', (req) => {
      if (!req.url().startsWith(viz!.url)) foreignRequests.push(req.url());
    });
    await page.goto(viz.url);
    await page.waitForSelector('body[data-ready="true"]');
    await page.evaluate(RECORD_HIGHLIGHTS);
    await page.locator('.connection.connected[data-side="source"]').waitFor();
    await page.locator('.connection.connected[data-side="destination"]').waitFor();
    await page.locator('#destination-svg g.state.current').waitFor();
    expect(await highlighted(page, 'source')).to.equal('none');
    expect(await highlighted(page, 'destination')).to.equal('setup');
    await page.screenshot({ path: join(SCREENSHOTS, '1-before-migrate.png'), fullPage: true, animations: 'disabled' });

    const info = await dst.qmp.execute<{ 'socket-address': { port: string }[] }>('query-migrate');
    await src.qmp.execute('migrate', { uri: `tcp:127.0.0.1:${info['socket-address'][0]!.port}` });

    await page.locator('#source-svg g.state.current#source-state-active').waitFor({ timeout: 10_000 });
    // Three dirty syncs on the chart, then let it converge.
    await until('three dirty-rate bars', async () => (await chartCount(page, 'chart-dirty', 'bars')) >= 3, 20_000);
    await page.screenshot({ path: join(SCREENSHOTS, '2-during-precopy.png'), fullPage: true, animations: 'disabled' });
    expect(await highlighted(page, 'source')).to.equal('active');
    // A moment both sides were active, to travel back to once the migration is over.
    await page.locator('#destination-svg g.state.current#destination-state-active').waitFor({ timeout: 5_000 });
    const midway = Date.now();
    const pointsMidway = await chartCount(page, 'chart-throughput', 'points');
    await src.qmp.execute('migrate-set-parameters', { 'max-bandwidth': 100_000_000_000 });

    await page.locator('#source-svg g.state.current#source-state-completed').waitFor({ timeout: 30_000 });
    await page.locator('#destination-svg g.state.current#destination-state-completed').waitFor({ timeout: 10_000 });
    // The sample after completion closes the lines at zero.
    await page.locator('#remaining-now', { hasText: 'completed' }).waitFor({ timeout: 5_000 });
    await page.screenshot({ path: join(SCREENSHOTS, '3-completed.png'), fullPage: true, animations: 'disabled' });

    const seen = (await page.evaluate('window.__highlights')) as { source: string[]; destination: string[] };
    // setup lasts a few milliseconds on the source: the page may show it or go straight on.
    expect(seen.source.filter((s) => s !== 'setup')).to.deep.equal(['none', 'active', 'completed']);
    expect(['none', 'setup', 'active', 'completed']).to.include.members(seen.source);
    expect(seen.destination).to.deep.equal(['setup', 'active', 'completed']);
    const rows = await page.locator('#transitions tr.source td:nth-child(3)').allTextContents();
    expect(rows.at(-1)).to.equal('active → completed');
    expect(rows.filter((r) => r.startsWith('active'))).to.have.length(1);
    expect(await chartCount(page, 'chart-throughput', 'points')).to.be.greaterThan(5);
    expect(await chartCount(page, 'chart-remaining', 'points')).to.be.greaterThan(3);
    expect(await chartCount(page, 'chart-dirty', 'bars')).to.be.at.least(3);
    // The threshold the remaining bytes had to fall under, dashed, and where max-bandwidth was lifted.
    expect(await page.locator('#chart-remaining polyline[stroke-dasharray]').count()).to.be.at.least(1);
    expect(await page.locator('#chart-remaining text.mark-label').allTextContents()).to.deep.equal(['max-bandwidth 16 MiB/s → 93.1 GiB/s']);
    expect(await page.locator('#messages .message').count()).to.be.greaterThan(0);
    // One lane per actor per process: each side's return path has its own.
    expect(await page.locator('#messages .lane').allTextContents()).to.include.members(['return-path (src)', 'return-path (dst)']);
    expect(await page.locator('#source-svg g.transition.taken text').allTextContents()).to.deep.equal(['completed']);
    expect(await page.locator('#destination-svg g.transition.taken text').allTextContents()).to.deep.equal(['load.done']);

    // Time travel: back to the moment both were active, both charts as they were then, the later bandwidth change not yet marked.
    await travelTo(page, midway);
    expect(await highlighted(page, 'source')).to.equal('active');
    expect(await highlighted(page, 'destination')).to.equal('active');
    expect(await page.locator('#source-svg g.state.visited#source-state-completed').count()).to.equal(0);
    const pointsThen = await chartCount(page, 'chart-throughput', 'points');
    expect(pointsThen).to.be.within(Math.max(1, pointsMidway - 12), pointsMidway + 12);
    expect(await page.locator('#chart-remaining text.mark-label').count()).to.equal(0);
    expect(await page.textContent('#scrub-time')).to.match(/ s into migration #1 · newer updates held back$/);
    await page.screenshot({ path: join(SCREENSHOTS, '3b-time-travel-midway.png'), fullPage: true, animations: 'disabled' });
    await page.click('#follow-live');
    await page.locator('#source-svg g.state.current#source-state-completed').waitFor({ timeout: 5_000 });
    expect(await chartCount(page, 'chart-throughput', 'points')).to.be.greaterThan(pointsThen);

    // Inspection: a status change shows the statechart's context as it entered the status; an event its payload.
    await page.locator('#transitions tr.source', { hasText: 'active → completed' }).click();
    expect(await page.textContent('#inspect-title')).to.match(/^source: active → completed at [\d:.]+, by event completed$/);
    const sections = await page.locator('#inspect-body section').allTextContents();
    expect(sections[0]).to.match(/^statechart context as it entered the status\{[^]*"error": null/);
    expect(sections[1]).to.match(/^query-migrate at that moment\{[^]*"status": "(active|device|completed)"/);
    await page.locator('#messages .message.kind-event', { hasText: 'migrate' }).first().click();
    expect(await page.textContent('#inspect-title')).to.match(/^source: monitor → source: migrate \(event\)/);
    expect((await page.locator('#inspect-body section').allTextContents())[0]).to.contain(`"uri": "tcp:127.0.0.1:${info['socket-address'][0]!.port}"`);
    await page.screenshot({ path: join(SCREENSHOTS, '3c-inspect.png'), fullPage: true, animations: 'disabled' });

    // The same migration from a saved trace, served by a replaying server: scrubbed back, it shows the same moment.
    const trace = await (await fetch(`${viz.url}api/trace`)).text();
    const replayed = await startVizServer({ port: 0, replay: { trace: parseTrace(trace, 'saved.json'), name: 'saved.json' } });
    try {
      const again = await browser.context.newPage();
      await again.goto(replayed.url);
      await again.waitForSelector('body[data-ready="true"][data-mode="live"]');
      await again.locator('#source-svg g.state.current#source-state-completed').waitFor({ timeout: 5_000 });
      expect(await again.locator('.connection.replayed').allTextContents()).to.deep.equal([
        `source unix:${src.socket}: replayed`, `destination unix:${dst.socket}: replayed`,
      ]);
      await travelTo(again, midway);
      expect(await highlighted(again, 'source')).to.equal('active');
      expect(await highlighted(again, 'destination')).to.equal('active');
      await again.screenshot({ path: join(SCREENSHOTS, '3d-replayed-trace-midway.png'), fullPage: true, animations: 'disabled' });
    } finally {
      await replayed.close();
    }
    expect(pageErrors).to.deep.equal([]);
    expect(foreignRequests).to.deep.equal([]);
    console.log(`      highlighted: source ${seen.source.join(' → ')}; destination ${seen.destination.join(' → ')}; screenshots in ${SCREENSHOTS}`);
  });

  it('after a cancel lights the edge the traced event took, shows the destination\'s error, and starts the next migration afresh', async () => {
    const [dst, src] = await Promise.all([
      startInstance(['--ram', '256M', '--incoming', 'defer', '--cap', 'events'], { name: 'dst' }),
      startInstance(['--ram', '256M', '--workload', 'ab', '--ab-end', '17M', '--cap', 'events', '--param', 'max-bandwidth=16M'], { name: 'src' }),
    ]);
    // exit-on-error off: the failed destination stays up for the page to follow.
    await dst.qmp.execute('migrate-incoming', { uri: 'tcp:127.0.0.1:0', 'exit-on-error': false });
    viz = await startVizServer({ source: `unix:${src.socket}`, destination: `unix:${dst.socket}`, port: 0, pollMs: 100 });
    browser = await launchChromium();
    const { page, errors: pageErrors } = await followingPage(browser.context, viz.url);

    const info = await dst.qmp.execute<{ 'socket-address': { port: string }[] }>('query-migrate');
    await src.qmp.execute('migrate', { uri: `tcp:127.0.0.1:${info['socket-address'][0]!.port}` });
    await page.locator('#source-svg g.state.current#source-state-active').waitFor({ timeout: 10_000 });
    await until('a dirty-rate bar', async () => (await chartCount(page, 'chart-dirty', 'bars')) >= 1, 20_000);
    await src.qmp.execute('migrate_cancel');
    await page.locator('#source-svg g.state.current#source-state-cancelled').waitFor({ timeout: 10_000 });
    await page.locator('#destination-svg g.state.current#destination-state-failed').waitFor({ timeout: 10_000 });
    // The edge of the event the statechart took (cancel.done), not the first that joins cancelling to cancelled.
    await until('the traced cancel edge', async () =>
      (await page.locator('#source-svg g.transition.taken text').allTextContents()).join(' ') === 'cancel.done', 5_000);
    const destinationError = page.locator('#destination-error');
    await destinationError.waitFor({ timeout: 5_000 });
    expect(await destinationError.textContent()).to.match(/^load of migration failed: /);
    const rows = await page.locator('#transitions tr.source td:nth-child(4)').allTextContents();
    expect(rows.at(-1)).to.equal('cancel.done');
    await page.screenshot({ path: join(SCREENSHOTS, '5-cancelled-1600x1000.png'), fullPage: true, animations: 'disabled' });
    // A precopy migration shows no postcopy traffic.
    expect(await page.locator('#postcopy-card').isVisible()).to.equal(false);
    await page.setViewportSize({ width: 1280, height: 800 });
    // Every lane of the message view in sight at 1280 px: the lanes share the card's width out.
    await until('the last lane inside the message card', async () => {
      const card = (await page.locator('#messages').boundingBox())!;
      const last = (await page.locator('#messages .lane').last().boundingBox())!;
      return last.x + last.width <= card.x + card.width + 1;
    }, 2_000);
    await page.screenshot({ path: join(SCREENSHOTS, '6-cancelled-1280x800.png'), fullPage: true, animations: 'disabled' });

    // The next migration (a fast one, to an instance the page does not follow) starts its own view: nothing of the cancelled one stays.
    const next = await startInstance(['--ram', '256M', '--incoming', 'tcp:127.0.0.1:0'], { name: 'next' });
    const nextInfo = await next.qmp.execute<{ 'socket-address': { port: string }[] }>('query-migrate');
    await src.qmp.execute('migrate-set-parameters', { 'max-bandwidth': 100_000_000_000 });
    await src.qmp.execute('migrate', { uri: `tcp:127.0.0.1:${nextInfo['socket-address'][0]!.port}` });
    await page.locator('#source-svg g.state.current#source-state-completed').waitFor({ timeout: 20_000 });
    expect(await page.locator('#source-svg g.state.visited#source-state-cancelled').count()).to.equal(0);
    expect(await page.locator('#source-svg g.state.visited#source-state-cancelling').count()).to.equal(0);
    expect(await page.locator('#transitions tr.source.restart td:nth-child(3)').allTextContents()).to.deep.equal(['a new migration', 'a new migration']);
    expect(await page.locator('#source-error').isVisible()).to.equal(false);
    // Even a migration this fast has its shape on the charts.
    expect(await chartCount(page, 'chart-throughput', 'points')).to.be.at.least(2);
    await page.screenshot({ path: join(SCREENSHOTS, '7-fast-after-cancel.png'), fullPage: true, animations: 'disabled' });

    // The cancelled migration is kept in the list, and reopens as it ended: cancelled, with the destination's error.
    expect(await page.locator('#migration-pick option').allTextContents()).to.have.length(2);
    await page.selectOption('#migration-pick', '1');
    await page.locator('#source-svg g.state.current#source-state-cancelled').waitFor({ timeout: 5_000 });
    expect(await page.locator('#destination-error').textContent()).to.match(/^load of migration failed: /);
    expect(await page.locator('#source-svg g.transition.taken text').allTextContents()).to.deep.equal(['cancel.done']);
    // Nothing of the next migration: its migrate command is not among the messages.
    expect(await page.locator('#messages .message svg > text').filter({ hasText: /^migrate$/ }).count()).to.equal(1);
    await page.screenshot({ path: join(SCREENSHOTS, '8-reopened-cancelled.png'), fullPage: true, animations: 'disabled' });
    expect(pageErrors).to.deep.equal([]);
  });

  it('explains in the page why a guard refuses an event, and follows an accepted one', async () => {
    viz = await startVizServer({ port: 0 });
    browser = await launchChromium();
    const page = await browser.context.newPage();
    await page.goto(viz.url);
    await page.waitForSelector('body[data-ready="true"][data-mode="explore"]');
    await page.selectOption('#explore-event', 'migrate');
    await page.selectOption('#explore-preset', { label: 'guest waiting for an incoming migration' });
    await page.click('#explore-send');
    await page.locator('#explore-result.refused').waitFor();
    expect(await page.textContent('#explore-result')).to.equal(
      "'migrate' refused in none by [migrateAllowed]: Guest is waiting for an incoming migration",
    );
    expect(await page.locator('#source-svg g.transition.refused text').allTextContents()).to.deep.equal(['migrate', '[migrateAllowed]']);
    expect(await highlighted(page, 'source')).to.equal('none');

    await page.selectOption('#explore-preset', { label: 'running guest' });
    await page.click('#explore-send');
    await page.locator('#explore-result.taken').waitFor();
    expect(await highlighted(page, 'source')).to.equal('setup');
    expect(await page.locator('#source-svg g.transition.taken text').allTextContents()).to.deep.equal(['migrate', '[migrateAllowed]']);

    // The return path's chart is drawn in Explore only (it reports no status), and explored like the others.
    expect(await page.locator('#return-path-svg g.state.current').getAttribute('id')).to.equal('return-path-state-return-path.opening');
    await page.selectOption('#explore-side', 'return-path');
    await page.selectOption('#explore-event', 'open');
    await page.click('#explore-send');
    // The result of the step before is still shown: wait for this one's.
    await page.locator('#explore-result.taken', { hasText: 'opening —open→ open' }).waitFor();
    expect(await page.textContent('#explore-result')).to.equal('opening —open→ open (transition return-path-t0)');
    expect(await page.textContent('#return-path-status')).to.equal('open');
    await page.screenshot({ path: join(SCREENSHOTS, '4-explore.png'), fullPage: true, animations: 'disabled' });

    // Hovering a state lights its paths out (its parent's too) and in, and says what it does.
    await page.hover('#source-state-active');
    expect(await page.locator('#source-svg g.transition.hover-out').count()).to.be.above(3);
    expect(await page.locator('#source-svg g.transition.hover-in text').allTextContents()).to.include.members(['setup.done']);
    expect(await page.textContent('[data-side="source"] .hover-info')).to.match(
      /^active · entry: emitStatus · runs under migration \(invoked by running\) · \d+ transitions out \(incl\. its parents'\), \d+ in$/,
    );
    await page.mouse.move(0, 0);
    expect(await page.locator('#source-svg .hover-out').count()).to.equal(0);

    // Pan and zoom: the buttons zoom, a drag pans (and is no pick), fit shows the whole chart again.
    const chart = page.locator('#source-svg svg');
    const whole = await chart.getAttribute('viewBox');
    await page.click('[data-side="source"] [data-zoom="in"]');
    await page.click('[data-side="source"] [data-zoom="in"]');
    expect(await chart.getAttribute('data-zoom')).to.equal('1.56');
    const zoomed = (await chart.getAttribute('viewBox'))!.split(' ').map(Number);
    const box = (await chart.boundingBox())!;
    await page.mouse.move(box.x + box.width / 2, box.y + box.height / 2);
    await page.mouse.down();
    await page.mouse.move(box.x + box.width / 2 - 100, box.y + box.height / 2 - 40, { steps: 5 });
    await page.mouse.up();
    const panned = (await chart.getAttribute('viewBox'))!.split(' ').map(Number);
    expect(panned[0]).to.be.greaterThan(zoomed[0]!);
    expect(panned[1]).to.be.greaterThan(zoomed[1]!);
    expect(panned.slice(2)).to.deep.equal(zoomed.slice(2));
    expect(await highlighted(page, 'source')).to.equal('setup');
    await page.click('[data-side="source"] [data-zoom="fit"]');
    expect(await chart.getAttribute('viewBox')).to.equal(whole);
    await page.click('[data-mode-button="live"]');
    expect(await page.locator('article[data-side="return-path"]').isVisible()).to.equal(false);
    expect(await page.locator('article[data-side="source"]').isVisible()).to.equal(true);
  });
});
