/**
 * Real headless Chromium for browser tests: Debian's `chromium` package,
 * driven by playwright-core (which brings no browser of its own). When the
 * browser is missing, `ensureChromium()` installs it with apt-get (as root,
 * each step bounded), so the tests set up what they need on a fresh machine
 * or CI runner.
 *
 * @example
 * await ensureChromium();
 * const browser = await launchChromium();
 * const page = await browser.context.newPage();
 * await page.goto(url);
 * await browser.close();
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext } from 'playwright-core';

export const CHROMIUM = '/usr/bin/chromium';

/** Bounds of the install steps: a fresh machine downloads ~120 MB. */
const APT_UPDATE_MS = 3 * 60_000;
const APT_INSTALL_MS = 8 * 60_000;
/** What a suite's `before` hook should allow for ensureChromium(). */
export const ENSURE_CHROMIUM_MS = APT_UPDATE_MS + APT_INSTALL_MS + 30_000;

/**
 * Flags that work in containers and CI: no sandbox (often no user
 * namespaces), no GPU, and none of Chromium's own network traffic (updates,
 * sync, QUIC probes), so a test sees only the requests its page makes.
 * Playwright adds --headless itself; each launch gets a fresh profile.
 */
const FLAGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

export class ChromiumSetupError extends Error {
  override readonly name = 'ChromiumSetupError';
  readonly code = 'CHROMIUM_UNAVAILABLE';
}

/** Installs Debian's chromium when /usr/bin/chromium is missing; resolves with its path. */
export async function ensureChromium(): Promise<string> {
  if (existsSync(CHROMIUM)) return CHROMIUM;
  if (process.getuid?.() !== 0) {
    throw new ChromiumSetupError(`${CHROMIUM} is missing and installing it needs root: run 'apt-get install -y chromium'`);
  }
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  await run('apt-get', ['update'], env, APT_UPDATE_MS);
  await run('apt-get', ['install', '-y', 'chromium'], env, APT_INSTALL_MS);
  if (!existsSync(CHROMIUM)) throw new ChromiumSetupError(`apt-get installed chromium but ${CHROMIUM} is still missing`);
  return CHROMIUM;
}

export interface Chromium {
  readonly context: BrowserContext;
  /** Closes the browser and removes its profile. */
  close(): Promise<void>;
}

/** Launches headless Chromium with a fresh profile (its --user-data-dir). */
export async function launchChromium(viewport = { width: 1600, height: 1000 }): Promise<Chromium> {
  const profile = mkdtempSync(join(tmpdir(), 'livemig-chromium-'));
  try {
    const context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: FLAGS,
      viewport,
      timeout: 30_000,
    });
    return {
      context,
      async close() {
        await context.close();
        rmSync(profile, { recursive: true, force: true });
      },
    };
  } catch (err) {
    rmSync(profile, { recursive: true, force: true });
    throw err;
  }
}

function run(command: string, args: string[], env: NodeJS.ProcessEnv, timeout: number): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile(command, args, { env, timeout, maxBuffer: 64 << 20 }, (err, _stdout, stderr) => {
      if (err === null) resolve();
      else reject(new ChromiumSetupError(`${command} ${args.join(' ')} failed (${err.killed ? `killed after ${timeout} ms` : err.message}): ${stderr.slice(-2000)}`));
    });
  });
}
