/**
 * `--oe-repo` (issue 14, item 8) and runs whose requested variants did nothing (item 9).
 *
 * The OE repository's CIFAR/oe_tune.py crops and flips the inliers (train_transform) and the
 * outliers (ood_data's transform) alike, and calls scheduler.step() before optimizer.step() in every
 * batch, so the k-th batch (1-based) trains at lambda(k); baseline.py does the same. The runner's
 * wiring is checked with trainLoop and DataLoader recorded (no training: what each phase is given);
 * the loop's order is checked on a real model, reading the learning rate each update used.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { engine } from '../helpers/gpu.ts';
import { LambdaLR, SGD, saveModel } from '../../src/engine/index.ts';
import type { LoaderOptions } from '../../src/data/loader.ts';
import type { TrainLoopOptions, TrainLoopResult } from '../../src/goe/train/loop.ts';

const recorded = vi.hoisted(() => ({ loaders: [] as unknown[], loops: [] as unknown[], fakeSteps: null as number | null }));

vi.mock('../../src/data/index.ts', async (importOriginal) => {
  const orig = await importOriginal<typeof import('../../src/data/index.ts')>();
  class RecordingLoader extends orig.DataLoader {
    constructor(opts: LoaderOptions) {
      super(opts);
      recorded.loaders.push(opts);
    }
  }
  return { ...orig, DataLoader: RecordingLoader };
});

vi.mock('../../src/goe/train/loop.ts', async (importOriginal) => {
  const orig = await importOriginal<typeof import('../../src/goe/train/loop.ts')>();
  return {
    ...orig,
    // fakeSteps set: record what the phase was given and train nothing; else the real loop
    trainLoop: async (o: TrainLoopOptions): Promise<TrainLoopResult> => {
      if (recorded.fakeSteps === null) return orig.trainLoop(o);
      recorded.loops.push(o);
      return { steps: recorded.fakeSteps, epochs: 1, losses: [], stepsPerSecond: 0, seconds: 0, resumedFrom: null, interrupted: false };
    },
  };
});

const { WideResNet } = await import('../../src/models/index.ts');
const { DataLoader } = await import('../../src/data/index.ts');
const { trainLoop } = await import('../../src/goe/train/loop.ts');
const { SMOKE, EXPERIMENTS, ExperimentInputError, isInputError, oeRepoFinetune, runExperiment, syntheticImages } = await import('../../src/goe/index.ts');
const { runExperimentCli } = await import('../../src/cli/experiment.ts');

let root: string;
let pretrained: string;

beforeAll(async () => {
  await engine();
  root = mkdtempSync(join(tmpdir(), 'goe-oe-repo-'));
  // the smoke classifier's weights, so runs skip baseline training (--pretrained)
  pretrained = join(root, 'base.safetensors');
  const m = new WideResNet(4, { depth: 10, widenFactor: 1, dropRate: 0 });
  await saveModel(pretrained, m);
  m.dispose();
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

const CROP_FLIP = { randomCrop: { size: 32, padding: 4 }, hflip: true };

describe('--oe-repo: the OE repository recipe', () => {
  it('config: crop + flip and the scheduler stepped before the update (fine-tuning and the CIFAR baseline)', () => {
    expect(oeRepoFinetune(SMOKE.finetune)).toMatchObject({ augment: true, schedulerStep: 'before-update', schedule: 'cosine', mode: 'paired' });
    for (const name of ['cifar10', 'cifar100']) expect(EXPERIMENTS[name]!.pretrain).toMatchObject({ schedule: 'cosine', schedulerStep: 'before-update', augment: true });
    // the paper's fine-tuning (the notebooks) does not augment and keeps a constant rate
    expect(EXPERIMENTS.cifar10!.finetune.augment).toBeUndefined();
    expect(EXPERIMENTS.cifar10!.finetune.schedule).toBe('constant');
  });

  it('fine-tuning crops and flips inliers and outliers alike and steps the scheduler first; without it, neither', async () => {
    const phases = async (oeRepo: boolean) => {
      recorded.loaders.length = 0;
      recorded.loops.length = 0;
      recorded.fakeSteps = 1;
      try {
        await runExperiment(SMOKE, { out: join(root, `run-${oeRepo}`), pretrained, variants: ['noise'], oeRepo, workers: 0, log: () => {} });
      } finally {
        recorded.fakeSteps = null;
      }
      const loops = recorded.loops as TrainLoopOptions[];
      expect(loops.map((l) => l.name)).toEqual(['oe-noise']);
      const loader = recorded.loaders.find((l) => (l as LoaderOptions).outliers !== undefined) as LoaderOptions;
      return { loop: loops[0]!, loader };
    };
    const oe = await phases(true);
    expect(oe.loader.transform).toMatchObject(CROP_FLIP);
    expect(oe.loader.outliers!.transform).toMatchObject(CROP_FLIP);
    expect(oe.loader.transform).toMatchObject({ mean: expect.any(Array), std: expect.any(Array) }); // normalised after the crop, as ToTensor + Normalize
    expect(oe.loader.outliers).toMatchObject({ mode: 'paired', batchSize: 256 });
    expect([oe.loop.schedulerUnit, oe.loop.schedulerBeforeUpdate, oe.loop.scheduler !== undefined]).toEqual(['step', true, true]);

    const paper = await phases(false);
    expect(paper.loader.transform).not.toHaveProperty('randomCrop');
    expect(paper.loader.outliers!.transform).not.toHaveProperty('randomCrop');
    expect(paper.loader.outliers!.transform).not.toHaveProperty('hflip');
    expect(paper.loop.schedulerBeforeUpdate).toBe(false);
  });

  it('trainLoop: before the update, batch k trains at lambda(k); after it (the default), at lambda(k - 1)', async () => {
    const lambda = (k: number) => 1 / (1 + k);
    const run = async (before: boolean) => {
      const model = new WideResNet(3, { depth: 10, widenFactor: 1, pooling: 'global' });
      const used: number[] = [];
      class Recording extends SGD {
        override step(): void {
          used.push(this.paramGroups[0]!.options.lr);
          super.step();
        }
      }
      const opt = new Recording(model.parameters(), { lr: 0.1 });
      const loader = new DataLoader({ source: syntheticImages({ classes: 3, n: 8, seed: 1, size: 8 }), batchSize: 4, seed: 2, workers: 0 });
      try {
        await trainLoop({ name: 'order', model, loader, epochs: 2, optimizer: opt, scheduler: new LambdaLR(opt, lambda), schedulerUnit: 'step', schedulerBeforeUpdate: before, loss: 'ce', logEvery: 100, log: () => {} });
      } finally {
        await loader.close();
        opt.dispose();
        model.dispose();
      }
      return used;
    };
    const k = [1, 2, 3, 4];
    expect(await run(true)).toEqual(k.map((i) => expect.closeTo(0.1 * lambda(i), 7)));
    expect(await run(false)).toEqual(k.map((i) => expect.closeTo(0.1 * lambda(i - 1), 7)));
  });
});

describe('a run whose requested variants did nothing exits non-zero (exit 2)', () => {
  it('no variant selected: refused before anything is written', async () => {
    const e = await runExperiment(SMOKE, { out: join(root, 'none-selected'), variants: [], log: () => {} }).catch((x) => x);
    expect(e).toBeInstanceOf(ExperimentInputError);
    expect((e as Error).message).toMatch(/^no outlier variant to run for smoke: name at least one with --variants \(has: none, noise, generated\)$/);
  });

  it('a variant that trained 0 steps: reports written, then one line and exit 2', async () => {
    recorded.fakeSteps = 0;
    const err: string[] = [];
    const out: string[] = [];
    try {
      const r = await runExperimentCli('smoke', { out: join(root, 'idle'), pretrained, variants: ['none', 'noise'], workers: 0 }, { stdout: (t) => out.push(t), stderr: (t) => err.push(t) });
      expect(r.code).toBe(2);
    } finally {
      recorded.fakeSteps = null;
    }
    const text = err.join('');
    expect(text.trimEnd().split('\n')).toHaveLength(1);
    expect(text).toMatch(/^goe experiment smoke: requested variant\(s\) did nothing: noise ran 0 fine-tuning steps \(2 epochs of \d+ batches\); the others' results are in .*results\.md\n$/);
    expect(text).not.toMatch(/\n\s+at /);
    expect(isInputError(new ExperimentInputError('x'))).toBe(true);
  });
});
