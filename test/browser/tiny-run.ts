/**
 * A tiny run folder for the demo's end-to-end test, written by Node with the engine: the layout
 * a `goe run` writes (config.json, results.json, generated/model.safetensors, generated/scores.npz
 * and its manifest, generator/G.safetensors), with a randomly initialised WRN-10-1 on 1x28x28, a
 * BigGAN generator of width 4 (28x28 grey), and seeded synthetic scores whose report rows come
 * from src/goe/metrics (so the page's recomputed FPR95TPR can be checked against them).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { manualSeed, modelToSafetensors } from '../../src/engine/index.ts';
import { WideResNet } from '../../src/models/wideresnet.ts';
import { Generator } from '../../src/models/biggan.ts';
import { npzBytes } from '../../src/engine/io/npy-write.ts';
import { computeOodMetrics } from '../../src/goe/metrics/ood-metrics.ts';
import { randnArray } from '../helpers/reference.ts';

export const TINY_G = { ch: 4, bottomWidth: 7, upsamples: 2 };

export async function writeTinyRun(dir: string): Promise<void> {
  manualSeed(7);
  const model = new WideResNet(10, { depth: 10, widenFactor: 1, dropRate: 0, inChannels: 1, pooling: 'global' });
  const G = new Generator({ nClasses: 10, outChannels: 1, ...TINY_G });
  mkdirSync(join(dir, 'generated'), { recursive: true });
  mkdirSync(join(dir, 'generator'), { recursive: true });
  writeFileSync(join(dir, 'generated', 'model.safetensors'), await modelToSafetensors(model));
  writeFileSync(join(dir, 'generator', 'G.safetensors'), await modelToSafetensors(G));
  model.dispose();
  G.dispose();

  const config = {
    name: 'tiny', description: 'a tiny run for the browser test', data: { kind: 'mnist', variant: 'fashion-mnist' },
    model: { kind: 'wrn', depth: 10, widenFactor: 1, dropRate: 0, pooling: 'global' },
    outliers: [{ name: 'none', kind: 'none' }, { name: 'generated', kind: 'biggan', sigma2: 50, latent: 'std', sampleMode: 'train', count: 64, train: TINY_G }],
    normalize: { mean: [0.286], std: [0.353] },
  };
  // Scores: in-distribution lower than OOD on average, with ties (rounded) to exercise tie groups.
  const round = (a: Float64Array, shift: number) => Float32Array.from(a, (v) => Math.round((v + shift) * 50) / 50);
  const sets = [{ name: 'Font glyphs', key: 'font-glyphs', shift: 1.2, n: 300 }, { name: 'Gaussian noise', key: 'gaussian-noise', shift: 2.5, n: 200 }];
  const arrays: Record<string, { data: Float32Array; shape: number[] }> = {};
  const rows: { detector: string; outlier_set: string; FPR95TPR: number; AUROC: number }[] = [];
  for (const [d, det] of ['MSP', 'Energy'].entries()) {
    const ins = round(randnArray(1000, 100 + d), 0);
    arrays[`in__${det}`] = { data: ins, shape: [ins.length] };
    for (const [k, s] of sets.entries()) {
      const ood = round(randnArray(s.n, 200 + 10 * d + k), s.shift);
      arrays[`${s.key}__${det}`] = { data: ood, shape: [ood.length] };
      const m = computeOodMetrics(ins, ood);
      rows.push({ detector: det, outlier_set: s.name, FPR95TPR: m.fpr95tpr, AUROC: m.auroc });
    }
  }
  writeFileSync(join(dir, 'generated', 'scores.npz'), npzBytes(arrays));
  writeFileSync(join(dir, 'generated', 'scores.npz.json'), JSON.stringify({
    detectors: ['MSP', 'Energy'], in: { name: 'in-distribution test', key: 'in' }, ood: sets.map((s) => ({ name: s.name, key: s.key })),
  }));
  writeFileSync(join(dir, 'config.json'), JSON.stringify(config, null, 2));
  writeFileSync(join(dir, 'results.json'), JSON.stringify({
    experiment: 'tiny', variants: [{ outliers: 'generated', accuracy: 0.1, rows: rows.filter((r) => r.outlier_set !== 'Gaussian noise'), extra_rows: rows.filter((r) => r.outlier_set === 'Gaussian noise') }],
  }, null, 2));
}
