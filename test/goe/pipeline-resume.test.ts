/**
 * Exact resume: an OE fine-tuning run (WRN-10-1 with dropout 0.3, mixed inlier/outlier batches,
 * SGD with momentum and a per-step cosine schedule) interrupted mid-epoch and resumed from its
 * checkpoint into freshly built objects gives bit-identical losses and weights to the same run
 * done without interruption: model, optimizer, scheduler, the engine's random generator (dropout
 * masks) and the data loader's position are all restored.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { engine } from '../helpers/gpu.ts';
import { LambdaLR, SGD, manualSeed, releaseParameterArena } from '../../src/engine/index.ts';
import { CIFAR_MEAN, CIFAR_STD, DataLoader } from '../../src/data/index.ts';
import { WideResNet } from '../../src/models/index.ts';
import { ImageNoiseSampler, syntheticImages, trainLoop, type TrainLoopResult } from '../../src/goe/index.ts';

let dir: string;
beforeAll(async () => {
  await engine();
  dir = mkdtempSync(join(tmpdir(), 'goe-resume-'));
});
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
  releaseParameterArena();
});

const train = syntheticImages({ classes: 3, n: 21, seed: 5 });
const T = { mean: CIFAR_MEAN, std: CIFAR_STD };

async function run(ckpt: string, opts: { stopAfter?: number; resume?: boolean; initSeed: number }): Promise<{ r: TrainLoopResult; weights: Map<string, Float32Array> }> {
  const outliers = (await new ImageNoiseSampler({ kind: 'uniform' }).sample(15, 9)).source;
  manualSeed(opts.initSeed); // a resumed run starts from other weights: the checkpoint must overwrite them
  const model = new WideResNet(3, { depth: 10, widenFactor: 1, dropRate: 0.3 });
  const loader = new DataLoader({ source: train, batchSize: 12, seed: 3, transform: T, workers: 0, outliers: { source: outliers, mode: 'mixed', transform: T } });
  const opt = new SGD(model.parameters(), { lr: 0.02, momentum: 0.9, weightDecay: 5e-4 });
  const total = 2 * loader.numBatches;
  const sched = new LambdaLR(opt, (s: number) => 0.5 * (1 + Math.cos((s / total) * Math.PI)));
  const lines: string[] = [];
  try {
    const r = await trainLoop({
      name: 'oe-test', model, loader, epochs: 2, optimizer: opt, scheduler: sched, schedulerUnit: 'step', loss: 'oe',
      logEvery: 1, checkpoint: ckpt, checkpointEvery: 1000, resume: opts.resume, stopAfter: opts.stopAfter, log: (l) => lines.push(l),
    });
    expect(lines.every((l) => l.startsWith('[oe-test]'))).toBe(true);
    const weights = new Map<string, Float32Array>();
    for (const [k, t] of model.stateDict()) weights.set(k, Float32Array.from((await t.data()) as Float32Array));
    return { r, weights };
  } finally {
    await loader.close();
    opt.dispose();
    model.dispose();
  }
}

describe('training loop: exact resume', () => {
  it('interrupted mid-epoch and resumed = uninterrupted, bit for bit (losses and every weight and buffer)', async () => {
    const full = await run(join(dir, 'a.safetensors'), { initSeed: 1 });
    expect(full.r.steps).toBe(6); // 36 samples in batches of 12, 2 epochs
    expect(full.r.losses.map((l) => l.step)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(full.r.interrupted).toBe(false);
    for (const l of full.r.losses) expect(Number.isFinite(l.loss)).toBe(true);

    const ckpt = join(dir, 'b.safetensors');
    const first = await run(ckpt, { initSeed: 1, stopAfter: 2 });
    expect(first.r.interrupted).toBe(true);
    expect(first.r.steps).toBe(2);
    expect(existsSync(ckpt)).toBe(true);
    const second = await run(ckpt, { initSeed: 77, resume: true });
    expect(second.r.resumedFrom).toEqual({ epoch: 0, batch: 2, step: 2 });
    expect(second.r.steps).toBe(6);
    // the resumed call reports the losses of both calls
    expect(second.r.losses.map((l) => l.loss)).toEqual(full.r.losses.map((l) => l.loss));
    expect([...second.weights.keys()]).toEqual([...full.weights.keys()]);
    for (const [k, w] of full.weights) expect(Buffer.from(second.weights.get(k)!.buffer).equals(Buffer.from(w.buffer)), k).toBe(true);
  });

  it('a checkpoint of another loop is refused with a clear message', async () => {
    const ckpt = join(dir, 'a.safetensors');
    const model = new WideResNet(3, { depth: 10, widenFactor: 1, dropRate: 0 });
    const loader = new DataLoader({ source: train, batchSize: 12, workers: 0 });
    const opt = new SGD(model.parameters(), { lr: 0.01 });
    try {
      await expect(trainLoop({ name: 'other', model, loader, epochs: 1, optimizer: opt, loss: 'ce', checkpoint: ckpt, resume: true, log: () => {} })).rejects.toThrow(/not a checkpoint of the "other" training loop/);
    } finally {
      await loader.close();
      opt.dispose();
      model.dispose();
    }
  });
});
