import { describe, it, expect, beforeAll } from 'vitest';
import { engine, t32, read } from '../helpers/gpu.ts';
import { randArray, asF32, expectClose, finiteDiff, dot } from '../helpers/reference.ts';
import {
  dropout, dropout2d, bernoulli, scaledBernoulli, backward, tensor, sum, mul, scope, manualSeed, getRngState, runtime,
} from '../../src/engine/index.ts';

beforeAll(async () => {
  await engine();
});

describe('dropout', () => {
  it('elementwise: mask from the seeded generator, scaled by 1/(1-p), gradient through the mask', async () => {
    const n = 2 * 3 * 7 * 9;
    const xv = asF32(randArray(n, 1, 0.5, 2));
    const gv = asF32(randArray(n, 2));
    const p = 0.3;
    const keep = await read(bernoulli([2, 3, 7, 9], 1 - p, { seed: 77 }));
    const x = t32(xv, [2, 3, 7, 9], true);
    const y = dropout(x, p, true, { seed: 77 });
    const scale = Math.fround(1 / (1 - p));
    expectClose(await read(y), xv.map((v, i) => v * keep[i] * scale), { atol: 1e-6, rtol: 1e-6, what: 'forward' });
    const kept = keep.reduce((a, b) => a + b, 0) / n;
    expect(kept).toBeGreaterThan(0.6);
    expect(kept).toBeLessThan(0.8);
    backward(y, t32(gv, [2, 3, 7, 9]));
    expectClose(await read(x.grad!), gv.map((v, i) => v * keep[i] * scale), { atol: 1e-6, rtol: 1e-6, what: 'dx' });
    for (const t of [x, y, x.grad!]) t.dispose();
  });

  it('channel-wise (dropout2d): whole (sample, channel) planes kept or zeroed', async () => {
    const N = 3, C = 5, HW = 7 * 9;
    const xv = asF32(randArray(N * C * HW, 3, 0.5, 2));
    const keep = await read(bernoulli([N, C, 1, 1], 0.5, { seed: 5 }));
    const x = t32(xv, [N, C, 7, 9], true);
    const y = dropout2d(x, 0.5, true, { seed: 5 });
    expectClose(await read(y), xv.map((v, i) => v * keep[Math.floor(i / HW)] * 2), { atol: 1e-6, rtol: 1e-6 });
    backward(y, t32(new Float64Array(N * C * HW).fill(1), [N, C, 7, 9]));
    expectClose(await read(x.grad!), xv.map((_, i) => keep[Math.floor(i / HW)] * 2), { atol: 0, rtol: 0, what: 'dx' });
    expect(keep.some((v) => v === 0) && keep.some((v) => v === 1)).toBe(true);
    for (const t of [x, y, x.grad!]) t.dispose();
  });

  it('is the identity in evaluation and for p = 0; p = 1 zeroes everything', async () => {
    const xv = asF32(randArray(35, 4));
    const x = t32(xv, [1, 1, 5, 7]);
    for (const y of [dropout(x, 0.5, false), dropout2d(x, 0.5, false), dropout(x, 0)]) {
      expectClose(await read(y), xv, { atol: 0, rtol: 0 });
      y.dispose();
    }
    const z = dropout(x, 1);
    expectClose(await read(z), new Float64Array(35), { atol: 0, rtol: 0 });
    z.dispose();
    x.dispose();
  });

  it('gradient = central finite differences of the float64 reference (elementwise and channel-wise)', async () => {
    const [N, C, H, W] = [2, 3, 5, 3];
    const n = N * C * H * W;
    const xv = asF32(randArray(n, 11, -1, 1));
    const wv = asF32(randArray(n, 12, -1, 1));
    for (const [name, p, maskShape, fn] of [
      ['dropout', 0.35, [N, C, H, W], dropout],
      ['dropout2d', 0.6, [N, C, 1, 1], dropout2d],
    ] as const) {
      const keep = await read(bernoulli([...maskShape], 1 - p, { seed: 21 }));
      const per = n / keep.length;
      const scale = Math.fround(1 / (1 - p));
      const ref = (xs: Float64Array) => dot(xs.map((v, i) => v * keep[Math.floor(i / per)] * scale), wv);
      const x = t32(xv, [N, C, H, W], true);
      const w = t32(wv, [N, C, H, W]);
      scope(() => backward(sum(mul(fn(x, p, true, { seed: 21 }), w))));
      expectClose(await read(x.grad!), finiteDiff(ref, xv), { atol: 1e-4, rtol: 1e-4, what: name });
      for (const t of [x, w, x.grad!]) t.dispose();
    }
  });

  it('two dispatches forward (the scaled mask, the product), one backward (no gradient for the mask)', () => {
    const dev = runtime().device;
    const x = t32(asF32(randArray(60, 13)), [3, 4, 5], true);
    const g = t32(asF32(randArray(60, 14)), [3, 4, 5]);
    const d0 = dev.stats.dispatches;
    const y = dropout(x, 0.3, true, { seed: 3 });
    const d1 = dev.stats.dispatches;
    backward(y, g);
    const d2 = dev.stats.dispatches;
    expect([d1 - d0, d2 - d1]).toEqual([2, 1]);
    const e = dropout(x, 0.3, false);
    expect(dev.stats.dispatches).toBe(d2);
    for (const t of [x, g, y, e, x.grad!]) t.dispose();
  });

  it('scaledBernoulli draws what bernoulli draws from the global generator, times the value', async () => {
    manualSeed(9);
    const a = await read(bernoulli([37], 0.4));
    const a2 = await read(bernoulli([5], 0.4));
    const after = getRngState();
    manualSeed(9);
    const b = await read(scaledBernoulli([37], 0.4, 2.5));
    const b2 = await read(scaledBernoulli([5], 0.4, 2.5));
    expect(getRngState()).toEqual(after);
    expect(Array.from(b)).toEqual(Array.from(a, (v) => v * 2.5));
    expect(Array.from(b2)).toEqual(Array.from(a2, (v) => v * 2.5));
    expect(() => scaledBernoulli([2], 0.5, Infinity)).toThrow(/bernoulli: the kept value must be finite/);
  });

  it('rejects bad probabilities and shapes, naming the op', () => {
    const x = tensor(new Float32Array(6).fill(1), [2, 3]);
    expect(() => dropout(x, 1.5)).toThrow(/dropout: dropout probability must be in \[0, 1\], got 1.5/);
    expect(() => dropout2d(x, 0.5)).toThrow(/dropout2d: input must be 4-D \(N, C, H, W\) or 3-D \(C, H, W\), got shape \[2, 3\]/);
    x.dispose();
  });
});
