/**
 * bench/compare_released_samples.ts (issue 14, "Done when" 2): the statistics it reports, and that
 * it tells which latent scale a released set was drawn at. The "released" files here are made by a
 * tiny random BigGAN at a known scale (the real samples-50.0.npz is not on this machine), and the
 * script must name that scale as the nearer one.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { spawnSync } from 'node:child_process';
import { engine } from '../helpers/gpu.ts';
import { saveModel } from '../../src/engine/index.ts';
import { type ArraySource } from '../../src/data/index.ts';
import { saveNpz } from '../../src/engine/io/node-files.ts';
import { BigGANGenerator, BigGANTrainer, generateImages } from '../../src/models/index.ts';
import { LatentSampler } from '../../src/goe/index.ts';
import { compareReleasedSamples, formatComparison, histogramDistance, setStats } from '../../bench/compare_released_samples.ts';

let dir: string;
let gPath: string;
const G_OPTS = { nClasses: 10, ch: 4, outChannels: 3, bottomWidth: 4, upsamples: 3 };

beforeAll(async () => {
  await engine();
  dir = mkdtempSync(join(tmpdir(), 'goe-released-'));
  gPath = join(dir, 'G.safetensors');
  const G = new BigGANGenerator(G_OPTS);
  await saveModel(gPath, G);
  G.dispose();
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A "released" file: n samples of the saved G at a latent scale, as uint8 NCHW "x" (or NHWC). */
async function released(scale: 'std' | 'variance', n: number, layout: 'NCHW' | 'NHWC' = 'NCHW'): Promise<string> {
  const G = new BigGANGenerator(G_OPTS);
  const { loadModel } = await import('../../src/engine/index.ts');
  await loadModel(gPath, G);
  const set = await new LatentSampler({
    sigma2: 50, scale, mode: 'train', chunk: 50,
    generator: { dimZ: G.dimZ, numClasses: G.nClasses, generate: (z, y) => generateImages(G, z, y), eval: () => G.eval(), train: () => G.train() },
  }).sample(n, 1234);
  G.dispose();
  let data = (set.source as ArraySource).data as Uint8Array;
  let shape = [n, 3, 32, 32];
  if (layout === 'NHWC') {
    const t = new Uint8Array(data.length);
    for (let i = 0; i < n; i++) for (let c = 0; c < 3; c++) for (let p = 0; p < 1024; p++) t[i * 3072 + p * 3 + c] = data[i * 3072 + c * 1024 + p]!;
    data = t;
    shape = [n, 32, 32, 3];
  }
  const path = join(dir, `released-${scale}-${layout}.npz`);
  await saveNpz(path, { x: { data, shape } });
  return path;
}

describe('pixel statistics', () => {
  it('per-channel mean and std, per-image contrast, saturation, histograms (a hand-computed case)', () => {
    // two 2-channel 1x2 images: channel 0 = [0, 255] and [100, 100]; channel 1 = [10, 30] and [50, 70]
    const src: ArraySource = { kind: 'array', name: 'hand', length: 2, sampleShape: [2, 1, 2], layout: 'CHW', dtype: 'uint8', data: Uint8Array.from([0, 255, 10, 30, 100, 100, 50, 70]), labels: null };
    const s = setStats(src);
    expect(s.mean).toEqual([113.75, 40]);
    expect(s.std[0]).toBeCloseTo(Math.sqrt((0 + 255 ** 2 + 2 * 100 ** 2) / 4 - 113.75 ** 2), 10);
    expect(s.std[1]).toBeCloseTo(Math.sqrt(500), 10);
    const sd = (v: number[]) => Math.sqrt(v.reduce((a, x) => a + x * x, 0) / v.length - (v.reduce((a, x) => a + x, 0) / v.length) ** 2);
    expect(s.contrast).toBeCloseTo((sd([0, 255, 10, 30]) + sd([100, 100, 50, 70])) / 2, 10);
    expect(s.saturated).toBe(2 / 8);
    expect(s.histogram[0]![100]).toBe(0.5);
    expect(s.histogram[1]![10]).toBe(0.25);
    const hwc = setStats({ ...src, layout: 'HWC', data: Uint8Array.from([0, 10, 255, 30, 100, 50, 100, 70]) });
    expect(hwc.mean).toEqual(s.mean);
    expect(hwc.contrast).toBeCloseTo(s.contrast, 12);
  });

  it('histogram distances: 0 for the same set, TV 1 and W1 255 for all-black against all-white', () => {
    const one = (v: number): ArraySource => ({ kind: 'array', name: String(v), length: 1, sampleShape: [1, 1, 4], layout: 'CHW', dtype: 'uint8', data: new Uint8Array(4).fill(v), labels: null });
    expect(histogramDistance(setStats(one(7)), setStats(one(7)))).toEqual({ tv: 0, w1: 0 });
    expect(histogramDistance(setStats(one(0)), setStats(one(255)))).toEqual({ tv: 1, w1: 255 });
    expect(histogramDistance(setStats(one(10)), setStats(one(13))).w1).toBe(3);
  });
});

describe('compare_released_samples on a tiny random BigGAN', () => {
  for (const scale of ['std', 'variance'] as const) {
    it(`released samples drawn at the '${scale}' scale are named as such`, async () => {
      const r = await compareReleasedSamples({ generator: gPath, released: await released(scale, 100, scale === 'std' ? 'NCHW' : 'NHWC'), n: 100, classes: 10, ch: 4 });
      console.log(formatComparison(r));
      expect(r.sets.map((s) => s.stats.name)).toEqual([expect.stringMatching(/^released/), 'ours, z std 50 (train mode)', 'ours, z variance 50 (train mode)']);
      expect(r.sets.map((s) => s.stats.n)).toEqual([100, 100, 100]);
      for (const s of r.sets.slice(1)) {
        expect(s.tv).toBeGreaterThanOrEqual(0);
        expect(s.tv).toBeLessThanOrEqual(1);
        expect(s.w1).toBeGreaterThanOrEqual(0);
      }
      expect(r.closer).toBe(scale);
      expect(formatComparison(r)).toContain(`('${scale}')`);
    });
  }

  it('a BigGAN training checkpoint is read as its G (G_ema when kept): the same report as its G saved alone', async () => {
    const trainer = BigGANTrainer.create(G_OPTS, {}, { ema: true, emaStart: 0 });
    const ckpt = join(dir, 'biggan.safetensors');
    const alone = join(dir, 'G-ema.safetensors');
    await trainer.save(ckpt);
    await saveModel(alone, trainer.Gema!);
    trainer.dispose();
    const file = await released('std', 20);
    const a = await compareReleasedSamples({ generator: ckpt, released: file, n: 20, classes: 10, ch: 4 });
    const b = await compareReleasedSamples({ generator: alone, released: file, n: 20, classes: 10, ch: 4 });
    expect(a).toEqual(b);
  });

  it('as a script: a missing --generator is one line and exit 2', () => {
    const p = spawnSync(process.execPath, ['bench/compare_released_samples.ts'], { encoding: 'utf8' });
    expect(p.status).toBe(2);
    expect(p.stderr.split('\n').filter((l) => l && !l.startsWith('Warning') && !l.includes('ExperimentalWarning')).join('\n')).toBe(
      'compare_released_samples: --generator G.safetensors is required (the BigGAN G weights whose samples are compared)',
    );
  });
});
