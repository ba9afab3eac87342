/**
 * Headless Chromium with WebGPU for the browser tests and demo/screenshot.ts: Debian's system
 * Chromium (installed by .ci/env.sh) driven by playwright-core, which never downloads a browser.
 *
 * GOE_CHROMIUM=/path/to/chrome picks another binary. GOE_SKIP_BROWSER_TESTS=1 skips the browser
 * tests on a developer machine without Chromium; without it a missing Chromium FAILS the tests
 * with instructions (CI installs it, so a silent skip would hide a broken setup).
 */
import { existsSync } from 'node:fs';
import { chromium, type Browser, type Page } from 'playwright-core';

/** The flags WebGPU needs headless on Linux: SwiftShader (Chromium's fallback adapter). */
export const CHROMIUM_ARGS = ['--headless=new', '--no-sandbox', '--enable-unsafe-webgpu'];

const CANDIDATES = ['/usr/bin/chromium', '/usr/bin/chromium-headless-shell', '/usr/bin/chromium-browser', '/usr/bin/google-chrome'];

export const skipBrowserTests = process.env.GOE_SKIP_BROWSER_TESTS === '1';

/** The Chromium binary, or an error that says how to get one. */
export function chromiumPath(): string {
  const fromEnv = process.env.GOE_CHROMIUM;
  if (fromEnv) {
    if (!existsSync(fromEnv)) throw new Error(`GOE_CHROMIUM=${fromEnv}: no such file (unset it to use Debian's chromium, or GOE_SKIP_BROWSER_TESTS=1 to skip the browser tests)`);
    return fromEnv;
  }
  const found = CANDIDATES.find((p) => existsSync(p));
  if (!found) {
    throw new Error(
      'no Chromium found for the browser tests (looked for ' + CANDIDATES.join(', ') + '). ' +
        'Install Debian\'s: `apt-get install chromium` (`source .ci/env.sh` does it), or set GOE_CHROMIUM=/path/to/chrome; ' +
        'GOE_SKIP_BROWSER_TESTS=1 skips these tests on a machine without a browser.',
    );
  }
  return found;
}

export async function launchChromium(): Promise<Browser> {
  return chromium.launch({ executablePath: chromiumPath(), headless: true, args: CHROMIUM_ARGS });
}

/** A new page whose console errors and uncaught exceptions are collected (for failure messages). */
export async function newPage(browser: Browser, viewport = { width: 1100, height: 900 }): Promise<{ page: Page; errors: string[] }> {
  const page = await browser.newPage({ viewport });
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(`page error: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(`console: ${m.text()}`);
  });
  return { page, errors };
}

/** Waits until the page's body data-state leaves `loading` and returns it ('error' includes the message). */
export async function waitForState(page: Page, states: string[], timeoutMs = 120_000): Promise<string> {
  await page.waitForFunction((s) => s.includes(document.body.dataset.state ?? ''), states, { timeout: timeoutMs, polling: 200 });
  const state = await page.evaluate(() => document.body.dataset.state ?? '');
  if (state === 'error') throw new Error(`page failed: ${await page.evaluate(() => (window as { goeError?: string }).goeError ?? '')}`);
  return state;
}
