/**
 * Softmax / log-softmax along any axis against float64 references: odd shapes, rows longer than
 * a workgroup, huge and -inf logits, views; backward checked by finite differences on the
 * reference and against the GPU.
 */
import { describe, it, expect, beforeAll } from 'vitest';
import { engine, t32, read } from '../helpers/gpu.ts';
import { randArray, asF32, expectClose, finiteDiff, dot } from '../helpers/reference.ts';
import { softmax, logSoftmax, backward, tensor, transpose, OpError, memoryStats, scope, sum, runtime } from '../../src/engine/index.ts';

beforeAll(async () => {
  await engine();
});

/** Flat indices of every line along `dim`. */
function lines(shape: readonly number[], dim: number): number[][] {
  const inner = shape.slice(dim + 1).reduce((a, b) => a * b, 1);
  const outer = shape.slice(0, dim).reduce((a, b) => a * b, 1);
  const D = shape[dim];
  const out: number[][] = [];
  for (let o = 0; o < outer; o++) for (let i = 0; i < inner; i++) out.push(Array.from({ length: D }, (_, d) => (o * D + d) * inner + i));
  return out;
}

function refSoftmax(x: ArrayLike<number>, shape: readonly number[], dim: number, log: boolean): Float64Array {
  const y = new Float64Array(x.length);
  for (const ix of lines(shape, dim)) {
    const m = Math.max(...ix.map((i) => x[i]));
    const lse = m + Math.log(ix.reduce((a, i) => a + Math.exp(x[i] - m), 0));
    for (const i of ix) y[i] = log ? x[i] - lse : Math.exp(x[i] - lse);
  }
  return y;
}

/** Analytic float64 gradient of dot(softmax(x), w) / dot(logSoftmax(x), w). */
function refGrad(x: ArrayLike<number>, shape: readonly number[], dim: number, log: boolean, w: ArrayLike<number>): Float64Array {
  const y = refSoftmax(x, shape, dim, false);
  const g = new Float64Array(x.length);
  for (const ix of lines(shape, dim)) {
    if (log) {
      const sw = ix.reduce((a, i) => a + w[i], 0);
      for (const i of ix) g[i] = w[i] - y[i] * sw;
    } else {
      const d = ix.reduce((a, i) => a + w[i] * y[i], 0);
      for (const i of ix) g[i] = y[i] * (w[i] - d);
    }
  }
  return g;
}

const CASES: { shape: number[]; dim: number }[] = [
  { shape: [5, 37], dim: -1 },
  { shape: [6, 5, 7], dim: 0 },
  { shape: [6, 5, 7], dim: 1 },
  { shape: [3, 1001], dim: 1 }, // rows longer than the workgroup
  { shape: [9], dim: 0 },
  { shape: [4, 1, 3], dim: 1 }, // a size-1 axis: softmax 1, log-softmax 0
];

describe('softmax and logSoftmax', () => {
  for (const { shape, dim } of CASES) {
    for (const log of [false, true]) {
      it(`${log ? 'logSoftmax' : 'softmax'} ${JSON.stringify(shape)} dim ${dim}`, async () => {
        const n = shape.reduce((a, b) => a * b, 1);
        const d = dim < 0 ? dim + shape.length : dim;
        const x = asF32(randArray(n, 7 + n, -4, 4));
        const w = randArray(n, 3 + n, -1, 1);
        const t = t32(x, shape, true);
        const y = (log ? logSoftmax : softmax)(t, dim);
        expect(y.shape).toEqual(shape);
        expectClose(await read(y), refSoftmax(x, shape, d, log), { atol: 1e-6, rtol: 1e-5, what: 'forward' });
        backward(y, t32(w, shape));
        const ref = refGrad(x, shape, d, log, w);
        if (n <= 400) {
          const fd = finiteDiff((v) => dot(refSoftmax(v, shape, d, log), w), x);
          expectClose(fd, ref, { atol: 1e-7, rtol: 1e-6, what: 'reference vs finite differences' });
        }
        expectClose(await read(t.grad!), ref, { atol: 1e-6, rtol: 1e-4, what: 'gradient' });
      });
    }
  }

  it('huge logits and -inf: no overflow, exact zeros', async () => {
    const ninf = -Infinity;
    const x = [1000, 999, -1000, ninf, 88.7, -88.8, 0.5, 3e38, -3e38, 1, 2, ninf];
    const shape = [3, 4];
    const t = tensor(Float32Array.from(x), shape);
    const xf = asF32(x);
    const want = refSoftmax(xf, shape, 1, false);
    expectClose(await read(softmax(t)), want, { atol: 1e-7, rtol: 1e-6 });
    const wl = refSoftmax(xf, shape, 1, true);
    const got = await read(logSoftmax(t));
    expectClose(got, wl, { atol: 1e-4, rtol: 1e-6 });
    expect(got[3]).toBe(-Infinity);
    expect((await read(softmax(t)))[3]).toBe(0);
  });

  it('a transposed (strided) input and its gradient', async () => {
    const x = asF32(randArray(35, 17, -3, 3));
    const t = t32(x, [5, 7], true);
    const tt = transpose(t); // [7, 5], softmax over the 5
    const w = randArray(35, 19);
    const y = softmax(tt, 1);
    // reference on the transposed values
    const xt = new Float64Array(35);
    for (let i = 0; i < 7; i++) for (let j = 0; j < 5; j++) xt[i * 5 + j] = x[j * 7 + i];
    expectClose(await read(y), refSoftmax(xt, [7, 5], 1, false), { atol: 1e-6, rtol: 1e-5 });
    backward(y, t32(w, [7, 5]));
    const gt = refGrad(xt, [7, 5], 1, false, w);
    const g = new Float64Array(35);
    for (let i = 0; i < 7; i++) for (let j = 0; j < 5; j++) g[j * 7 + i] = gt[i * 5 + j];
    expectClose(await read(t.grad!), g, { atol: 1e-6, rtol: 1e-4 });
  });

  it('a row-major view with an offset, and its gradient', async () => {
    const x = asF32(randArray(28, 23, -3, 3));
    const base = t32(x, [4, 7]);
    const rows = base.view([2, 7], [7, 1], 7); // rows 1 and 2: a leaf view with offset 7
    rows.requiresGrad = true;
    const w = randArray(14, 29);
    const y = logSoftmax(rows, -1);
    const sub = x.slice(7, 21);
    expectClose(await read(y), refSoftmax(sub, [2, 7], 1, true), { atol: 1e-6, rtol: 1e-5 });
    backward(y, t32(w, [2, 7]));
    expectClose(await read(rows.grad!), refGrad(sub, [2, 7], 1, true, w), { atol: 1e-6, rtol: 1e-4 });
  });

  it('frees everything it allocates in a scope', async () => {
    const t = t32(randArray(30, 5), [5, 6], true);
    const before = memoryStats();
    scope(() => {
      backward(sum(logSoftmax(softmax(t, 0), 1)));
    });
    t.grad?.dispose();
    t.grad = null;
    expect(memoryStats()).toEqual(before);
  });

  it('bad input raises OpError', () => {
    const dispatches = runtime().device.stats.dispatches;
    const t = tensor(new Float32Array(6), [2, 3]);
    expect(() => softmax(t, 2)).toThrow(OpError);
    expect(() => softmax(t, 2)).toThrow(/softmax: dimension 2 out of range for shape \[2, 3\]/);
    expect(() => logSoftmax(tensor(new Int32Array([1, 2]), [2]))).toThrow(/logSoftmax: expects an f32 tensor, got i32/);
    expect(runtime().device.stats.dispatches).toBe(dispatches); // no kernel ran
  });
});

