/**
 * Screenshots of the demo in headless Chromium (WebGPU on SwiftShader), for the README:
 *   demo/screenshots/classify.png  after classifying a Fashion-MNIST test image (picked as a file)
 *   demo/screenshots/sigma2.png    after moving the sigma^2 slider and clicking a sample
 *
 *   node demo/screenshot.ts [--run runs/fmnist-default] [--image 0] [--sigma2 50] [--out demo/screenshots]
 *
 * Needs a finished run folder, Chromium (test/browser/chromium.ts) and the Fashion-MNIST test set
 * (Debian's dataset-fashion-mnist, which .ci/env.sh installs; the image is written as a PNG and
 * picked through the page's file input, as a person would).
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { gunzipSync } from 'node:zlib';
import sharp from 'sharp';
import { startDemoServer, ROOT } from './serve.ts';
import { launchChromium, newPage, waitForState } from '../test/browser/chromium.ts';

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(name);
  return i >= 0 && process.argv[i + 1] ? process.argv[i + 1]! : fallback;
}

const runDir = resolve(arg('--run', join(ROOT, 'runs', 'fmnist-default')));
const imageIndex = Number(arg('--image', '0'));
const sigma2 = arg('--sigma2', '50');
const out = resolve(arg('--out', join(ROOT, 'demo', 'screenshots')));
const images = '/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz';
if (!existsSync(join(runDir, 'config.json'))) {
  console.error(`error: ${runDir} is not a finished run folder (no config.json): run \`npm start\` first or pass --run`);
  process.exit(2);
}
if (!existsSync(images)) {
  console.error(`error: ${images} is missing: apt-get install dataset-fashion-mnist (source .ci/env.sh does it)`);
  process.exit(2);
}

const idx = gunzipSync(readFileSync(images));
const px = idx.subarray(16 + imageIndex * 784, 16 + (imageIndex + 1) * 784);
const png = join(mkdtempSync(join(tmpdir(), 'goe-shot-')), `fashion-mnist-test-${imageIndex}.png`);
await sharp(Buffer.from(px), { raw: { width: 28, height: 28, channels: 1 } }).png().toFile(png);

mkdirSync(out, { recursive: true });
const server = await startDemoServer({ runDir });
const browser = await launchChromium();
try {
  const { page, errors } = await newPage(browser, { width: 1180, height: 900 });
  await page.goto(server.url);
  await waitForState(page, ['ready', 'error'], 300_000);
  await page.waitForFunction(() => Number(document.body.dataset.sampled ?? 0) >= 1, null, { timeout: 300_000 });
  await page.setInputFiles('#image-file', png);
  await page.waitForFunction(() => Number(document.body.dataset.classified ?? 0) >= 1, null, { timeout: 120_000 });
  await page.screenshot({ path: join(out, 'classify.png'), fullPage: true });
  console.log(`classified: ${await page.textContent('#prediction')}`);

  const sampled = Number(await page.evaluate(() => document.body.dataset.sampled));
  await page.locator('#sigma2').fill(sigma2); // a real input event, as dragging the slider fires
  await page.waitForFunction((n) => Number(document.body.dataset.sampled ?? 0) > n, sampled, { timeout: 120_000 });
  await page.click('#grid', { position: { x: 56 + 112, y: 56 } }); // the second sample: classify it
  await page.waitForFunction(() => Number(document.body.dataset.classified ?? 0) >= 2, null, { timeout: 120_000 });
  await page.screenshot({ path: join(out, 'sigma2.png'), fullPage: true });
  console.log(`after sigma^2 = ${sigma2}: ${await page.textContent('#sample-time')}; the second sample: ${await page.textContent('#prediction')}`);
  if (errors.length) console.log(errors.join('\n'));
} finally {
  await browser.close();
  await server.close();
}
// Small PNGs for the repository: 8-bit palette, as sharp writes them.
for (const name of ['classify.png', 'sigma2.png']) {
  const file = join(out, name);
  const buf = await sharp(file).png({ palette: true, colours: 128, compressionLevel: 9 }).toBuffer();
  writeFileSync(file, buf);
  console.log(`${file}: ${(buf.length / 1024).toFixed(0)} KiB`);
}
