/**
 * Reductions: sum/mean/max/min/logsumexp/variance/std over axis sets, arg-reductions, both the
 * one-pass and the two-pass (few long rows) paths, against float64 references; every backward
 * checked by finite differences on the reference and against the GPU.
 */
import { describe, it, expect, beforeAll } from 'vitest';
import { engine, t32, read } from '../helpers/gpu.ts';
import { randArray, asF32, expectClose, finiteDiff, dot } from '../helpers/reference.ts';
import {
  sum, mean, max, min, logsumexp, variance, std, argmax, argmin, maxWithIndices, minWithIndices,
  backward, tensor, transpose, usesTwoPass, columnChunks, OpError, reduceRaw, memoryStats, scope, type Tensor,
  runtime,
} from '../../src/engine/index.ts';

beforeAll(async () => {
  await engine();
});

/** For each output element (row-major over the kept dims), the input flat indices it reduces. */
function groups(shape: readonly number[], axes: readonly number[]): number[][] {
  const n = shape.reduce((a, b) => a * b, 1);
  const kept = shape.map((_, i) => i).filter((i) => !axes.includes(i));
  const out = new Map<number, number[]>();
  for (let f = 0; f < n; f++) {
    let rem = f;
    const coord = new Array<number>(shape.length);
    for (let d = shape.length - 1; d >= 0; d--) {
      coord[d] = rem % shape[d];
      rem = Math.floor(rem / shape[d]);
    }
    let o = 0;
    for (const d of kept) o = o * shape[d] + coord[d];
    if (!out.has(o)) out.set(o, []);
    out.get(o)!.push(f);
  }
  const nOut = kept.reduce((a, d) => a * shape[d], 1);
  return Array.from({ length: nOut }, (_, o) => out.get(o) ?? []);
}

type RefFn = (v: number[]) => number;
const refSum: RefFn = (v) => v.reduce((a, b) => a + b, 0);
const refMean: RefFn = (v) => refSum(v) / v.length;
const refMax: RefFn = (v) => Math.max(...v);
const refMin: RefFn = (v) => Math.min(...v);
const refLse: RefFn = (v) => {
  const m = Math.max(...v);
  return m + Math.log(v.reduce((a, b) => a + Math.exp(b - m), 0));
};
const refVar = (corr: number): RefFn => (v) => {
  const mu = refMean(v);
  return v.reduce((a, b) => a + (b - mu) ** 2, 0) / (v.length - corr);
};
const refStd = (corr: number): RefFn => (v) => Math.sqrt(refVar(corr)(v));

/** Analytic gradient of a reduction of values v with respect to each v[i]. */
type RefGrad = (v: number[]) => number[];
const gSum: RefGrad = (v) => v.map(() => 1);
const gMean: RefGrad = (v) => v.map(() => 1 / v.length);
const gExt = (f: RefFn): RefGrad => (v) => {
  const m = f(v);
  const hits = v.filter((u) => u === m).length;
  return v.map((u) => (u === m ? 1 / hits : 0));
};
const gLse: RefGrad = (v) => {
  const l = refLse(v);
  return v.map((u) => Math.exp(u - l));
};
const gVar = (corr: number): RefGrad => (v) => {
  const mu = refMean(v);
  return v.map((u) => (2 * (u - mu)) / (v.length - corr));
};
const gStd = (corr: number): RefGrad => (v) => {
  const mu = refMean(v);
  const sd = refStd(corr)(v);
  return v.map((u) => (u - mu) / ((v.length - corr) * sd));
};

function refGrad(x: ArrayLike<number>, shape: readonly number[], axes: readonly number[], f: RefGrad, w: ArrayLike<number>): Float64Array {
  const g = new Float64Array(x.length);
  groups(shape, axes).forEach((ix, o) => {
    const d = f(ix.map((i) => x[i]));
    ix.forEach((i, k) => (g[i] = w[o] * d[k]));
  });
  return g;
}

