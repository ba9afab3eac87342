import { describe, it, expect, beforeAll } from 'vitest';
import { engine, t32, read } from '../helpers/gpu.ts';
import { randArray, asF32, expectClose } from '../helpers/reference.ts';
import { dropout, dropout2d, bernoulli, backward, tensor } from '../../src/engine/index.ts';

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

  it('rejects bad probabilities and shapes, naming the op', () => {
    const x = tensor(new Float32Array(6).fill(1), [2, 3]);
    expect(() => dropout(x, 1.5)).toThrow(/dropout: dropout probability must be in \[0, 1\], got 1.5/);
    expect(() => dropout2d(x, 0.5)).toThrow(/dropout2d: input must be 4-D \(N, C, H, W\) or 3-D \(C, H, W\), got shape \[2, 3\]/);
    x.dispose();
  });
});
