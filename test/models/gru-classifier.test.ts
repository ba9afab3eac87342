/**
 * GRUClassifier against pytorch-ood's (scripts/fixtures/torch_models.py): state_dict names and
 * shapes of the paper's model (embedding 50, padding_idx 1, GRU 128 x 2, fc), and a small one
 * (hidden 33) forward in eval mode and forward + backward from PyTorch's weights on left-padded
 * batches (the GRU runs over the padding, as pytorch-ood's does; the feature is h_n[-1]).
 */
import { describe, it, expect, beforeAll } from 'vitest';
import { engine, read } from '../helpers/gpu.ts';
import { expectClose } from '../helpers/reference.ts';
import { backward, noGrad, tensor, OpError } from '../../src/engine/index.ts';
import { GRUClassifier } from '../../src/models/gru-classifier.ts';
import { loadFixture, loadNames, expectSameNames, expectGrads } from './fixtures.ts';

beforeAll(async () => {
  await engine();
});

describe('GRUClassifier: PyTorch names', () => {
  it("the paper's classifier (vocab 25000, 20 classes) has pytorch-ood's state_dict", () => {
    const m = new GRUClassifier(20, 25000);
    try {
      expectSameNames(m, loadNames().gru_paper_v25000_c20);
      expect(m.numParameters()).toBe(25000 * 50 + 384 * 50 + 3 * 384 * 128 + 4 * 384 + 128 * 20 + 20);
    } finally {
      m.dispose();
    }
  });

  it("headName 'linear' gives older pytorch-ood's names; the padding row starts at zero", async () => {
    const m = new GRUClassifier(3, 11, { headName: 'linear', hiddenSize: 8 });
    try {
      expect(m.namedParameters().map(([n]) => n)).toEqual([
        'embedding.weight', 'gru.weight_ih_l0', 'gru.weight_hh_l0', 'gru.bias_ih_l0', 'gru.bias_hh_l0',
        'gru.weight_ih_l1', 'gru.weight_hh_l1', 'gru.bias_ih_l1', 'gru.bias_hh_l1', 'linear.weight', 'linear.bias',
      ]);
      const w = await read(m.embedding.weight);
      expect(Array.from(w.slice(50, 100))).toEqual(new Array(50).fill(0));
      expect(w.slice(0, 50).some((v) => v !== 0)).toBe(true);
    } finally {
      m.dispose();
    }
  });

  it('bad inputs are refused with the shapes named', () => {
    const m = new GRUClassifier(3, 11, { hiddenSize: 8 });
    try {
      const f = tensor(new Float32Array(6), [2, 3]);
      expect(() => m.forward(f)).toThrow(/i32 token ids \[B, T\], got f32 \[2, 3\]/);
      const r3 = tensor(new Int32Array(6), [1, 2, 3]);
      expect(() => m.forward(r3)).toThrow(OpError);
      expect(() => new GRUClassifier(0, 11)).toThrow(/numClasses/);
      f.dispose();
      r3.dispose();
    } finally {
      m.dispose();
    }
  });
});

describe('GRUClassifier = pytorch-ood GRUClassifier (golden)', () => {
  it('eval forward (logits, h_n[-1] features) and training forward + backward', async () => {
    const fx = loadFixture('gru');
    const m = new GRUClassifier(Number(fx.meta.classes), Number(fx.meta.vocab), {
      embeddingDim: Number(fx.meta.embedding_dim), hiddenSize: Number(fx.meta.hidden), numLayers: Number(fx.meta.layers),
    });
    try {
      m.loadStateDict(fx.state);
      const ids = fx.tensor('in.ids');
      expect(ids.dtype).toBe('i32');
      m.eval();
      const { y, f } = noGrad(() => ({ y: m.forward(ids), f: m.features(ids) }));
      expectClose(await read(y), fx.f32('eval.y'), { atol: 2e-5, rtol: 2e-4, what: 'eval.y' });
      expectClose(await read(f), fx.f32('eval.features'), { atol: 2e-5, rtol: 2e-4, what: 'eval.features' });
      y.dispose();
      f.dispose();
      m.train();
      const yt = m.forward(ids);
      expectClose(await read(yt), fx.f32('train.y'), { atol: 2e-5, rtol: 2e-4, what: 'train.y' });
      backward(yt, fx.tensor('in.gy'));
      await expectGrads(fx, m, { atol: 2e-5, rtol: 2e-4 });
      // the padding row gets no gradient
      const g = await read(m.embedding.weight.grad!);
      expect(Array.from(g.slice(50, 100))).toEqual(new Array(50).fill(0));
      yt.dispose();
      ids.dispose();
    } finally {
      m.dispose();
    }
  });
});