function refReduce(x: ArrayLike<number>, shape: readonly number[], axes: readonly number[], f: RefFn): Float64Array {
  return Float64Array.from(groups(shape, axes).map((g) => f(g.map((i) => x[i]))));
}

/** Runs op forward and backward (upstream gradient w) on the GPU; returns output and input grad. */
async function gpuRun(x: Float64Array, shape: number[], op: (t: Tensor) => Tensor, w: Float64Array): Promise<{ y: Float64Array; gx: Float64Array }> {
  const t = t32(x, shape, true);
  const y = op(t);
  backward(y, t32(w, y.shape));
  return { y: await read(y), gx: await read(t.grad!) };
}

// [3, 5, 7]: one block with inner > 1 reduces in place by columns (1, 0, [0, 1]); a block at the
// end by rows (-1, [1, 2], all; rows shorter than 32 by one thread each: -1, [1, 2]); [0, 2] is
// moved innermost by a copy.
const AXES: { axes: number | number[] | undefined; norm: number[] }[] = [
  { axes: 1, norm: [1] },
  { axes: 0, norm: [0] },
  { axes: [0, 1], norm: [0, 1] },
  { axes: [1, 2], norm: [1, 2] },
  { axes: [0, 2], norm: [0, 2] },
  { axes: -1, norm: [2] },
  { axes: undefined, norm: [0, 1, 2] },
  { axes: [2, 0, 1], norm: [0, 1, 2] },
];

describe('sum, mean, max, min, logsumexp, variance, std over axis sets', () => {
  const shape = [3, 5, 7];
  const x = asF32(randArray(105, 11, -2, 2));
  const cases: { name: string; op: (t: Tensor, a: number | number[] | undefined, k: boolean) => Tensor; ref: RefFn; grad: RefGrad; atol: number }[] = [
    { name: 'sum', op: (t, a, k) => sum(t, a, k), ref: refSum, grad: gSum, atol: 1e-5 },
    { name: 'mean', op: (t, a, k) => mean(t, a, k), ref: refMean, grad: gMean, atol: 1e-6 },
    { name: 'max', op: (t, a, k) => max(t, a, k), ref: refMax, grad: gExt(refMax), atol: 0 },
    { name: 'min', op: (t, a, k) => min(t, a, k), ref: refMin, grad: gExt(refMin), atol: 0 },
    { name: 'logsumexp', op: (t, a, k) => logsumexp(t, a, k), ref: refLse, grad: gLse, atol: 1e-5 },
    { name: 'variance', op: (t, a, k) => variance(t, a, { keepdim: k }), ref: refVar(1), grad: gVar(1), atol: 1e-5 },
    { name: 'std(correction 0)', op: (t, a, k) => std(t, a, { keepdim: k, correction: 0 }), ref: refStd(0), grad: gStd(0), atol: 1e-5 },
    { name: 'std(correction 2)', op: (t, a, k) => std(t, a, { keepdim: k, correction: 2 }), ref: refStd(2), grad: gStd(2), atol: 1e-5 },
    { name: 'variance(unbiased false)', op: (t, a, k) => variance(t, a, { keepdim: k, unbiased: false }), ref: refVar(0), grad: gVar(0), atol: 1e-5 },
  ];
  for (const c of cases) {
    for (const { axes, norm } of AXES) {
      for (const keepdim of [false, true]) {
        it(`${c.name} axes ${JSON.stringify(axes)} keepdim ${keepdim}`, async () => {
          const want = refReduce(x, shape, norm, c.ref);
          const w = randArray(want.length, 5, 0.5, 1.5);
          const { y, gx } = await gpuRun(x, shape, (t) => c.op(t, axes, keepdim), w);
          const expShape = shape.map((d, i) => (norm.includes(i) ? 1 : d)).filter((_, i) => keepdim || !norm.includes(i));
          const yt = c.op(t32(x, shape), axes, keepdim);
          expect(yt.shape).toEqual(expShape);
          expectClose(y, want, { atol: c.atol, rtol: 1e-5, what: `${c.name} forward` });
          // the analytic float64 gradient against finite differences of the float64 reference
          // (random input: no ties, so max/min are differentiable here), then the GPU against it
          const ref = refGrad(x, shape, norm, c.grad, w);
          const fd = finiteDiff((v) => dot(refReduce(v, shape, norm, c.ref), w), x, 1e-6);
          expectClose(fd, ref, { atol: 2e-6, rtol: 1e-5, what: `${c.name} finite differences` });
          expectClose(gx, ref, { atol: 2e-6, rtol: 1e-4, what: `${c.name} gradient` });
        });
      }
    }
  }
});

