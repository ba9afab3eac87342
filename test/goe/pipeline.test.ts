/**
 * The smoke experiment end to end through the real pipeline (runExperiment): a tiny BigGAN trained
 * on the inliers and sampled at sigma^2 = 50, baseline training, uniform-noise and generated
 * outliers sampled and saved, OE fine-tuning on each, MSP/Energy evaluation, checkpoints and
 * reports; a resumed run reuses every phase. Then, from the saved weights: OE fine-tuning lowered the OE loss on the training
 * inliers + outliers and moved the outliers' MSP scores towards uniform (higher outlier score);
 * the report files have the paper's columns, a row per OOD set and detector plus the mean, and
 * state the metric convention.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { engine } from '../helpers/gpu.ts';
import { loadModel, noGrad, releaseParameterArena, scope, tensor, mean } from '../../src/engine/index.ts';
import { CIFAR_MEAN, CIFAR_STD, DataLoader } from '../../src/data/index.ts';
import { WideResNet } from '../../src/models/index.ts';
import { FileSampler, SMOKE, mspScore, outlierExposureLoss, runExperiment, syntheticImages, type ExperimentResult } from '../../src/goe/index.ts';

let dir: string;
let result: ExperimentResult;
const lines: string[] = [];

beforeAll(async () => {
  await engine();
  dir = mkdtempSync(join(tmpdir(), 'goe-smoke-'));
  result = await runExperiment(SMOKE, { out: dir, workers: 0, log: (l) => lines.push(l) });
});
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
  releaseParameterArena();
});

describe('smoke experiment end to end', () => {
  it('logs the adapter first, then progress with loss and steps/s', () => {
    expect(lines[0]).toMatch(/^adapter: .+ \| (software|hardware) \|/);
    expect(readFileSync(join(dir, 'train.log'), 'utf8').split('\n')[0]).toBe(lines[0]);
    expect(lines.some((l) => /^\[baseline\] epoch 2\/2 step 4\/4 loss \d+\.\d{4} lr 0\.0500 \d+\.\d+ steps\/s/.test(l))).toBe(true);
    expect(lines.some((l) => /^\[oe-noise\] epoch 2\/2 step 8\/8 loss/.test(l))).toBe(true);
  });

  it('trains both phases and writes checkpoints, weights, the outlier set and the reports', () => {
    expect(result.phases.map((p) => [p.name, p.steps, p.epochs])).toEqual([['baseline', 4, 2], ['oe-noise', 8, 2], ['oe-generated', 8, 2]]);
    for (const f of ['config.json', 'baseline/checkpoint.safetensors', 'baseline/model.safetensors', 'noise/checkpoint.safetensors', 'noise/model.safetensors',
      'none/evaluation.json', 'noise/evaluation.json', 'outliers/noise.npz', 'outliers/noise.npz.json',
      'generator/biggan.safetensors', 'generator/G.safetensors', 'generated/model.safetensors', 'generated/evaluation.json', 'outliers/generated.npz', 'results.md', 'results.csv', 'results.json', 'summary.json']) {
      expect(existsSync(join(dir, f)), f).toBe(true);
    }
    const base = result.phases[0]!;
    expect(base.lastLoss!).toBeLessThan(base.firstLoss!); // supervised training learns
  });

  it('every metric is finite and in [0, 1]; the report states the convention', () => {
    for (const v of result.report.variants) {
      expect(v.evaluation.accuracy).not.toBeNull();
      for (const d of ['MSP', 'Energy']) {
        const rep = v.evaluation.reports[d]!;
        expect(rep.rows.map((r) => r.outlierSet)).toEqual(['Gaussian noise', 'Uniform noise']);
        for (const r of [...rep.rows, rep.mean]) {
          for (const k of ['auroc', 'auprIn', 'auprOut', 'fpr95tpr'] as const) {
            expect(Number.isFinite(r[k])).toBe(true);
            expect(r[k]).toBeGreaterThanOrEqual(0);
            expect(r[k]).toBeLessThanOrEqual(1);
          }
        }
        expect(rep.mean.auroc).toBeCloseTo((rep.rows[0]!.auroc + rep.rows[1]!.auroc) / 2, 12);
      }
    }
    const md = readFileSync(result.files.markdown, 'utf8');
    expect(md).toContain('## Outliers: none');
    expect(md).toContain('## Outliers: noise');
    expect(md).toContain('## Outliers: generated');
    // the reference's reading of "sigma^2 = 50": z std 50 (BigGAN-PyTorch's z_var), G in training mode
    expect(md).toMatch(/on 32 outliers from biggan\(z std=50, train-mode BN\) \(\{"sampler":"biggan-latent","sigma2":50,"latentScale":"std","zStd":50,"mode":"train",/);
    expect(md).toContain('| Detector | Outlier set | AUROC | AUPR-IN | AUPR-OUT | FPR95TPR |');
    expect(md).toMatch(/\| MSP \| mean \| \d+\.\d\d \|/);
    expect(md).toContain('Convention ood-positive');
    const csv = readFileSync(result.files.csv, 'utf8').trimEnd().split('\n');
    expect(csv[0]).toBe('outliers,group,detector,outlier_set,AUROC,AUPR-IN,AUPR-OUT,FPR95TPR,n_in,n_out,convention,pr_rule');
    expect(csv.length).toBe(1 + 3 * 2 * 3); // variants x detectors x (2 sets + mean)
    expect(csv.slice(1).every((l) => l.endsWith(',ood-positive,step'))).toBe(true);
    expect(csv.filter((l) => l.startsWith('noise,paper,Energy,mean,')).length).toBe(1);
    const json = JSON.parse(readFileSync(result.files.json, 'utf8'));
    expect(json.convention).toBe('ood-positive');
    expect(json.pr_rule).toBe('step');
    expect(json.convention_description).toMatch(/OOD is the positive class/);
    expect(json.variants.map((v: { outliers: string }) => v.outliers)).toEqual(['none', 'noise', 'generated']);
    expect(Object.keys(json.variants[1].rows[0])).toEqual(['detector', 'outlier_set', 'AUROC', 'AUPR-IN', 'AUPR-OUT', 'FPR95TPR', 'n_in', 'n_out']);
  });

  it('OE fine-tuning lowers the OE loss and moves the outliers towards uniform predictions (higher MSP score)', async () => {
    const train = syntheticImages({ classes: 4, n: 32, seed: SMOKE.seed + 1 });
    const outliers = (await new FileSampler(join(dir, 'outliers', 'noise.npz')).sample(0, 0)).source;
    const T = { mean: CIFAR_MEAN, std: CIFAR_STD };
    const measure = async (weights: string) => {
      const model = new WideResNet(4, { depth: 10, widenFactor: 1, dropRate: 0 });
      await loadModel(weights, model);
      model.eval();
      const loader = new DataLoader({ source: train, batchSize: 32, shuffle: false, workers: 0, transform: T, outliers: { source: outliers, mode: 'paired', batchSize: 32, transform: T } });
      let out = { loss: 0, outlierMsp: 0, inlierMsp: 0 };
      for await (const b of loader.epoch(0)) {
        const [l, mo, mi] = noGrad(() =>
          scope(() => {
            const logits = model.forward(tensor(b.x, b.shape));
            const s = mspScore(logits);
            return [outlierExposureLoss(logits, tensor(b.y, [b.y.length], 'i32'), { averaging: 'separate' }), mean(s.narrow(0, 32, 32)), mean(s.narrow(0, 0, 32))];
          }),
        );
        out = { loss: await l!.item(), outlierMsp: await mo!.item(), inlierMsp: await mi!.item() };
        for (const t of [l, mo, mi]) t!.dispose();
      }
      await loader.close();
      model.dispose();
      return out;
    };
    const before = await measure(join(dir, 'baseline', 'model.safetensors'));
    const after = await measure(join(dir, 'noise', 'model.safetensors'));
    console.log(`OE loss ${before.loss.toFixed(4)} -> ${after.loss.toFixed(4)}; outlier MSP score ${before.outlierMsp.toFixed(4)} -> ${after.outlierMsp.toFixed(4)} (uniform: -0.25); inlier ${before.inlierMsp.toFixed(4)} -> ${after.inlierMsp.toFixed(4)}`);
    expect(after.loss).toBeLessThan(before.loss);
    expect(after.outlierMsp).toBeGreaterThan(before.outlierMsp);
    expect(after.outlierMsp).toBeLessThanOrEqual(-0.25 + 1e-6);
    // and the evaluation saw the same: the uniform-noise test set's mean MSP score went up
    const [none, noise] = result.report.variants;
    expect(noise!.evaluation.meanScores.MSP!['Uniform noise']!).toBeGreaterThan(none!.evaluation.meanScores.MSP!['Uniform noise']!);
  });

  it('a resumed run reuses the generator, every training phase, the outlier sets and the evaluations', async () => {
    const md = readFileSync(result.files.markdown, 'utf8');
    const again: string[] = [];
    const r2 = await runExperiment(SMOKE, { out: dir, workers: 0, resume: true, log: (l) => again.push(l) });
    expect(again.filter((l) => /step \d+\/\d+ loss|iteration \d+\/\d+ D real/.test(l))).toEqual([]); // nothing trained again
    expect(again).toContain(`[biggan] resumed from ${join(dir, 'generator', 'biggan.safetensors')} at iteration 2`);
    for (const v of ['baseline', 'oe-noise', 'oe-generated']) expect(again.some((l) => l.startsWith(`[${v}] resumed from`)), v).toBe(true);
    for (const v of ['noise', 'generated']) expect(again.some((l) => l.startsWith(`[${v}] outliers reused from`)), v).toBe(true);
    expect(readFileSync(r2.files.markdown, 'utf8')).toBe(md);
  });
});
