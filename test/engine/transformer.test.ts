/**
 * Module-level goldens from PyTorch (scripts/fixtures/torch_seq.py, torch 1.13 in float64 from
 * float32-rounded inputs and weights): nn.MultiheadAttention and nn.TransformerEncoderLayer
 * forward and backward from the same weights, loaded by PyTorch's parameter names. Plus the
 * positional encodings and the modules' dropout behaviour.
 */
import { describe, it, expect, beforeAll } from 'vitest';
import { readFileSync } from 'node:fs';
import { engine, t32, read } from '../helpers/gpu.ts';
import { expectClose, randArray } from '../helpers/reference.ts';
import { backward, tensor, type Tensor } from '../../src/engine/index.ts';
import { sinusoidalTable, addPositional } from '../../src/engine/ops/positional.ts';
import { parseSafetensors, type SafeTensor } from '../../src/engine/io/index.ts';
import { MultiheadAttention } from '../../src/engine/nn/attention.ts';
import { TransformerEncoderLayer, LayerNorm, PositionalEncoding, LearnedPositionalEmbedding } from '../../src/engine/nn/transformer.ts';
import type { Module } from '../../src/engine/nn/module.ts';

interface Fixture {
  meta: Record<string, string>;
  get(name: string): SafeTensor;
  tensor(name: string, grad?: boolean): Tensor;
  params: Map<string, { shape: number[]; data: Float32Array }>;
}

function fixture(name: string): Fixture {
  // a plain Uint8Array copy: parseSafetensors slices its input, and a Node Buffer's slice is a view
  const file = parseSafetensors(new Uint8Array(readFileSync(new URL(`../fixtures/seq/${name}.safetensors`, import.meta.url))));
  const get = (n: string) => {
    const t = file.tensors.get(n);
    if (!t) throw new Error(`${name}: no tensor ${n}`);
    return t;
  };
  const params = new Map<string, { shape: number[]; data: Float32Array }>();
  for (const [n, t] of file.tensors) if (n.startsWith('param.')) params.set(n.slice(6), { shape: t.shape, data: t.data as Float32Array });
  return {
    meta: file.metadata,
    get,
    tensor: (n, grad = false) => {
      const t = get(n);
      const x = tensor(t.data as Float32Array, t.shape);
      x.requiresGrad = grad;
      return x;
    },
    params,
  };
}

async function checkGrads(fx: Fixture, m: Module, extra: Record<string, Tensor>) {
  const tol = { atol: 2e-5, rtol: 2e-4 };
  for (const [n, p] of m.namedParameters()) {
    expect(p.grad, `grad of ${n}`).not.toBeNull();
    expectClose(await read(p.grad!), fx.get(`grad.${n}`).data as Float32Array, { ...tol, what: `grad.${n}` });
  }
  for (const [n, t] of Object.entries(extra)) expectClose(await read(t.grad!), fx.get(`grad.${n}`).data as Float32Array, { ...tol, what: `grad.${n}` });
}

beforeAll(async () => {
  await engine();
});

describe('MultiheadAttention = torch.nn.MultiheadAttention', () => {
  for (const name of ['mha_padding', 'mha_causal_padding']) {
    it(`${name}: output and every gradient`, async () => {
      const fx = fixture(name);
      const E = Number(fx.meta.E);
      const H = Number(fx.meta.H);
      const m = new MultiheadAttention(E, H);
      expect(m.namedParameters().map(([n]) => n).sort()).toEqual([...fx.params.keys()].sort());
      m.loadStateDict(fx.params);
      const x = fx.tensor('in.x', true);
      const mask = fx.tensor('in.key_padding_mask');
      const y = m.forward(x, x, x, { keyPaddingMask: mask, causal: fx.meta.causal === '1' });
      expectClose(await read(y), fx.get('out.y').data as Float32Array, { atol: 1e-5, rtol: 1e-4, what: 'out.y' });
      backward(y, fx.tensor('in.gout'));
      await checkGrads(fx, m, { x });
    });
  }

  it('cross-attention (separate query and key/value) matches the packed path on equal inputs', async () => {
    const m = new MultiheadAttention(8, 2, { batchFirst: true });
    const x = t32(randArray(2 * 5 * 8, 3), [2, 5, 8]);
    const x2 = t32(randArray(2 * 5 * 8, 3), [2, 5, 8]);
    const a = await read(m.forward(x, x, x));
    const b = await read(m.forward(x, x2, x2));
    expectClose(b, a, { atol: 1e-6, rtol: 1e-5 });
  });
});