describe('max/min gradient on ties (split evenly, as torch.amax)', () => {
  it('splits between equal maxima and minima', async () => {
    // values from a small integer set: many ties per row
    const x = Float64Array.from(randArray(5 * 9, 3, 0, 4), (v) => Math.floor(v));
    const shape = [5, 9];
    for (const [op, f] of [[max, refMax], [min, refMin]] as const) {
      const w = randArray(5, 8, 0.5, 1.5);
      const { y, gx } = await gpuRun(x, shape, (t) => op(t, 1), w);
      const want = refReduce(x, shape, [1], f);
      expectClose(y, want, { atol: 0, rtol: 0 });
      const g = new Float64Array(45);
      for (let r = 0; r < 5; r++) {
        const hits = [...Array(9).keys()].filter((c) => x[r * 9 + c] === want[r]);
        for (const c of hits) g[r * 9 + c] = w[r] / hits.length;
      }
      expectClose(gx, g, { atol: 1e-7, what: 'tie gradient' });
    }
  });

  it('logsumexp of rows with infinities is +-inf; argmax/argmin pick NaN (as PyTorch)', async () => {
    const ninf = -Infinity;
    const t = tensor(new Float32Array([ninf, ninf, ninf, 1, Infinity, 3, 2, NaN, 5]), [3, 3]);
    const y = await read(logsumexp(t, 1));
    expect(y[0]).toBe(-Infinity);
    expect(y[1]).toBe(Infinity);
    expect(Array.from(await read(argmax(t, 1)))).toEqual([0, 1, 1]);
    expect(Array.from(await read(argmin(t, 1)))).toEqual([0, 0, 1]);
  });

  it('max of a row of -inf is -inf; NaN propagates', async () => {
    const ninf = -Infinity;
    const t = tensor(new Float32Array([ninf, ninf, ninf, 1, NaN, 3]), [2, 3]);
    const y = await read(max(t, 1));
    expect(y[0]).toBe(-Infinity);
    expect(Number.isNaN(y[1])).toBe(true);
    expect(Number.isNaN((await read(min(t, 1)))[1])).toBe(true);
  });
});

describe('logsumexp is stable', () => {
  it('large and very negative logits', async () => {
    const shape = [4, 13];
    const x = asF32(Float64Array.from(randArray(52, 21, -3, 3), (v, i) => v + (i < 26 ? 1000 : -1000)));
    const want = refReduce(x, shape, [1], refLse);
    const w = randArray(4, 2, 0.5, 1.5);
    const { y, gx } = await gpuRun(x, shape, (t) => logsumexp(t, 1), w);
    expectClose(y, want, { atol: 0, rtol: 1e-6 });
    const ref = finiteDiff((v) => dot(refReduce(v, shape, [1], refLse), w), x, 1e-4);
    // analytic softmax reference (finite differences at |x| = 1000 lose digits to cancellation)
    const soft = new Float64Array(52);
    for (let r = 0; r < 4; r++) for (let c = 0; c < 13; c++) soft[r * 13 + c] = w[r] * Math.exp(x[r * 13 + c] - want[r]);
    expectClose(ref, soft, { atol: 1e-3, what: 'finite differences vs softmax' });
    expectClose(gx, soft, { atol: 1e-6, rtol: 1e-4, what: 'gradient' });
  });
});

