/**
 * The models free every intermediate: after a warm-up, a training step (forward, backward,
 * zeroGrad), an eval forward under noGrad and a sampling run leave the live tensor and storage
 * counts where they were (a leak would grow them every step of a long run).
 */
import { describe, it, expect, beforeAll } from 'vitest';
import { engine } from '../helpers/gpu.ts';
import { backward, noGrad, tensor, memoryStats, type Tensor } from '../../src/engine/index.ts';
import type { Module } from '../../src/engine/nn/module.ts';
import { WideResNet } from '../../src/models/wideresnet.ts';
import { GRUClassifier } from '../../src/models/gru-classifier.ts';
import { TransformerModel, sampleWords } from '../../src/models/transformer-lm.ts';

beforeAll(async () => {
  await engine();
});

async function steps(m: Module & { forward(x: Tensor): Tensor }, x: Tensor, gy: Tensor, extra?: () => Promise<void>) {
  const once = async () => {
    m.train();
    const y = m.forward(x);
    backward(y, gy);
    y.dispose();
    await m.parameters()[0].grad!.data();
    m.zeroGrad();
    m.eval();
    const e = noGrad(() => m.forward(x));
    await e.data();
    e.dispose();
    if (extra) await extra();
  };
  await once(); // warm-up: gradients slots, pipelines
  const before = memoryStats();
  await once();
  await once();
  expect(memoryStats()).toEqual(before);
}

describe('no tensor leaks across steps', () => {
  it('WideResNet (dropout on), GRUClassifier, TransformerModel (with sampleWords)', async () => {
    const wrn = new WideResNet(5, { depth: 10, widenFactor: 1, dropRate: 0.3 });
    const x = tensor(Float32Array.from({ length: 2 * 3 * 32 * 32 }, (_, i) => Math.sin(i * 0.1)), [2, 3, 32, 32]);
    const gy = tensor(Float32Array.from({ length: 10 }, (_, i) => i / 10 - 0.5), [2, 5]);
    await steps(wrn, x, gy);

    const gru = new GRUClassifier(3, 17, { hiddenSize: 12 });
    const ids = tensor(Int32Array.from([1, 1, 4, 5, 6, 7, 8, 9, 10, 11]), [2, 5]);
    const gg = tensor(Float32Array.from([0.1, -0.2, 0.3, 0.4, -0.5, 0.6]), [2, 3]);
    await steps(gru, ids, gg);

    const lm = new TransformerModel(13, { ninp: 8, nhead: 2, nhid: 12, nlayers: 2, maxLen: 8, dropout: 0.2 });
    const src = tensor(Int32Array.from([1, 2, 3, 4, 5, 6]), [3, 2]);
    const gl = tensor(Float32Array.from({ length: 3 * 2 * 13 }, (_, i) => Math.cos(i)), [3, 2, 13]);
    await steps(lm, src, gl, async () => {
      await sampleWords(lm, { numWords: 10, seed: 1, maxContext: 4, chunk: 3 });
    });
    for (const m of [wrn, gru, lm]) m.dispose();
    for (const t of [x, gy, ids, gg, src, gl]) t.dispose();
  });
});
