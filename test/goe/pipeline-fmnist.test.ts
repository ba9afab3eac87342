/**
 * The main job's path on a small --limit: the fmnist experiment (Fashion-MNIST from the data
 * folder or Debian's package, WRN-10-1 with global pooling, a 28x28 grey BigGAN, OE with noise and
 * generated outliers) with the user's OOD sets in every format (--ood: gzipped IDX, .npy, NHWC
 * float .npz, a PNG folder) reported beside the built ones in results.json's schema; then
 * --pretrained from that run's baseline (no baseline training; fine-tuning starts from those
 * weights); then the `images` experiment on a class-folder tree (--train/--test).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import sharp from 'sharp';
import { engine } from '../helpers/gpu.ts';
import { loadModel, releaseParameterArena } from '../../src/engine/index.ts';
import { WideResNet } from '../../src/models/index.ts';
import { npyBytes, npzBytes } from '../../src/engine/index.ts';
import { DEBIAN_FASHION_MNIST_DIR, dataDir } from '../../src/data/index.ts';
import { FMNIST, IMAGES, ExperimentInputError, runExperiment, type ExperimentResult } from '../../src/goe/index.ts';
import { evaluateScores } from '../../src/goe/train/index.ts';
import { readScoresNpz } from '../../src/goe/report/index.ts';

const haveFmnist = [join(dataDir(), 'fashion-mnist'), DEBIAN_FASHION_MNIST_DIR].some((d) => existsSync(join(d, 't10k-labels-idx1-ubyte.gz')) || existsSync(join(d, 't10k-labels-idx1-ubyte')));

let dir: string;
let files: string;
let result: ExperimentResult;
const lines: string[] = [];

/** n pseudo-random 28x28 grey images, deterministic. */
function images(n: number, seed: number, side = 28): Uint8Array {
  const out = new Uint8Array(n * side * side);
  let s = seed;
  for (let i = 0; i < out.length; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = s >>> 24;
  }
  return out;
}

/** An IDX3 file of uint8 images. */
function idx3(data: Uint8Array, n: number, side: number): Uint8Array {
  const head = new Uint8Array(16);
  const v = new DataView(head.buffer);
  v.setUint32(0, 0x00000803);
  v.setUint32(4, n);
  v.setUint32(8, side);
  v.setUint32(12, side);
  return new Uint8Array([...head, ...data]);
}

beforeAll(async () => {
  await engine();
  dir = mkdtempSync(join(tmpdir(), 'goe-fmnist-'));
  files = mkdtempSync(join(tmpdir(), 'goe-fmnist-ood-'));
  writeFileSync(join(files, 'digits-idx3-ubyte.gz'), gzipSync(idx3(images(40, 1), 40, 28)));
  writeFileSync(join(files, 'grey.npy'), npyBytes({ data: images(30, 2), shape: [30, 28, 28] }));
  // NHWC RGB float in [0, 1] at another size: converted to grey and squashed to 28x28
  const rgb = Float32Array.from(images(20 * 3, 3, 32), (v) => v / 255);
  writeFileSync(join(files, 'colour.npz'), npzBytes({ x: { data: rgb, shape: [20, 32, 32, 3] } }));
  mkdirSync(join(files, 'pngs'));
  for (let i = 0; i < 12; i++) {
    await sharp(Buffer.from(images(3, 10 + i, 40)), { raw: { width: 40, height: 40, channels: 3 } }).png().toFile(join(files, 'pngs', `${i}.png`));
  }
  if (!haveFmnist) return;
  result = await runExperiment(FMNIST, {
    out: dir, workers: 0, limit: 64, maxSteps: 2, log: (l) => lines.push(l),
    ood: [
      { name: 'mine-idx', path: join(files, 'digits-idx3-ubyte.gz') },
      { name: 'mine-npy', path: join(files, 'grey.npy') },
      { name: 'mine-npz', path: join(files, 'colour.npz') },
      { name: 'mine-png', path: join(files, 'pngs') },
    ],
  });
}, 600_000);
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
  rmSync(files, { recursive: true, force: true });
  releaseParameterArena();
});