describe('non-contiguous and offset inputs', () => {
  it('reduces a transposed view and a view with an offset', async () => {
    const x = asF32(randArray(6 * 9, 31));
    const t = t32(x, [6, 9]);
    const tt = transpose(t); // [9, 6]
    const xt = new Float64Array(54);
    for (let i = 0; i < 9; i++) for (let j = 0; j < 6; j++) xt[i * 6 + j] = x[j * 9 + i];
    expectClose(await read(sum(tt, 1)), refReduce(xt, [9, 6], [1], refSum), { atol: 1e-5 });
    expectClose(await read(variance(tt, 0)), refReduce(xt, [9, 6], [0], refVar(1)), { atol: 1e-5 });
    expectClose(await read(argmax(tt, 1)), Float64Array.from(groups([9, 6], [1]), (g) => g.indexOf(g.reduce((b, i) => (xt[i] > xt[b] ? i : b), g[0]))), { atol: 0 });
    const row = t.view([9], [1], 9 * 2); // third row
    expectClose(await read(max(row)), [Math.max(...x.slice(18, 27))], { atol: 0 });
  });
});

describe('argmax, argmin, maxWithIndices', () => {
  it('first index on ties, along every dim, and flattened', async () => {
    const shape = [4, 7, 5];
    const x = Float64Array.from(randArray(140, 41, 0, 5), (v) => Math.floor(v));
    const t = tensor(Float32Array.from(x), shape);
    for (let d = 0; d < 3; d++) {
      const g = groups(shape, [d]);
      const amax = Float64Array.from(g, (ix) => ix.findIndex((i) => x[i] === Math.max(...ix.map((j) => x[j]))));
      const amin = Float64Array.from(g, (ix) => ix.findIndex((i) => x[i] === Math.min(...ix.map((j) => x[j]))));
      const am = argmax(t, d);
      expect(am.dtype).toBe('i32');
      expectClose(await read(am), amax, { atol: 0, what: `argmax dim ${d}` });
      expectClose(await read(argmin(t, d - 3, true)), amin, { atol: 0, what: `argmin dim ${d}` });
      expect(argmin(t, d, true).shape).toEqual(shape.map((s, i) => (i === d ? 1 : s)));
    }
    const flat = [...x];
    expect(await read(argmax(t))).toEqual(Float64Array.from([flat.indexOf(Math.max(...flat))]));
    expect(await read(argmin(t))).toEqual(Float64Array.from([flat.indexOf(Math.min(...flat))]));
  });

  it('maxWithIndices/minWithIndices: values, indices, gradient to the index only', async () => {
    const shape = [3, 6, 5];
    const x = Float64Array.from(randArray(90, 43, 0, 3), (v) => Math.floor(v)); // ties
    for (const [fn, pick] of [[maxWithIndices, Math.max], [minWithIndices, Math.min]] as const) {
      for (const keepdim of [false, true]) {
        const t = t32(x, shape, true);
        const { values, indices } = fn(t, 1, keepdim);
        const g = groups(shape, [1]);
        const wantV = Float64Array.from(g, (ix) => pick(...ix.map((i) => x[i])));
        const wantI = Float64Array.from(g, (ix, o) => ix.findIndex((i) => x[i] === wantV[o]));
        expectClose(await read(values), wantV, { atol: 0 });
        expectClose(await read(indices), wantI, { atol: 0 });
        const w = randArray(15, 4, 0.5, 1.5);
        backward(values, t32(w, values.shape));
        const gx = new Float64Array(90);
        g.forEach((ix, o) => (gx[ix[wantI[o]]] = w[o]));
        expectClose(await read(t.grad!), gx, { atol: 0 });
      }
    }
  });
});

