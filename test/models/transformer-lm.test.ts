/**
 * The word-language-model TransformerModel against pytorch/examples' (scripts/fixtures/
 * torch_models.py): state_dict names and shapes of the paper's generator (with the persistent
 * `pos_encoder.pe` buffer), the example's init, and a small model's log-probabilities (causal
 * mask and generate.py's has_mask=False) and gradients from PyTorch's weights. sampleWords is
 * checked step by step against a host re-run of generate.py's loop with the same noise.
 */
import { describe, it, expect, beforeAll } from 'vitest';
import { engine, read } from '../helpers/gpu.ts';
import { expectClose } from '../helpers/reference.ts';
import { backward, noGrad, tensor, scope, OpError } from '../../src/engine/index.ts';
import { TransformerModel, sampleWords } from '../../src/models/transformer-lm.ts';
import { gumbel } from '../../src/models/sampling.ts';
import { loadFixture, loadNames, expectSameNames, expectGrads, type ModelFixture } from './fixtures.ts';

beforeAll(async () => {
  await engine();
});

function smallModel(fx: ModelFixture, dropout: number): TransformerModel {
  const m = fx.meta;
  return new TransformerModel(Number(m.ntoken), {
    ninp: Number(m.ninp), nhead: Number(m.nhead), nhid: Number(m.nhid), nlayers: Number(m.nlayers), maxLen: Number(m.max_len), dropout,
  });
}

describe('TransformerModel: PyTorch names and init', () => {
  it("the paper's generator (WikiText-2 vocabulary) has the example's state_dict", async () => {
    const m = new TransformerModel(33278);
    try {
      expectSameNames(m, loadNames().transformer_paper_v33278);
      // nn.TransformerEncoder deep-copies its layer: both layers start equal
      const l0 = m.transformer_encoder.layers.at(0).namedParameters();
      const l1 = m.transformer_encoder.layers.at(1).namedParameters();
      for (let i = 0; i < l0.length; i++) expect(Array.from(await read(l1[i][1])), l1[i][0]).toEqual(Array.from(await read(l0[i][1])));
      const enc = await read(m.encoder.weight);
      const dec = await read(m.decoder.weight);
      for (const [w, n] of [[enc, 'encoder'], [dec, 'decoder']] as const) {
        let lo = Infinity;
        let hi = -Infinity;
        for (const v of w) {
          lo = Math.min(lo, v);
          hi = Math.max(hi, v);
        }
        expect(lo, n).toBeGreaterThanOrEqual(Math.fround(-0.1));
        expect(hi, n).toBeLessThanOrEqual(Math.fround(0.1));
        expect(hi - lo, n).toBeGreaterThan(0.199);
      }
      expect((await read(m.decoder.bias!)).every((v) => v === 0)).toBe(true);
    } finally {
      m.dispose();
    }
  });

  it('a model built inside scope() keeps its positional table', async () => {
    const m = scope(() => new TransformerModel(11, { ninp: 8, nhead: 2, nhid: 8, nlayers: 1, maxLen: 6 }));
    try {
      const src = tensor(Int32Array.from([1, 2, 3, 4]), [2, 2]);
      const y = noGrad(() => m.forward(src));
      const v = await read(y);
      expect(v.every(Number.isFinite)).toBe(true);
      // log-probabilities: each row's exp sums to 1
      for (let r = 0; r < 4; r++) expect(v.slice(r * 11, r * 11 + 11).reduce((a, b) => a + Math.exp(b), 0)).toBeCloseTo(1, 5);
      src.dispose();
      y.dispose();
    } finally {
      m.dispose();
    }
  });

  it('bad inputs are refused with the shapes named', () => {
    const m = new TransformerModel(11, { ninp: 8, nhead: 2, nhid: 8, nlayers: 1, maxLen: 6 });
    try {
      const f = tensor(new Float32Array(6), [3, 2]);
      expect(() => m.forward(f)).toThrow(/i32 token ids \[S, B\]/);
      const long = tensor(new Int32Array(14), [7, 2]);
      expect(() => m.forward(long)).toThrow(/exceeds max_len 6/);
      expect(() => new TransformerModel(11, { ninp: 9, nhead: 2 })).toThrow(OpError);
      f.dispose();
      long.dispose();
    } finally {
      m.dispose();
    }
  });
});

describe('TransformerModel = word_language_model TransformerModel (golden)', () => {
  it('eval log-probabilities with and without the causal mask; forwardLast is the last row', async () => {
    const fx = loadFixture('transformer');
    const m = smallModel(fx, 0.2);
    try {
      // the sinusoidal table as the example computes it, before loading PyTorch's
      expectClose(await read(m.pos_encoder.pe), fx.f32('param.pos_encoder.pe'), { atol: 1e-6, rtol: 0, what: 'pe' });
      m.loadStateDict(fx.state);
      m.eval();
      const src = fx.tensor('in.src');
      const { y, n, last } = noGrad(() => ({ y: m.forward(src), n: m.forward(src, { mask: false }), last: m.forwardLast(src) }));
      expect(y.shape).toEqual([7, 3, 31]);
      expectClose(await read(y), fx.f32('eval.y'), { atol: 2e-5, rtol: 1e-4, what: 'eval.y' });
      expectClose(await read(n), fx.f32('eval.nomask'), { atol: 2e-5, rtol: 1e-4, what: 'eval.nomask' });
      expect(last.shape).toEqual([3, 31]);
      expectClose(await read(last), fx.f32('eval.y').slice(6 * 3 * 31), { atol: 2e-5, rtol: 1e-4, what: 'forwardLast' });
      for (const t of [y, n, last, src]) t.dispose();
    } finally {
      m.dispose();
    }
  });

  it('training forward + backward (dropout 0): every gradient', async () => {
    const fx = loadFixture('transformer');
    const m = smallModel(fx, 0);
    try {
      m.loadStateDict(fx.state);
      m.train();
      const src = fx.tensor('in.src');
      const y = m.forward(src);
      expectClose(await read(y), fx.f32('train.y'), { atol: 2e-5, rtol: 1e-4, what: 'train.y' });
      backward(y, fx.tensor('in.gy'));
      await expectGrads(fx, m, { atol: 5e-5, rtol: 5e-4 });
      y.dispose();
      src.dispose();
    } finally {
      m.dispose();
    }
  });
});

