/**
 * Every trainer (classifier loop, BigGAN, word LM) reaches a steady state in GPU objects: after
 * a warm-up, further steps create no bind group, no pooled buffer, no staging buffer, and hold the
 * same live buffers and tensors. A bind group per dispatch, left to V8 to collect, piled up native
 * descriptor sets until the driver segfaulted (bench/NOTES.md, "Bind groups per dispatch"); the
 * device now reuses them (src/engine/bind-groups.ts), which needs pooled buffers handed out in
 * the same order every step (BufferPool.acquire) and one view per panel texture (panelView).
 */
import { describe, it, expect, beforeAll } from 'vitest';
import { engine } from '../helpers/gpu.ts';
import { SGD, memoryStats, runtime, tensor, type Tensor } from '../../src/engine/index.ts';
import { DataLoader } from '../../src/data/index.ts';
import { WideResNet, BigGANTrainer, trainBigGAN } from '../../src/models/index.ts';
import { trainLoop } from '../../src/goe/train/loop.ts';
import { trainWordLm } from '../../src/goe/train/word-lm.ts';
import { syntheticImages, syntheticTexts } from '../../src/goe/experiments/synthetic.ts';

beforeAll(async () => {
  await engine();
});

/** What would grow per step if a trainer leaked GPU objects. */
function gpuObjects() {
  const d = runtime().device;
  const p = d.pool.stats();
  return {
    bindGroupsCreated: d.bindGroupStats().created,
    bindGroupsCached: d.bindGroupStats().cached,
    buffersCreated: p.created,
    buffersLive: p.live,
    staging: d.staging.count,
    tensors: memoryStats().tensors,
  };
}

type Counts = ReturnType<typeof gpuObjects>;

/** Samples taken at each log line after `warmup` of them must all equal the first of those. */
function expectFlat(samples: Counts[], warmup: number, what: string): void {
  expect(samples.length, `${what}: samples`).toBeGreaterThan(warmup + 10);
  const ref = samples[warmup]!;
  // bind groups are created in the first steps, then only found again
  expect(ref.bindGroupsCreated, `${what}: bind groups were used`).toBeGreaterThan(10);
  for (const [i, s] of samples.entries()) if (i > warmup) expect(s, `${what}: GPU objects at log ${i} vs log ${warmup}`).toEqual(ref);
  expect(runtime().device.stats.dispatches).toBeGreaterThan(0);
}

describe('GPU objects stay flat over many training steps', () => {
  it('the classifier loop (WRN-10-1, 40 steps)', async () => {
    const source = syntheticImages({ classes: 3, n: 8, seed: 1, size: 8 });
    const loader = new DataLoader({ source, batchSize: 4, seed: 2, workers: 0 });
    const model = new WideResNet(3, { depth: 10, widenFactor: 1, pooling: 'global' });
    const opt = new SGD(model.parameters(), { lr: 0.01, momentum: 0.9 });
    const samples: Counts[] = [];
    try {
      const r = await trainLoop({
        name: 'objects', model, loader, epochs: 20, optimizer: opt, loss: 'ce', logEvery: 1,
        log: (line) => {
          if (line.includes(' step ')) samples.push(gpuObjects());
        },
      });
      expect(r.steps).toBe(40);
      expect(r.losses.every((l) => Number.isFinite(l.loss))).toBe(true);
    } finally {
      await loader.close();
      opt.dispose();
      model.dispose();
    }
    expectFlat(samples, 4, 'classifier');
  }, 120_000);

  it('the BigGAN trainer (20 iterations of 1 D step and 1 G step)', async () => {
    const trainer = BigGANTrainer.create({ ch: 4, dimZ: 8, nClasses: 3, outChannels: 1, bottomWidth: 4, upsamples: 1 }, {}, { batchSize: 2, numDSteps: 1 });
    const x = tensor(Float32Array.from({ length: 2 * 8 * 8 }, (_, i) => Math.sin(i * 0.37)), [2, 1, 8, 8]);
    const y = tensor(Int32Array.from([0, 2]), [2], 'i32');
    const batches = function* (): Generator<{ x: Tensor; y: Tensor }> {
      for (;;) yield { x, y };
    };
    const samples: Counts[] = [];
    const losses: number[] = [];
    await trainBigGAN(trainer, batches(), {
      iterations: 20, logEvery: 1,
      onLog: (_itr, l) => {
        losses.push(l.dReal, l.dFake, l.g);
        samples.push(gpuObjects());
      },
    });
    expect(trainer.itr).toBe(20);
    expect(losses.every(Number.isFinite)).toBe(true);
    trainer.dispose();
    x.dispose();
    y.dispose();
    expectFlat(samples, 3, 'BigGAN');
  }, 120_000);

  it('the word LM (3 epochs of 12 batches, validation after each)', async () => {
    const t = syntheticTexts({ classes: 2, n: 24, seed: 3 });
    const samples: Counts[] = [];
    let batchesPerEpoch = 0;
    const lm = await trainWordLm({
      texts: t.texts, valTexts: t.texts.slice(0, 6), epochs: 3, emsize: 8, nhid: 8, nlayers: 1, nhead: 2, dropout: 0.2,
      bptt: 6, batchSize: 4, evalBatchSize: 2, logEvery: 1, seed: 1,
      log: (line) => {
        const m = / batch (\d+)\/(\d+) /.exec(line);
        if (!m) return;
        batchesPerEpoch = Number(m[2]);
        samples.push(gpuObjects());
      },
    });
    expect(Number.isFinite(lm.valLoss)).toBe(true);
    lm.model.dispose();
    // the first epoch meets every shape (its last, shorter batch, the validation batches)
    expect(batchesPerEpoch).toBeGreaterThan(5);
    expectFlat(samples, batchesPerEpoch, 'word LM');
  }, 120_000);
});