describe('two-pass path for few long rows', () => {
  it('picks the path by shape', () => {
    expect(usesTwoPass(1, 3_000_001)).toBe(true);
    expect(usesTwoPass(3, 20_001)).toBe(true);
    expect(usesTwoPass(3, 999)).toBe(false);
    expect(usesTwoPass(5000, 20_001)).toBe(false);
  });

  it('one pass up to the crossover: [5, 8191]', async () => {
    expect(usesTwoPass(5, 8191)).toBe(false);
    const x = asF32(randArray(5 * 8191, 79, -1, 1));
    const got = await read(sum(t32(x, [5, 8191]), 1));
    expectClose(got, refReduce(x, [5, 8191], [1], refSum), { atol: 1e-4, rtol: 1e-5 });
  });

  it('sum of 3,000,001 elements against float64', async () => {
    const n = 3_000_001;
    const x = asF32(randArray(n, 77, 0, 1));
    let want = 0;
    for (let i = 0; i < n; i++) want += x[i];
    const t = t32(x, [n]);
    const got = (await read(sum(t)))[0];
    // Error bound: each element passes through at most 16 (thread loop) + 8 (tree) additions in
    // the partial pass, then ceil(733/256) = 3 + 8 in the row pass: |err| <= 35 u sum|x| with
    // u = 2^-24, i.e. a relative 2.1e-6 for these positive inputs. We allow 3e-6.
    expect(Math.abs(got - want) / want).toBeLessThan(3e-6);
    const m = (await read(mean(t)))[0];
    expect(Math.abs(m - want / n) / (want / n)).toBeLessThan(3e-6);
  });

  it('sum/max/min/logsumexp/variance/argmax on [3, 20001] (two-pass) with gradients', async () => {
    const shape = [3, 20001];
    const x = asF32(randArray(3 * 20001, 91, -3, 3));
    const t = t32(x, shape, true);
    const checks: [string, Tensor, RefFn, number][] = [
      ['sum', sum(t, 1), refSum, 1e-3],
      ['max', max(t, 1), refMax, 0],
      ['min', min(t, -1), refMin, 0],
      ['logsumexp', logsumexp(t, 1), refLse, 1e-5],
      ['variance', variance(t, 1), refVar(1), 1e-5],
      ['std', std(t, 1, { correction: 0 }), refStd(0), 1e-5],
    ];
    for (const [name, y, f, atol] of checks) {
      expectClose(await read(y), refReduce(x, shape, [1], f), { atol, rtol: 1e-5, what: name });
    }
    const g = groups(shape, [1]);
    const rowMax = refReduce(x, shape, [1], refMax);
    const am = Float64Array.from(g, (ix, o) => ix.findIndex((i) => x[i] === rowMax[o]));
    expectClose(await read(argmax(t, 1)), am, { atol: 0, what: 'argmax' });
    // a row whose maximum repeats in two chunks: the first index wins across partials
    const tie = new Float32Array(20001).fill(1);
    tie[15000] = 7;
    tie[5000] = 7;
    tie[19999] = -7;
    tie[9000] = -7;
    const tt = tensor(tie, [1, 20001]);
    expect(await read(argmax(tt, 1))).toEqual(Float64Array.from([5000]));
    expect(await read(argmin(tt))).toEqual(Float64Array.from([9000]));
    // gradients through the two-pass variance and logsumexp (same backward kernel as one-pass)
    const w = randArray(3, 9, 0.5, 1.5);
    backward(sum(variance(t, 1), 0) as Tensor);
    const gv = await read(t.grad!);
    const mu = refReduce(x, shape, [1], refMean);
    const gref = Float64Array.from(x, (v, i) => (2 * (v - mu[Math.floor(i / 20001)])) / 20000);
    expectClose(gv, gref, { atol: 1e-7, rtol: 1e-4, what: 'variance gradient' });
    const t2 = t32(x, shape, true);
    backward(logsumexp(t2, 1), t32(w, [3]));
    const lse = refReduce(x, shape, [1], refLse);
    const gl = Float64Array.from(x, (v, i) => w[Math.floor(i / 20001)] * Math.exp(v - lse[Math.floor(i / 20001)]));
    expectClose(await read(t2.grad!), gl, { atol: 1e-9, rtol: 1e-4, what: 'logsumexp gradient' });
  });
});

