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
