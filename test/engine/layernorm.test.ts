import { describe, it, expect, beforeAll } from 'vitest';
import { engine, t32, read } from '../helpers/gpu.ts';
import { randArray, asF32, expectClose, finiteDiff, dot } from '../helpers/reference.ts';
import { layerNorm, backward, scope, tensor, OpError, memoryStats } from '../../src/engine/index.ts';

/** float64 reference: rows of C, optional affine. */
function lnRef(x: Float64Array, C: number, w: Float64Array | null, b: Float64Array | null, eps: number): Float64Array {
  const rows = x.length / C;
  const y = new Float64Array(x.length);
  for (let r = 0; r < rows; r++) {
    let m = 0;
    for (let c = 0; c < C; c++) m += x[r * C + c];
    m /= C;
    let v = 0;
    for (let c = 0; c < C; c++) v += (x[r * C + c] - m) ** 2;
    v /= C;
    const rs = 1 / Math.sqrt(v + eps);
    for (let c = 0; c < C; c++) {
      let o = (x[r * C + c] - m) * rs;
      if (w && b) o = o * w[c] + b[c];
      y[r * C + c] = o;
    }
  }
  return y;
}

beforeAll(async () => {
  await engine();
});

describe('layerNorm', () => {
  it('forward matches float64 (odd rows and columns, large mean, affine and not)', async () => {
    const cases: [number[], boolean][] = [[[3, 5, 37], true], [[7, 203], false], [[1, 1, 300], true]];
    for (const [shape, affine] of cases) {
      const C = shape[shape.length - 1];
      const n = shape.reduce((a, d) => a * d, 1);
      // a large common offset: the two-pass variance must not cancel
      const x = asF32(randArray(n, 11 + C, -2, 2).map((v) => v + 1000));
      const w = asF32(randArray(C, 12, 0.5, 1.5));
      const b = asF32(randArray(C, 13, -0.5, 0.5));
      const y = scope(() => layerNorm(t32(x, shape), affine ? t32(w, [C]) : null, affine ? t32(b, [C]) : null, 1e-5));
      expectClose(await read(y), lnRef(x, C, affine ? w : null, affine ? b : null, 1e-5), { atol: 2e-3, rtol: 1e-3, what: `ln ${shape}` });
      y.dispose();
    }
  });

  it('normal-range inputs are exact to f32 rounding', async () => {
    const C = 77;
    const x = asF32(randArray(9 * C, 5, -3, 3));
    const w = asF32(randArray(C, 6, 0.5, 1.5));
    const b = asF32(randArray(C, 7, -1, 1));
    const y = layerNorm(t32(x, [9, C]), t32(w, [C]), t32(b, [C]), 1e-5);
    expectClose(await read(y), lnRef(x, C, w, b, 1e-5), { atol: 2e-5, rtol: 1e-5 });
  });

  it('backward: reference gradient = finite differences, GPU gradients = reference', async () => {
    const rows = 13;
    const C = 29;
    const eps = 1e-5;
    const x = asF32(randArray(rows * C, 21, -2, 2));
    const w = asF32(randArray(C, 22, 0.5, 1.5));
    const b = asF32(randArray(C, 23, -1, 1));
    const gw = asF32(randArray(rows * C, 24, -1, 1));
    const fx = (xx: Float64Array) => dot(lnRef(xx, C, w, b, eps), gw);
    const fw = (ww: Float64Array) => dot(lnRef(x, C, ww, b, eps), gw);
    const fb = (bb: Float64Array) => dot(lnRef(x, C, w, bb, eps), gw);
    const refDx = finiteDiff(fx, x);
    const refDw = finiteDiff(fw, w);
    const refDb = finiteDiff(fb, b);
    // analytic float64 gradient of the reference, checked against the finite differences
    const anaDx = new Float64Array(rows * C);
    const anaDw = new Float64Array(C);
    const anaDb = new Float64Array(C);
    for (let r = 0; r < rows; r++) {
      let m = 0;
      for (let c = 0; c < C; c++) m += x[r * C + c];
      m /= C;
      let v = 0;
      for (let c = 0; c < C; c++) v += (x[r * C + c] - m) ** 2;
      const rs = 1 / Math.sqrt(v / C + eps);
      let s1 = 0;
      let s2 = 0;
      for (let c = 0; c < C; c++) {
        const xh = (x[r * C + c] - m) * rs;
        const g = gw[r * C + c] * w[c];
        s1 += g;
        s2 += g * xh;
        anaDw[c] += gw[r * C + c] * xh;
        anaDb[c] += gw[r * C + c];
      }
      for (let c = 0; c < C; c++) {
        const xh = (x[r * C + c] - m) * rs;
        anaDx[r * C + c] = rs * (gw[r * C + c] * w[c] - s1 / C - (xh * s2) / C);
      }
    }
    expectClose(anaDx, refDx, { atol: 1e-6, rtol: 1e-5, what: 'ref dx vs fd' });
    expectClose(anaDw, refDw, { atol: 1e-6, rtol: 1e-5, what: 'ref dw vs fd' });
    expectClose(anaDb, refDb, { atol: 1e-6, rtol: 1e-5, what: 'ref db vs fd' });

    const xt = t32(x, [rows, C], true);
    const wt = t32(w, [C], true);
    const bt = t32(b, [C], true);
    const y = layerNorm(xt, wt, bt, eps);
    backward(y, t32(gw, [rows, C]));
    expectClose(await read(xt.grad!), anaDx, { atol: 1e-4, rtol: 1e-3, what: 'gpu dx' });
    expectClose(await read(wt.grad!), anaDw, { atol: 1e-4, rtol: 1e-3, what: 'gpu dw' });
    expectClose(await read(bt.grad!), anaDb, { atol: 1e-4, rtol: 1e-3, what: 'gpu db' });
  });

  it('backward without affine, more rows than one partial-sum chunk', async () => {
    const rows = 131;
    const C = 5;
    const x = asF32(randArray(rows * C, 31, -2, 2));
    const gw = asF32(randArray(rows * C, 32, -1, 1));
    const f = (xx: Float64Array) => dot(lnRef(xx, C, null, null, 1e-5), gw);
    const fd = finiteDiff(f, x);
    const xt = t32(x, [rows, C], true);
    backward(layerNorm(xt), t32(gw, [rows, C]));
    expectClose(await read(xt.grad!), fd, { atol: 2e-4, rtol: 2e-3, what: 'dx (no affine)' });
  });

  it('reads inputs and parameters that sit at an offset in their buffer (arena parameters, slices)', async () => {
    const C = 13;
    const rows = 4;
    const big = asF32(randArray(3 + rows * C + 2 * C + 7, 41, -1, 1));
    const all = t32(big, [big.length]);
    const x = all.view([rows, C], [C, 1], 3);
    const w = all.view([C], [1], 3 + rows * C);
    const b = all.view([C], [1], 3 + rows * C + C);
    const y = layerNorm(x, w, b);
    const xs = big.slice(3, 3 + rows * C);
    expectClose(await read(y), lnRef(xs, C, big.slice(3 + rows * C, 3 + rows * C + C), big.slice(3 + rows * C + C, 3 + rows * C + 2 * C), 1e-5), { atol: 2e-5, rtol: 1e-4 });
  });

  it('frees its temporaries', async () => {
    const before = memoryStats();
    const x = t32(randArray(6 * 11, 1), [6, 11], true);
    const w = t32(randArray(11, 2), [11], true);
    const b = t32(randArray(11, 3), [11], true);
    const g = t32(randArray(6 * 11, 4), [6, 11]);
    const y = layerNorm(x, w, b);
    backward(y, g);
    y.dispose();
    g.dispose();
    for (const t of [x, w, b]) {
      t.grad?.dispose();
      t.dispose();
    }
    expect(memoryStats()).toEqual(before);
  });

  it('rejects bad input before any kernel runs', () => {
    const x = tensor(new Float32Array(12), [3, 4]);
    expect(() => layerNorm(x, tensor(new Float32Array(3), [3]), tensor(new Float32Array(3), [3]))).toThrow(OpError);
    expect(() => layerNorm(x, tensor(new Float32Array(4), [4]), null)).toThrow(/weight and bias/);
    expect(() => layerNorm(tensor(new Int32Array(4), [4]))).toThrow(/f32/);
  });
});