describe('memory', () => {
  it('frees everything it allocates in a scope (forward, backward, two-pass)', async () => {
    const t = t32(randArray(3 * 9001, 5), [3, 9001], true);
    const before = memoryStats();
    scope(() => {
      backward(sum(max(t, 1)));
      backward(sum(logsumexp(t, 0)));
      backward(sum(std(t, [0, 1])));
      backward(sum(maxWithIndices(t, 1).values));
      argmin(t, 1);
      variance(t, 1); // never backpropagated
    });
    t.grad?.dispose();
    t.grad = null;
    expect(memoryStats()).toEqual(before);
  });
});

describe('column path (reduced axes in place, outputs innermost)', () => {
  it('splits long columns into chunks, recursively', () => {
    expect(columnChunks(5, 20001)).toBe(313);
    expect(columnChunks(5, 313)).toBe(5);
    expect(columnChunks(5, 5)).toBe(1);
    expect(columnChunks(100_000, 20001)).toBe(1);
  });

  for (const { shape, axis } of [
    { shape: [20001, 5], axis: 0 },
    { shape: [3, 4001, 8], axis: 1 },
  ]) {
    it(`sum/max/min/logsumexp/variance/std of ${JSON.stringify(shape)} over axis ${axis}, with gradients`, async () => {
      const n = shape.reduce((a, b) => a * b, 1);
      const x = asF32(randArray(n, 97 + axis, -3, 3));
      const ops: [string, (t: Tensor) => Tensor, RefFn, RefGrad, number][] = [
        ['sum', (t) => sum(t, axis), refSum, gSum, 1e-3],
        ['max', (t) => max(t, axis), refMax, gExt(refMax), 0],
        ['min', (t) => min(t, axis, true), refMin, gExt(refMin), 0],
        ['logsumexp', (t) => logsumexp(t, axis), refLse, gLse, 1e-5],
        ['variance', (t) => variance(t, axis), refVar(1), gVar(1), 1e-5],
        ['std', (t) => std(t, axis, { correction: 0, keepdim: true }), refStd(0), gStd(0), 1e-5],
      ];
      for (const [name, op, f, gf, atol] of ops) {
        const want = refReduce(x, shape, [axis], f);
        const w = randArray(want.length, 3, 0.5, 1.5);
        const { y, gx } = await gpuRun(x, shape, op, w);
        expectClose(y, want, { atol, rtol: 1e-5, what: `${name} forward` });
        expectClose(gx, refGrad(x, shape, [axis], gf, w), { atol: 1e-7, rtol: 1e-4, what: `${name} gradient` });
      }
    });
  }
});

describe('bad input', () => {
  it('raises OpError naming the op', () => {
    const dispatches = runtime().device.stats.dispatches;
    const t = tensor(new Float32Array(6), [2, 3]);
    expect(() => sum(t, 2)).toThrow(OpError);
    expect(() => sum(t, 2)).toThrow(/sum: axis 2 out of range for rank 2/);
    expect(() => max(t, [0, 0])).toThrow(/max: repeated axis/);
    expect(() => argmax(t, 5)).toThrow(/argmax: dimension 5 out of range for shape \[2, 3\]/);
    expect(() => max(tensor(new Float32Array(0), [2, 0]), 1)).toThrow(/max: cannot take the max of an empty set/);
    expect(() => logsumexp(tensor(new Int32Array([1, 2]), [2]))).toThrow(/logsumexp: expects an f32 tensor, got i32/);
    expect(() => reduceRaw('sum', tensor(new Int32Array([1, 2]), [2]), [0], false)).toThrow(OpError);
    expect(runtime().device.stats.dispatches).toBe(dispatches); // no kernel ran
  });
});