describe('sampleWords (generate.py)', () => {
  it("follows generate.py's loop: argmax(logp_last / T + Gumbel) over a sliding context", async () => {
    const fx = loadFixture('transformer');
    const m = smallModel(fx, 0.2);
    try {
      m.loadStateDict(fx.state);
      const V = m.ntoken;
      const seed = 77;
      const T = 2;
      const maxContext = 4;
      const progress: number[] = [];
      const words = await sampleWords(m, { numWords: 6, temperature: T, seed, start: 5, maxContext, chunk: 4, onProgress: (d) => progress.push(d) });
      expect(progress).toEqual([4, 6]);
      expect(m.training).toBe(true); // restored
      expect(words.length).toBe(6);
      // host re-run: the same model calls, the same noise (draw i + 1 at counter block (i + 1) * ceil(V / 4))
      m.eval();
      const seq = [5];
      const blocks = Math.ceil(V / 4);
      for (let i = 0; i < 6; i++) {
        const ctx = seq.slice(-maxContext);
        const src = tensor(Int32Array.from(ctx), [ctx.length, 1]);
        const lp = await read(noGrad(() => m.forward(src, { mask: false })));
        const g = await read(gumbel([1, V], { seed, offset: (i + 1) * blocks }));
        const last = lp.slice((ctx.length - 1) * V);
        let best = 0;
        for (let k = 1; k < V; k++) if (last[k] / T + g[k] > last[best] / T + g[best]) best = k;
        expect(words[i], `word ${i}`).toBe(best);
        seq.push(best);
        src.dispose();
      }
      // two streams side by side: each a generate.py run, noise [2, V] per draw
      const both = await sampleWords(m, { numWords: 5, temperature: T, seed, start: 9, maxContext: 3, streams: 2, chunk: 2 });
      expect(both.length).toBe(10);
      const seqs = [[9], [9]];
      const blocks2 = Math.ceil((2 * V) / 4);
      for (let i = 0; i < 5; i++) {
        const ctx = seqs.map((q) => q.slice(-3));
        const L = ctx[0].length;
        const src = tensor(Int32Array.from({ length: L * 2 }, (_, k) => ctx[k % 2][Math.floor(k / 2)]), [L, 2]);
        const lp = await read(noGrad(() => m.forward(src, { mask: false })));
        const g = await read(gumbel([2, V], { seed, offset: (i + 1) * blocks2 }));
        for (let b = 0; b < 2; b++) {
          const last = lp.slice(((L - 1) * 2 + b) * V, ((L - 1) * 2 + b + 1) * V);
          let best = 0;
          for (let k = 1; k < V; k++) if (last[k] / T + g[b * V + k] > last[best] / T + g[b * V + best]) best = k;
          expect(both[b * 5 + i], `stream ${b} word ${i}`).toBe(best);
          seqs[b].push(best);
        }
        src.dispose();
      }
      m.train();
      // reproducible with a seed, different for another, ids in range
      const again = await sampleWords(m, { numWords: 6, temperature: T, seed, start: 5, maxContext });
      expect(Array.from(again)).toEqual(Array.from(words));
      const other = await sampleWords(m, { numWords: 40, temperature: T, seed: 78 });
      const other2 = await sampleWords(m, { numWords: 40, temperature: T, seed: 79 });
      expect(Array.from(other)).not.toEqual(Array.from(other2));
      expect(other.every((w) => w >= 0 && w < V)).toBe(true);
      const one = await sampleWords(m, { numWords: 5, seed, maxContext: 1, start: 3, chunk: 1 });
      expect(one.length).toBe(5);
      expect(await sampleWords(m, { numWords: 0 })).toEqual(new Int32Array(0));
      await expect(sampleWords(m, { numWords: 3, maxContext: 17 })).rejects.toThrow(/maxContext/);
      await expect(sampleWords(m, { numWords: 3, temperature: 0 })).rejects.toThrow(/temperature/);
      await expect(sampleWords(m, { numWords: 3, start: 31 })).rejects.toThrow(/start token/);
      await expect(sampleWords(m, { numWords: 3, chunk: 0 })).rejects.toThrow(/chunk/);
      await expect(sampleWords(m, { numWords: 3, streams: 0 })).rejects.toThrow(/streams/);
    } finally {
      m.dispose();
    }
  });
});
