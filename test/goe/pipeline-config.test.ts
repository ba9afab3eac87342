/**
 * The experiment configurations carry the paper's settings (Appendix A, section 3, and the facts
 * in shared/REFERENCE.md), and a run with missing data stops before any training with a message
 * naming the file, its folder and its URL.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { engine } from '../helpers/gpu.ts';
import { DatasetUnavailableError } from '../../src/data/index.ts';
import { EXPERIMENTS, experimentConfig, isInputError, oeRepoFinetune, runExperiment } from '../../src/goe/index.ts';

describe('paper settings', () => {
  it('CIFAR-10/100: WRN-40-2 (dropout 0.3), OE 25 epochs, SGD lr 0.001, batch 256 mixed, lambda 0.5, no augmentation, CIFAR normalisation', () => {
    for (const name of ['cifar10', 'cifar100']) {
      const c = experimentConfig(name);
      expect(c.model).toEqual({ kind: 'wrn', depth: 40, widenFactor: 2, dropRate: 0.3 });
      expect(c.finetune).toMatchObject({ epochs: 25, batchSize: 256, optimizer: { kind: 'sgd', lr: 0.001 }, lambda: 0.5, mode: 'mixed', fromBaseline: true, schedule: 'constant' });
      expect(c.finetune.augment).toBeFalsy();
      expect(c.normalize).toBe(true);
      expect(c.ood.map((o) => o.name)).toEqual(['Textures', 'LSUN Crop', 'LSUN Resize', 'TinyImageNet Crop', 'TinyImageNet Resize']);
      expect(c.detectors).toEqual(['MSP', 'Energy']);
      expect(c.outliers.map((o) => o.name)).toEqual(['none', 'noise', 'generated', 'tiny300k']);
      expect(c.outliers[1]).toMatchObject({ kind: 'image-noise', noise: 'uniform', count: 80000, values: 'randint255' });
      expect(c.outliers[2]).toMatchObject({ kind: 'biggan', sigma2: 50, count: 50000, train: { iterations: 125000 } });
      // the OE repo's baseline recipe for the pre-trained models the paper fine-tunes
      expect(c.pretrain).toMatchObject({ epochs: 100, batchSize: 128, augment: true, schedule: 'cosine', optimizer: { kind: 'sgd', lr: 0.1, momentum: 0.9, nesterov: true, weightDecay: 5e-4 } });
    }
    expect(experimentConfig('cifar100').outliers[2]).toMatchObject({ file: 'goe-cifar100-samples' });
    expect(experimentConfig('cifar10').data).toEqual({ kind: 'cifar', variant: 'cifar10' });
  });

  it("the OE repo's fine-tuning variant: 10 epochs, cosine lr 0.001, Nesterov 0.9, wd 5e-4, 128 + 256 paired, separate means", () => {
    expect(oeRepoFinetune(experimentConfig('cifar100').finetune)).toMatchObject({
      epochs: 10, batchSize: 128, outlierBatchSize: 256, mode: 'paired', averaging: 'separate', schedule: 'cosine', lambda: 0.5,
      optimizer: { kind: 'sgd', lr: 0.001, momentum: 0.9, nesterov: true, weightDecay: 5e-4 },
    });
  });

  it('20 Newsgroups: GRU (50, 128 x 2), Adam 1e-3, 10 epochs, batch 32, lambda 0.5; LM at T = 2 for 100,000 words; 20-token noise; WikiText-2', () => {
    const c = EXPERIMENTS.newsgroups!;
    expect(c.model).toEqual({ kind: 'gru', embeddingDim: 50, hiddenSize: 128, numLayers: 2 });
    for (const p of [c.pretrain, c.finetune]) expect(p).toMatchObject({ epochs: 10, batchSize: 32, optimizer: { kind: 'adam', lr: 1e-3 } });
    expect(c.finetune.lambda).toBe(0.5);
    expect(c.ood.map((o) => o.name)).toEqual(['Reuters52', 'Multi30k', 'WMT16']);
    const lm = c.outliers.find((o) => o.name === 'generated')!;
    expect(lm).toMatchObject({ kind: 'lm', temperature: 2, train: { epochs: 40 } });
    if (lm.kind === 'lm') expect(lm.count * 20).toBe(100000);
    expect(c.outliers.find((o) => o.name === 'noise')).toMatchObject({ kind: 'token-noise', tokens: 20 });
    expect(c.outliers.find((o) => o.name === 'wiki2')).toMatchObject({ kind: 'wikitext2' });
  });

  it('configs are copies: editing one does not change the registry', () => {
    const c = experimentConfig('smoke');
    c.finetune.epochs = 99;
    expect(EXPERIMENTS.smoke!.finetune.epochs).toBe(2);
    expect(() => experimentConfig('nope')).toThrow(/unknown experiment "nope" \(known: fmnist, images, cifar10, cifar100, newsgroups, smoke, smoke-text\)/);
  });
});

describe('missing data', () => {
  let data: string;
  let out: string;
  beforeAll(async () => {
    await engine();
    data = mkdtempSync(join(tmpdir(), 'goe-nodata-'));
    out = mkdtempSync(join(tmpdir(), 'goe-nodata-run-'));
  });
  afterAll(() => {
    rmSync(data, { recursive: true, force: true });
    rmSync(out, { recursive: true, force: true });
  });

  it('stops before any training with DatasetUnavailableError naming the file, folder and URL', async () => {
    for (const name of ['cifar100', 'newsgroups']) {
      const err = await runExperiment(EXPERIMENTS[name]!, { out: join(out, name), dataDir: data, download: false, log: () => {} }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(DatasetUnavailableError);
      expect(isInputError(err)).toBe(true);
      const msg = (err as Error).message;
      if (name === 'cifar100') {
        expect(msg).toContain('https://www.cs.toronto.edu/~kriz/cifar-100-binary.tar.gz');
        expect(msg).toContain(join(data, 'cifar100', 'cifar-100-binary.tar.gz'));
      } else {
        expect(msg).toContain('20ng-train-no-short.txt');
        expect(msg).toContain(join(data, 'newsgroups20'));
      }
      expect(existsSync(join(out, name, 'baseline'))).toBe(false);
    }
  });
});