describe('TransformerEncoderLayer = torch.nn.TransformerEncoderLayer', () => {
  for (const name of ['encoder_postnorm_relu', 'encoder_prenorm_gelu']) {
    it(`${name}: output and every gradient`, async () => {
      const fx = fixture(name);
      const m = new TransformerEncoderLayer(Number(fx.meta.d), Number(fx.meta.nhead), {
        dimFeedforward: Number(fx.meta.ff),
        dropout: 0,
        activation: fx.meta.activation as 'relu' | 'gelu',
        batchFirst: fx.meta.batch_first === '1',
        normFirst: fx.meta.norm_first === '1',
      });
      expect(m.namedParameters().map(([n]) => n).sort()).toEqual([...fx.params.keys()].sort());
      m.loadStateDict(fx.params);
      const x = fx.tensor('in.x', true);
      const y = m.forward(x, { keyPaddingMask: fx.tensor('in.key_padding_mask') });
      expectClose(await read(y), fx.get('out.y').data as Float32Array, { atol: 2e-5, rtol: 2e-4, what: 'out.y' });
      backward(y, fx.tensor('in.gout'));
      await checkGrads(fx, m, { x });
    });
  }

  it('dropout: training output differs between seeds, eval output is deterministic and dropout-free', async () => {
    const m = new TransformerEncoderLayer(8, 2, { dimFeedforward: 12, dropout: 0.5 });
    const x = t32(randArray(5 * 2 * 8, 9), [5, 2, 8]);
    const a = await read(m.forward(x, { seed: 1 }));
    const b = await read(m.forward(x, { seed: 2 }));
    expect(Array.from(a)).not.toEqual(Array.from(b));
    m.eval();
    const c = await read(m.forward(x, { seed: 1 }));
    const d = await read(m.forward(x, { seed: 2 }));
    expect(Array.from(c)).toEqual(Array.from(d));
  });

  it('LayerNorm module has PyTorch names and defaults', () => {
    const ln = new LayerNorm(6);
    expect(ln.namedParameters().map(([n, p]) => [n, p.shape])).toEqual([['weight', [6]], ['bias', [6]]]);
  });
});

describe('positional encodings', () => {
  it('sinusoidal table = PyTorch word-LM PositionalEncoding formula, added to [T, B, d] and [B, T, d]', async () => {
    const maxLen = 11;
    const d = 7;
    const pe = await read(sinusoidalTable(maxLen, d));
    for (let pos = 0; pos < maxLen; pos++)
      for (let i = 0; i < d; i++) {
        const div = Math.exp((i - (i % 2)) * (-Math.log(10000) / d));
        const want = i % 2 === 0 ? Math.sin(pos * div) : Math.cos(pos * div);
        expect(Math.abs(pe[pos * d + i] - want)).toBeLessThan(1e-6);
      }
    const T = 5;
    const B = 3;
    const xs = randArray(T * B * d, 4);
    const ySeq = await read(addPositional(t32(xs, [T, B, d]), sinusoidalTable(maxLen, d)));
    const yBf = await read(addPositional(t32(xs, [B, T, d]), sinusoidalTable(maxLen, d), true));
    for (let t = 0; t < T; t++)
      for (let b = 0; b < B; b++)
        for (let i = 0; i < d; i++) {
          expect(ySeq[(t * B + b) * d + i]).toBeCloseTo(Math.fround(xs[(t * B + b) * d + i]) + pe[t * d + i], 5);
          expect(yBf[(b * T + t) * d + i]).toBeCloseTo(Math.fround(xs[(b * T + t) * d + i]) + pe[t * d + i], 5);
        }
    const m = new PositionalEncoding(d, { dropout: 0, maxLen });
    expectClose(await read(m.forward(t32(xs, [T, B, d]))), ySeq, { atol: 1e-6 });
    expect(m.namedParameters()).toEqual([]);
  });

  it('learned embedding gets the sum over the batch as its gradient', async () => {
    const m = new LearnedPositionalEmbedding(9, 4);
    const x = t32(randArray(2 * 3 * 4, 5), [2, 3, 4], true);
    const g = randArray(2 * 3 * 4, 6);
    backward(m.forward(x), t32(g, [2, 3, 4]));
    const gw = await read(m.weight.grad!);
    for (let t = 0; t < 9; t++)
      for (let i = 0; i < 4; i++) {
        const want = t < 3 ? Math.fround(g[t * 4 + i]) + Math.fround(g[(3 + t) * 4 + i]) : 0;
        expect(gw[t * 4 + i]).toBeCloseTo(want, 5);
      }
    expectClose(await read(x.grad!), Float64Array.from(Float32Array.from(g)), { atol: 0 });
  });
});