describe.skipIf(!haveFmnist)('fmnist experiment on a small --limit (the main job\'s path)', () => {
  it('trains every phase on 1x28x28 Fashion-MNIST: the 28x28 grey BigGAN, the baseline, OE from the partial baseline', () => {
    expect(lines.some((l) => /^data: fashion-mnist train 60000, test 10000/.test(l))).toBe(true);
    expect(lines.some((l) => /^\[biggan\] G \d+ \/ D \d+ parameters, 2 iterations of 2 x 32 images/.test(l))).toBe(true);
    // 64 training images: one batch of 128 per baseline epoch, 2 epochs = 2 steps, the last one also --max-steps's;
    // 64 inliers + 64 outliers: one OE step
    expect(result.phases.map((p) => [p.name, p.steps])).toEqual([['baseline', 2], ['oe-noise', 1], ['oe-generated', 1]]);
    const x = JSON.parse(readFileSync(join(dir, 'outliers', 'generated.npz.json'), 'utf8'));
    expect(x).toMatchObject({ sampler: 'biggan-latent', sigma2: 50, latentScale: 'std', zStd: 50, mode: 'train', provisional: expect.stringMatching(/--max-steps/) });
    const cfg = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'));
    expect(cfg.model).toEqual({ kind: 'wrn', depth: 10, widenFactor: 1, dropRate: 0, pooling: 'global' });
  });

  it("reports the user's sets (IDX.gz, .npy, float NHWC .npz, PNG folder) beside the built ones, in results.json's schema", () => {
    const json = JSON.parse(readFileSync(join(dir, 'results.json'), 'utf8'));
    expect(json.variants.map((v: { outliers: string }) => v.outliers)).toEqual(['none', 'noise', 'generated']);
    const sets = ['mine-idx', 'mine-npy', 'mine-npz', 'mine-png'];
    for (const v of json.variants) {
      expect(typeof v.accuracy).toBe('number');
      const rows = v.rows as { detector: string; outlier_set: string; AUROC: number; FPR95TPR: number; 'AUPR-IN': number; 'AUPR-OUT': number; n_out: number }[];
      for (const d of ['MSP', 'Energy']) {
        const names = rows.filter((r) => r.detector === d).map((r) => r.outlier_set);
        for (const s of sets) expect(names, `${v.outliers} ${d}`).toContain(s);
        expect(names[names.length - 1]).toBe('mean');
      }
      for (const r of rows) for (const k of ['AUROC', 'AUPR-IN', 'AUPR-OUT', 'FPR95TPR'] as const) expect(r[k] >= 0 && r[k] <= 1, `${r.outlier_set} ${k}`).toBe(true);
      const n = Object.fromEntries(rows.filter((r) => r.detector === 'MSP').map((r) => [r.outlier_set, r.n_out]));
      expect([n['mine-idx'], n['mine-npy'], n['mine-npz'], n['mine-png']]).toEqual([40, 30, 20, 12]);
      expect(v.extra_rows.map((r: { outlier_set: string }) => r.outlier_set)).toContain('Uniform noise');
    }
  });

  it('writes the pictures (decoded: sizes, real content) and every sample\'s scores, from which the report recomputes exactly', async () => {
    // Fig. 1: 64 generated outliers beside 64 training images, 8 columns of 28x28 tiles at scale 2
    const fig = await sharp(join(dir, 'generated', 'outliers-vs-training.png')).raw().toBuffer({ resolveWithObject: true });
    expect(fig.info.width).toBeGreaterThan(2 * 8 * 56);
    expect(fig.info.height).toBeGreaterThan(8 * 56);
    const grid = await sharp(join(dir, 'noise', 'outliers.png')).raw().toBuffer({ resolveWithObject: true });
    expect(grid.info.width).toBeGreaterThanOrEqual(8 * 56);
    // uniform noise tiles: many distinct grey levels, not a blank image
    expect(new Set(grid.data).size).toBeGreaterThan(100);
    for (const v of ['none', 'noise', 'generated']) {
      for (const f of ['roc-MSP.png', 'roc-Energy.svg', 'hist-Energy.png']) expect(existsSync(join(dir, v, f)), `${v}/${f}`).toBe(true);
      const roc = readFileSync(join(dir, v, 'roc-Energy.svg'), 'utf8');
      const mine = result.report.variants.find((x) => x.outliers === v)!.evaluation.reports.Energy!.rows.find((r) => r.outlierSet === 'mine-png')!;
      expect(roc).toContain(`mine-png (AUROC ${(mine.auroc * 100).toFixed(2)})`);
      const scores = await readScoresNpz(join(dir, v, 'scores.npz'));
      const sets = ['Font glyphs', 'Icons', 'mine-idx', 'mine-npy', 'mine-npz', 'mine-png'];
      const again = evaluateScores({ ...scores, ood: scores.ood.filter((s) => sets.includes(s.name)) });
      expect(again.reports).toEqual(result.report.variants.find((x) => x.outliers === v)!.evaluation.reports);
    }
    const md = readFileSync(join(dir, 'results.md'), 'utf8');
    expect(md).toContain('(generated/outliers-vs-training.png)');
    expect(md.match(/Values in %\. /g)!.length).toBe(1); // one convention paragraph per report
  });

  it('--pretrained: no baseline training, the weights are where fine-tuning reads them, and every variant fine-tunes from them', async () => {
    const out = mkdtempSync(join(tmpdir(), 'goe-fmnist-pre-'));
    try {
      const weights = join(dir, 'baseline', 'model.safetensors');
      const r = await runExperiment(FMNIST, { out, workers: 0, limit: 64, maxSteps: 1, pretrained: weights, variants: ['none', 'noise'], log: () => {} });
      expect(r.phases.map((p) => p.name)).toEqual(['oe-noise']);
      expect(readFileSync(join(out, 'baseline', 'model.safetensors')).equals(readFileSync(weights))).toBe(true);
      // the none row is the pretrained model itself: the same scores as the first run's baseline
      const first = result.report.variants[0]!.evaluation.reports.MSP!.rows.find((x) => x.outlierSet === 'mine-idx');
      expect(first).toBeDefined();
      expect(r.report.variants.map((v) => v.outliers)).toEqual(['none', 'noise']);
      // the wrong weights are refused before any training, with a hint (exit 2 in the CLI)
      const wrong = new WideResNet(10, { depth: 16, widenFactor: 1, inChannels: 1, pooling: 'global' });
      const { saveModel } = await import('../../src/engine/index.ts');
      await saveModel(join(out, 'wrn16.safetensors'), wrong);
      wrong.dispose();
      await expect(runExperiment(FMNIST, { out: join(out, 'b'), workers: 0, limit: 64, maxSteps: 1, pretrained: join(out, 'wrn16.safetensors'), log: () => {} })).rejects.toThrow(ExperimentInputError);
      writeFileSync(join(out, 'model.pt'), 'not a safetensors file');
      await expect(runExperiment(FMNIST, { out: join(out, 'c'), workers: 0, limit: 64, maxSteps: 1, pretrained: join(out, 'model.pt'), log: () => {} })).rejects.toThrow(/PyTorch pickle.*safetensors/);
      expect(existsSync(join(out, 'b', 'generator'))).toBe(false); // refused before the BigGAN was trained
      const m = new WideResNet(10, { depth: 10, widenFactor: 1, inChannels: 1, pooling: 'global' });
      await loadModel(join(out, 'noise', 'model.safetensors'), m);
      m.dispose();
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  }, 600_000);
});

describe('images experiment (--train/--test)', () => {
  it('trains on a class-folder tree of 16x16 RGB PNGs, picks the model from the image size, and needs both paths', async () => {
    const root = mkdtempSync(join(tmpdir(), 'goe-images-'));
    const out = mkdtempSync(join(tmpdir(), 'goe-images-run-'));
    try {
      for (const split of ['train', 'test']) {
        for (const [k, cls] of ['cat', 'dog', 'owl'].entries()) {
          mkdirSync(join(root, split, cls), { recursive: true });
          for (let i = 0; i < 6; i++) {
            const px = new Uint8Array(16 * 16 * 3).map((_, j) => ((j % 3 === k ? 200 : 30) + ((i * 7 + j) % 40)) & 255);
            await sharp(Buffer.from(px), { raw: { width: 16, height: 16, channels: 3 } }).png().toFile(join(root, split, cls, `${i}.png`));
          }
        }
      }
      await expect(runExperiment(IMAGES, { out: join(out, 'x'), workers: 0, train: join(root, 'train'), log: () => {} })).rejects.toThrow(/needs --train PATH and --test PATH/);
      const log: string[] = [];
      const r = await runExperiment(IMAGES, { out, workers: 0, maxSteps: 1, limit: 32, train: join(root, 'train'), test: join(root, 'test'), log: (l) => log.push(l) });
      expect(log.some((l) => /^data: .*train \(18 images\) \/ .*test \(18\), 3 classes, 3x16x16; normalised with the training set's mean \[/.test(l))).toBe(true);
      expect(log).toContain('classifier: WRN-10-1 for 16x16 images (--model wrn-D-K to choose)');
      expect(r.report.variants.map((v) => v.outliers)).toEqual(['none', 'noise', 'generated']);
      const rows = r.report.variants[0]!.evaluation.reports.Energy!.rows.map((x) => x.outlierSet);
      expect(rows).toEqual(['Font glyphs', 'Icons']);
      const x = JSON.parse(readFileSync(join(out, 'outliers', 'generated.npz.json'), 'utf8'));
      expect(x.n).toBe(32);
      expect(r.report.variants[0]!.evaluation.accuracy).not.toBeNull();
    } finally {
      rmSync(root, { recursive: true, force: true });
      rmSync(out, { recursive: true, force: true });
    }
  }, 600_000);
});
