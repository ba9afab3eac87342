/**
 * The demo's end-to-end path in Chromium on a tiny run (test/browser/tiny-run.ts): the page loads
 * the run folder from the server, classifies images and samples the generator on WebGPU
 * (SwiftShader); Node does the same with the same code (src/web/goe-demo.ts) on its adapter, and
 * the numbers must agree: logits, MSP and Energy, the 95%-TPR thresholds (and the report's
 * FPR95TPR they reproduce), the OOD verdicts, and the generated images.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { init } from '../../src/engine/index.ts';
import { classify, openRun, sampleGenerator, type Classification, type DemoRun } from '../../src/web/goe-demo.ts';
import { launchChromium, newPage, skipBrowserTests, waitForState } from './chromium.ts';
import { writeTinyRun } from './tiny-run.ts';
import { startDemoServer, type DemoServer } from '../../demo/serve.ts';
import { rng } from '../helpers/reference.ts';

/** Three 28x28 images: a seeded random one, a bright square, and a blank one. */
function images(): Uint8Array[] {
  const r = rng(5);
  const noise = Uint8Array.from({ length: 784 }, () => Math.floor(r() * 256));
  const square = new Uint8Array(784);
  for (let y = 6; y < 22; y++) for (let x = 9; x < 19; x++) square[y * 28 + x] = 230;
  return [noise, square, new Uint8Array(784)];
}

describe.skipIf(skipBrowserTests)('the demo in Chromium = the same code under Node', () => {
  let dir: string;
  let server: DemoServer;
  let browser: Browser;
  let page: Page;
  let errors: string[];
  let nodeRun: DemoRun;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'goe-tiny-run-'));
    await init();
    await writeTinyRun(dir);
    nodeRun = await openRun(async (p) => (existsSync(join(dir, p)) ? new Uint8Array(readFileSync(join(dir, p))) : null));
    server = await startDemoServer({ runDir: dir });
    browser = await launchChromium();
    ({ page, errors } = await newPage(browser));
    await page.goto(server.url);
    await waitForState(page, ['ready', 'error'], 300_000);
    await page.waitForFunction(() => window.goeDemo?.run() !== null, null, { timeout: 300_000 });
  }, 400_000);
  afterAll(async () => {
    await browser?.close();
    await server?.close();
    nodeRun?.dispose();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('loads the run: thresholds equal Node\'s and reproduce the report\'s FPR95TPR', async () => {
    const web = await page.evaluate(() => {
      const r = window.goeDemo!.run()!;
      return { variant: r.variant, classes: r.classes, thresholds: r.thresholds, latent: r.latent };
    });
    expect(web.variant).toBe('generated');
    expect(web.latent).toEqual({ scale: 'std', mode: 'train', sigma2: 50 });
    expect(web.thresholds).toHaveLength(4);
    expect(web.thresholds).toEqual(nodeRun.thresholds);
    for (const t of web.thresholds) expect(t.fpr).toBe(t.reportFpr);
  });

  it('classifies images as Node does: logits, MSP, Energy and the OOD verdicts', async () => {
    for (const img of images()) {
      const want: Classification = await classify(nodeRun, img);
      const got = await page.evaluate((px) => window.goeDemo!.classifyPixels(px), Array.from(img));
      expect(got.cls).toBe(want.cls);
      for (let i = 0; i < 10; i++) expect(Math.abs(got.logits[i]! - want.logits[i]!)).toBeLessThan(1e-4 + 1e-4 * Math.abs(want.logits[i]!));
      expect(Math.abs(got.scores.MSP - want.scores.MSP)).toBeLessThan(1e-5);
      expect(Math.abs(got.scores.Energy - want.scores.Energy)).toBeLessThan(1e-4);
      const set = nodeRun.thresholds[0]!.outlierSet;
      for (const t of nodeRun.thresholds.filter((x) => x.outlierSet === set)) {
        const score = want.scores[t.detector as 'MSP' | 'Energy'];
        if (Math.abs(score - t.threshold) > 1e-3) expect(got.flagged[t.detector]).toBe(score >= t.threshold);
      }
    }
    expect(errors).toEqual([]);
  }, 400_000);

  it('samples the generator as Node does (sigma^2 moved to 50 and to 2)', async () => {
    for (const [sigma2, seed] of [[50, 3], [2, 4]] as const) {
      const want = await sampleGenerator(nodeRun, sigma2, 16, seed);
      const got = await page.evaluate(([s, sd]) => window.goeDemo!.sample(s, sd), [sigma2, seed] as const);
      expect(got).toHaveLength(want.length);
      let maxDiff = 0;
      let sumDiff = 0;
      for (let i = 0; i < want.length; i++) {
        const d = Math.abs(got[i]! - want[i]!);
        maxDiff = Math.max(maxDiff, d);
        sumDiff += d;
      }
      // uint8 after truncation: a float difference of a few ULPs can move a pixel by one level
      expect(maxDiff, `sigma^2 ${sigma2}`).toBeLessThanOrEqual(2);
      expect(sumDiff / want.length, `sigma^2 ${sigma2}`).toBeLessThan(0.05);
      expect(new Set(want).size).toBeGreaterThan(16); // not a constant image
    }
  }, 400_000);
});
