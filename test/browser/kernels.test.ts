/**
 * The engine's kernels in real Chromium (WebGPU on SwiftShader, headless): each check of
 * test/browser/kernel-checks.ts runs in the page (demo/checks.html) against the float64 references
 * the Node tests use, with poisoned outputs. Needs Chromium (test/browser/chromium.ts).
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import type { Browser, Page } from 'playwright-core';
import { launchChromium, newPage, skipBrowserTests, waitForState } from './chromium.ts';
import { checkNames, type CheckResult } from './kernel-checks.ts';
import { startDemoServer, type DemoServer } from '../../demo/serve.ts';

describe.skipIf(skipBrowserTests)('kernels in Chromium (WebGPU)', () => {
  let server: DemoServer;
  let browser: Browser;
  let page: Page;
  let errors: string[];

  beforeAll(async () => {
    server = await startDemoServer();
    browser = await launchChromium();
    ({ page, errors } = await newPage(browser));
    await page.goto(`${server.url}checks.html`);
    await waitForState(page, ['ready', 'error']);
  });
  afterAll(async () => {
    await browser?.close();
    await server?.close();
  });

  it('has a WebGPU adapter, and reports its limits', async () => {
    const adapter = await page.evaluate(() => window.goeChecks!.adapter);
    expect(adapter).toMatch(/invocations\/workgroup/);
    console.log(`[browser] ${adapter}`);
  });

  for (const name of checkNames()) {
    it(name, async () => {
      const [r] = (await page.evaluate((n) => window.goeChecks!.run(n), name)) as CheckResult[];
      expect(r, `check "${name}" did not run`).toBeDefined();
      expect(r!.ok, `${r!.detail}${errors.length ? `\n${errors.join('\n')}` : ''}`).toBe(true);
      expect(r!.worstError).toBeLessThan(1e-3);
    });
  }
});

/** The same page with the kernels planned for an adapter without subgroups (Firefox, Safari, or
 * Chromium without the feature): the portable paths, on a few checks to keep CI time down. */
const NO_SUBGROUP_CHECKS = ['matmul: odd sizes', 'matmul: 4-aligned', 'conv2d 3x3 stride 2'];

describe.skipIf(skipBrowserTests)('kernels in Chromium, planned without subgroups', () => {
  let server: DemoServer;
  let browser: Browser;
  let page: Page;

  beforeAll(async () => {
    server = await startDemoServer();
    browser = await launchChromium();
    ({ page } = await newPage(browser));
    await page.goto(`${server.url}checks.html?caps=nosubgroups`);
    await waitForState(page, ['ready', 'error']);
  });
  afterAll(async () => {
    await browser?.close();
    await server?.close();
  });

  it('restricts the caps', async () => {
    expect(await page.evaluate(() => window.goeChecks!.adapter)).toMatch(/caps restricted: nosubgroups/);
  });

  for (const name of NO_SUBGROUP_CHECKS) {
    it(name, async () => {
      const results = (await page.evaluate((n) => window.goeChecks!.run(n), name)) as CheckResult[];
      expect(results.length).toBeGreaterThan(0);
      for (const r of results) expect(r.ok, `${r.name}: ${r.detail}`).toBe(true);
    });
  }
});
