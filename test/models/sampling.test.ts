/**
 * multinomial (Gumbel-max on the GPU): the sampled frequencies against the weights (chi-square),
 * weights vs logits/temperature giving the same draws, seeds, shapes, Gumbel moments, bad input.
 */
import { describe, it, expect, beforeAll } from 'vitest';
import { engine, read } from '../helpers/gpu.ts';
import { tensor, OpError } from '../../src/engine/index.ts';
import { multinomial, gumbel } from '../../src/models/sampling.ts';

beforeAll(async () => {
  await engine();
});

/** Counts of each category in i32 samples. */
async function counts(t: { data(): Promise<ArrayLike<number>> }, K: number): Promise<number[]> {
  const c = new Array<number>(K).fill(0);
  for (const v of Array.from(await t.data())) c[v]++;
  return c;
}

describe('multinomial', () => {
  const w = [0.5, 3, 0, 1.25, 0.05, 2, 1.2]; // one zero weight, one small
  const K = w.length;
  const Z = w.reduce((a, b) => a + b, 0);
  const N = 30_001;

  it('draws categories with probability w_k / sum w (chi-square, 20k+ rows in one call)', async () => {
    const rows = new Float32Array(N * K);
    for (let i = 0; i < N; i++) rows.set(w, i * K);
    const x = tensor(rows, [N, K]);
    const s = multinomial(x, { seed: 12345 });
    expect(s.shape).toEqual([N]);
    expect(s.dtype).toBe('i32');
    const c = await counts(s, K);
    expect(c[2]).toBe(0); // zero weight: never drawn
    let chi2 = 0;
    for (let k = 0; k < K; k++) {
      if (w[k] === 0) continue;
      const e = (N * w[k]) / Z;
      chi2 += (c[k] - e) ** 2 / e;
    }
    // 5 degrees of freedom: P(chi2 > 25.7) = 1e-4
    expect(chi2).toBeLessThan(25.7);
    // not degenerate: every positive weight was drawn
    expect(c.filter((v, k) => w[k] > 0).every((v) => v > 0)).toBe(true);
    x.dispose();
    s.dispose();
  });

  it('weights and logits / temperature give the same draws from the same seed', async () => {
    const B = 513;
    const vals = new Float32Array(B * K);
    for (let i = 0; i < B; i++) for (let k = 0; k < K; k++) vals[i * K + k] = w[(k + i) % K] + 0.01;
    const x = tensor(vals, [B, K]);
    const lg = tensor(vals.map((v) => 2 * Math.log(v)), [B, K]);
    const a = await read(multinomial(x, { seed: 9 }));
    const b = await read(multinomial(lg, { seed: 9, logits: true, temperature: 2 }));
    let same = 0;
    for (let i = 0; i < B; i++) if (a[i] === b[i]) same++;
    // 2 log v / 2 vs log v: equal up to one rounding of the log, so draws agree except on near ties
    expect(same).toBeGreaterThan(B - 3);
    const c = await read(multinomial(x, { seed: 10 }));
    expect(Array.from(c)).not.toEqual(Array.from(a));
    const a2 = await read(multinomial(x, { seed: 9 }));
    expect(Array.from(a2)).toEqual(Array.from(a));
    x.dispose();
    lg.dispose();
  });

  it('numSamples draws with replacement into a trailing dimension; temperature flattens', async () => {
    const lg = tensor(Float32Array.from([4, 0, -4]), [3]);
    const s = multinomial(lg, { logits: true, numSamples: 4000, seed: 3 });
    expect(s.shape).toEqual([4000]);
    const cold = await counts(s, 3);
    const hot = await counts(multinomial(lg, { logits: true, numSamples: 4000, seed: 4, temperature: 1e3 }), 3);
    const p0 = Math.exp(4) / (Math.exp(4) + 1 + Math.exp(-4));
    expect(Math.abs(cold[0] / 4000 - p0)).toBeLessThan(0.02);
    for (const v of hot) expect(Math.abs(v / 4000 - 1 / 3)).toBeLessThan(0.04);
    const b = tensor(new Float32Array(2 * 5).fill(1), [2, 5]);
    expect(multinomial(b, { numSamples: 3 }).shape).toEqual([2, 3]);
    lg.dispose();
    s.dispose();
    b.dispose();
  });

  it('Gumbel noise has mean 0.5772 (Euler) and variance pi^2 / 6', async () => {
    const n = 100_003;
    const g = await read(gumbel([n], { seed: 1 }));
    const mean = g.reduce((a, b) => a + b, 0) / n;
    const v = g.reduce((a, b) => a + (b - mean) ** 2, 0) / n;
    expect(g.every(Number.isFinite)).toBe(true);
    expect(Math.abs(mean - 0.5772156649)).toBeLessThan(0.02);
    expect(Math.abs(v - Math.PI ** 2 / 6)).toBeLessThan(0.05);
  });

  it('bad input is refused before any kernel runs', () => {
    const i = tensor(new Int32Array(4), [4]);
    expect(() => multinomial(i)).toThrow(OpError);
    expect(() => multinomial(i)).toThrow(/multinomial.*i32 \[4\]/);
    const x = tensor(new Float32Array(4).fill(1), [4]);
    expect(() => multinomial(x, { temperature: 0 })).toThrow(/temperature/);
    expect(() => multinomial(x, { numSamples: 0 })).toThrow(/numSamples/);
    const e = tensor(new Float32Array(0), [3, 0]);
    expect(() => multinomial(e)).toThrow(/K >= 1/);
    for (const t of [i, x, e]) t.dispose();
  });
});
