import { describe, it, expect, beforeAll } from 'vitest';
import { engine, t32, read } from '../helpers/gpu.ts';
import { randArray, asF32, expectClose, finiteDiff, dot } from '../helpers/reference.ts';
import { tensor, backward, transpose, OpError, type Tensor } from '../../src/engine/index.ts';
import {
  neg, abs, exp, log, sqrt, rsqrt, relu, leakyRelu, tanh, sigmoid, gelu, softplus, clamp, pow, powT,
  square, reciprocal, sin, cos, where, coalesce,
} from '../../src/engine/ops/unary.ts';
import { slice } from '../../src/engine/ops/shape.ts';

beforeAll(async () => {
  await engine();
});

// ------------------------------------------------------------------ float64 references

/** erf in float64: Taylor series near 0, Laplace's continued fraction for erfc further out. */
function erfc64(x: number): number {
  if (x < 0) return 2 - erfc64(-x);
  if (x < 2.5) {
    let term = x;
    let s = x;
    for (let n = 1; n < 200; n++) {
      term *= (-x * x) / n;
      const add = term / (2 * n + 1);
      s += add;
      if (Math.abs(add) < 1e-17 * Math.abs(s)) break;
    }
    return 1 - (2 / Math.sqrt(Math.PI)) * s;
  }
  let f = x;
  for (let k = 80; k >= 1; k--) f = x + k / 2 / f;
  return Math.exp(-x * x) / Math.sqrt(Math.PI) / f;
}
const Phi = (x: number) => 0.5 * erfc64(-x / Math.SQRT2);
const phi = (x: number) => Math.exp(-0.5 * x * x) / Math.sqrt(2 * Math.PI);
const sig = (x: number) => (x >= 0 ? 1 / (1 + Math.exp(-x)) : Math.exp(x) / (1 + Math.exp(x)));
const K = Math.sqrt(2 / Math.PI);
// 0.5 x (1 + tanh u) written as x sigmoid(2u), which keeps the negative tail in float64 too
const sigD = (z: number) => Math.exp(-Math.abs(z)) / (1 + Math.exp(-Math.abs(z))) ** 2;
const geluTanh = (x: number) => x * sig(2 * K * (x + 0.044715 * x ** 3));
const geluTanhD = (x: number) => {
  const u = K * (x + 0.044715 * x ** 3);
  return sig(2 * u) + x * sigD(2 * u) * 2 * K * (1 + 3 * 0.044715 * x * x);
};
const softplus64 = (beta: number, th: number) => (x: number) => (x * beta > th ? x : Math.log1p(Math.exp(beta * x)) / beta);
const softplusD = (beta: number, th: number) => (x: number) => (x * beta > th ? 1 : sig(beta * x));

interface Case {
  name: string;
  run: (x: Tensor) => Tensor;
  f: (x: number) => number;
  df: (x: number) => number;
  lo: number;
  hi: number;
}

const cases: Case[] = [
  { name: 'neg', run: neg, f: (x) => -x, df: () => -1, lo: -2, hi: 2 },
  { name: 'abs', run: abs, f: Math.abs, df: Math.sign, lo: -2, hi: 2 },
  { name: 'exp', run: exp, f: Math.exp, df: Math.exp, lo: -3, hi: 3 },
  { name: 'log', run: log, f: Math.log, df: (x) => 1 / x, lo: 0.1, hi: 4 },
  { name: 'sqrt', run: sqrt, f: Math.sqrt, df: (x) => 0.5 / Math.sqrt(x), lo: 0.1, hi: 4 },
  { name: 'rsqrt', run: rsqrt, f: (x) => 1 / Math.sqrt(x), df: (x) => -0.5 * x ** -1.5, lo: 0.1, hi: 4 },
  { name: 'relu', run: relu, f: (x) => Math.max(x, 0), df: (x) => (x > 0 ? 1 : 0), lo: -2, hi: 2 },
  { name: 'leakyRelu(0.2)', run: (x) => leakyRelu(x, 0.2), f: (x) => (x > 0 ? x : 0.2 * x), df: (x) => (x > 0 ? 1 : 0.2), lo: -2, hi: 2 },
  { name: 'tanh', run: tanh, f: Math.tanh, df: (x) => 1 - Math.tanh(x) ** 2, lo: -4, hi: 4 },
  { name: 'sigmoid', run: sigmoid, f: sig, df: (x) => sig(x) * (1 - sig(x)), lo: -6, hi: 6 },
  { name: 'gelu', run: (x) => gelu(x), f: (x) => x * Phi(x), df: (x) => Phi(x) + x * phi(x), lo: -4, hi: 4 },
  { name: 'gelu(tanh)', run: (x) => gelu(x, 'tanh'), f: geluTanh, df: geluTanhD, lo: -4, hi: 4 },
  { name: 'softplus', run: (x) => softplus(x), f: softplus64(1, 20), df: softplusD(1, 20), lo: -4, hi: 4 },
  { name: 'softplus(2, 3)', run: (x) => softplus(x, 2, 3), f: softplus64(2, 3), df: softplusD(2, 3), lo: -3, hi: 3 },
  { name: 'clamp(-0.5, 0.7)', run: (x) => clamp(x, -0.5, 0.7), f: (x) => Math.min(Math.max(x, -0.5), 0.7), df: (x) => (x >= -0.5 && x <= 0.7 ? 1 : 0), lo: -2, hi: 2 },
  { name: 'clamp(min 0.1)', run: (x) => clamp(x, 0.1), f: (x) => Math.max(x, 0.1), df: (x) => (x >= 0.1 ? 1 : 0), lo: -2, hi: 2 },
  { name: 'pow 3', run: (x) => pow(x, 3), f: (x) => x ** 3, df: (x) => 3 * x * x, lo: -2, hi: 2 },
  { name: 'pow -2', run: (x) => pow(x, -2), f: (x) => x ** -2, df: (x) => -2 * x ** -3, lo: 0.4, hi: 2 },
  { name: 'pow 2.5', run: (x) => pow(x, 2.5), f: (x) => x ** 2.5, df: (x) => 2.5 * x ** 1.5, lo: 0.2, hi: 3 },
  { name: 'pow 0.5', run: (x) => pow(x, 0.5), f: Math.sqrt, df: (x) => 0.5 / Math.sqrt(x), lo: 0.2, hi: 3 },
  { name: 'pow -1.5', run: (x) => pow(x, -1.5), f: (x) => x ** -1.5, df: (x) => -1.5 * x ** -2.5, lo: 0.3, hi: 3 },
  { name: 'square', run: square, f: (x) => x * x, df: (x) => 2 * x, lo: -2, hi: 2 },
  { name: 'reciprocal', run: reciprocal, f: (x) => 1 / x, df: (x) => -1 / (x * x), lo: 0.3, hi: 3 },
  { name: 'sin', run: sin, f: Math.sin, df: Math.cos, lo: -3, hi: 3 },
  { name: 'cos', run: cos, f: Math.cos, df: (x) => -Math.sin(x), lo: -3, hi: 3 },
];

const R = 7;
const C = 13;
// The strided entry points share forward()/backward() with the flat ones and only index
// differently, so a few ops (with and without scalars) cover them; each extra op costs pipeline
// compilations on the software adapter.
const STRIDED = new Set(['abs', 'tanh', 'gelu', 'softplus(2, 3)', 'clamp(-0.5, 0.7)', 'pow 2.5', 'leakyRelu(0.2)']);

describe('unary ops: forward and backward against float64 references', () => {
  cases.forEach((c, k) => {
    it(`${c.name}: values and gradients${STRIDED.has(c.name) ? ', contiguous and strided' : ''}`, async () => {
      const x = asF32(randArray(R * C, 100 + k, c.lo, c.hi));
      const w = asF32(randArray(R * C, 200 + k, -1, 1));
      const want = x.map(c.f);
      const wantGrad = x.map((v, i) => w[i] * c.df(v));
      // the reference's gradient agrees with central differences of the reference
      expectClose(wantGrad, finiteDiff((xx) => dot(xx.map(c.f), w), x), { atol: 1e-5, rtol: 1e-5, what: `${c.name} reference gradient` });

      // contiguous input: the flat path
      const xt = t32(x, [R, C], true);
      const y = c.run(xt);
      expect(y.shape).toEqual([R, C]);
      expectClose(await read(y), want, { atol: 2e-6, rtol: 2e-6, what: `${c.name} forward` });
      backward(y, t32(w, [R, C]));
      expectClose(await read(xt.grad!), wantGrad, { atol: 2e-6, rtol: 1e-5, what: `${c.name} gradient` });

      if (!STRIDED.has(c.name)) return;
      // strided input: the [C, R] storage viewed transposed as [R, C]
      const stored = new Float64Array(R * C);
      for (let i = 0; i < R; i++) for (let j = 0; j < C; j++) stored[j * R + i] = x[i * C + j];
      const base = t32(stored, [C, R], true);
      const view = transpose(base);
      expect(view.isContiguous).toBe(false);
      const y2 = c.run(view);
      expectClose(await read(y2), want, { atol: 2e-6, rtol: 2e-6, what: `${c.name} forward (strided)` });
      backward(y2, t32(w, [R, C]));
      const g2 = await read(base.grad!);
      const g2logical = new Float64Array(R * C);
      for (let i = 0; i < R; i++) for (let j = 0; j < C; j++) g2logical[i * C + j] = g2[j * R + i];
      expectClose(g2logical, wantGrad, { atol: 2e-6, rtol: 1e-5, what: `${c.name} gradient (strided)` });
    });
  });
});

describe('unary ops: large inputs and special values', () => {
  const big = [-1e30, -1e4, -200, -90, -50, -20, -9, 9, 20, 50, 90, 200, 1e4, 1e30];

  it('tanh, sigmoid, softplus, gelu and their gradients stay finite and exact for huge |x|', async () => {
    const x = t32(big, [big.length], true);
    const checks: [string, (t: Tensor) => Tensor, (v: number) => number, (v: number) => number][] = [
      ['tanh', tanh, Math.tanh, (v) => 4 * Math.exp(-2 * Math.abs(v)) / (1 + Math.exp(-2 * Math.abs(v))) ** 2],
      ['sigmoid', sigmoid, sig, sigD],
      ['softplus', (t) => softplus(t), softplus64(1, 20), softplusD(1, 20)],
      ['softplus(beta 0.5, threshold 1e6)', (t) => softplus(t, 0.5, 1e6), (v) => (v > 0 ? v + Math.log1p(Math.exp(-0.5 * v)) / 0.5 : Math.log1p(Math.exp(0.5 * v)) / 0.5), (v) => sig(0.5 * v)],
      ['gelu', (t) => gelu(t), (v) => v * Phi(v), (v) => Phi(v) + v * phi(v)],
      ['gelu(tanh)', (t) => gelu(t, 'tanh'), geluTanh, geluTanhD],
    ];
    for (const [name, fn, f, df] of checks) {
      x.grad = null;
      const y = fn(x);
      const got = await read(y);
      // WGSL allows exp an error of 3 + 2|x| ULP: tails like exp(-45) are good to ~30 ULP here
      expectClose(got, big.map(f), { atol: 1e-30, rtol: 1e-5, what: `${name} forward` });
      backward(y, t32(new Array(big.length).fill(1), [big.length]));
      const g = await read(x.grad!);
      expect(g.every(Number.isFinite), `${name} gradient finite: ${Array.from(g)}`).toBe(true);
      expectClose(g, big.map(df), { atol: 1e-30, rtol: 2e-5, what: `${name} gradient` });
    }
  });

  it('exp overflows to +inf and underflows to 0; log(0) = -inf; sqrt/log of negatives are NaN', async () => {
    expectClose(await read(exp(t32([-1e4, -200, 88, 89, 200, 1e30], [6]))), [0, 0, Math.fround(Math.exp(88)), Infinity, Infinity, Infinity], { rtol: 4e-6 });
    const special = t32([0, -1, 4], [3]);
    expectClose(await read(log(special)), [-Infinity, NaN, Math.log(4)]);
    expectClose(await read(sqrt(special)), [0, NaN, 2]);
    expectClose(await read(rsqrt(special)), [Infinity, NaN, 0.5]);
    expectClose(await read(reciprocal(t32([0, -2], [2]))), [Infinity, -0.5]);
  });

  it('relu and abs have gradient 0 at exactly 0; clamp passes the gradient at its bounds; NaN stays NaN', async () => {
    const x = t32([0, -0, 1, -1], [4], true);
    backward(relu(x), t32([1, 1, 1, 1], [4]));
    expectClose(await read(x.grad!), [0, 0, 1, 0]);
    x.grad = null;
    backward(abs(x), t32([1, 1, 1, 1], [4]));
    expectClose(await read(x.grad!), [0, 0, 1, -1]);
    const b = t32([-0.5, 0.7, 0.8, NaN], [4], true);
    const cl = clamp(b, -0.5, 0.7);
    expectClose(await read(cl), [-0.5, Math.fround(0.7), Math.fround(0.7), NaN]);
    backward(cl, t32([1, 1, 1, 1], [4]));
    expectClose(await read(b.grad!), [1, 1, 0, 0]);
    expectClose(await read(relu(t32([NaN, -2], [2]))), [NaN, 0]);
  });

  it('NaN propagates through every op (the stable forms do not turn it into a number); NaN^0 = 1', async () => {
    const x = t32([NaN, 1], [2]);
    for (const fn of [neg, abs, exp, log, sqrt, rsqrt, relu, tanh, sigmoid, (t: Tensor) => gelu(t), (t: Tensor) => gelu(t, 'tanh'),
      (t: Tensor) => softplus(t), (t: Tensor) => clamp(t, 0, 2), (t: Tensor) => leakyRelu(t), (t: Tensor) => pow(t, 2.5), square, reciprocal, sin, cos]) {
      const y = await read(fn(x));
      expect(Number.isNaN(y[0]), `${fn.name || 'op'}(NaN)`).toBe(true);
      expect(Number.isNaN(y[1])).toBe(false);
    }
    expectClose(await read(pow(x, 0)), [1, 1]);
    expectClose(await read(powT(t32([2, NaN], [2]), t32([NaN, 0], [2]))), [NaN, 1]);
  });

  it('pow follows C pow: signs of integer powers, NaN for fractional powers of negatives, 0^0 = 1', async () => {
    const x = t32([-2, -2, -2, 0, 0, 0, 3], [7]);
    const e = t32([3, 2, 0.5, 0, 2, -1, -2], [7]);
    expectClose(await read(powT(x, e)), [-8, 4, NaN, 1, 0, Infinity, 1 / 9], { rtol: 1e-6 });
    expectClose(await read(pow(t32([-3, 0, 5], [3]), 0)), [1, 1, 1]);
    expectClose(await read(pow(t32([-3, 0, 5], [3]), -1)), [-1 / 3, Infinity, 0.2], { rtol: 1e-6 });
  });
});

describe('pow(tensor, tensor) with broadcasting', () => {
  it('values and both gradients against float64 and finite differences', async () => {
    const A = [5, 1, 3];
    const B = [4, 3];
    const a = asF32(randArray(15, 31, 0.3, 2.5));
    const b = asF32(randArray(12, 32, -2, 2));
    const out = [5, 4, 3];
    const w = asF32(randArray(60, 33));
    const f = (aa: Float64Array, bb: Float64Array) => {
      const y = new Float64Array(60);
      for (let i = 0; i < 5; i++) for (let j = 0; j < 4; j++) for (let k = 0; k < 3; k++) y[(i * 4 + j) * 3 + k] = aa[i * 3 + k] ** bb[j * 3 + k];
      return y;
    };
    const ga = new Float64Array(15);
    const gb = new Float64Array(12);
    for (let i = 0; i < 5; i++) {
      for (let j = 0; j < 4; j++) {
        for (let k = 0; k < 3; k++) {
          const o = (i * 4 + j) * 3 + k;
          const av = a[i * 3 + k];
          const bv = b[j * 3 + k];
          ga[i * 3 + k] += w[o] * bv * av ** (bv - 1);
          gb[j * 3 + k] += w[o] * av ** bv * Math.log(av);
        }
      }
    }
    expectClose(ga, finiteDiff((aa) => dot(f(aa, b), w), a), { atol: 1e-5, rtol: 1e-5 });
    expectClose(gb, finiteDiff((bb) => dot(f(a, bb), w), b), { atol: 1e-5, rtol: 1e-5 });
    const at = t32(a, A, true);
    const bt = t32(b, B, true);
    const y = pow(at, bt);
    expect(y.shape).toEqual(out);
    expectClose(await read(y), f(a, b), { rtol: 2e-6 });
    backward(y, t32(w, out));
    expectClose(await read(at.grad!), ga, { atol: 1e-5, rtol: 1e-5 });
    expectClose(await read(bt.grad!), gb, { atol: 1e-5, rtol: 1e-5 });
  });

  it('the exponent gradient is 0 where the base is 0 and the exponent >= 0 (PyTorch)', async () => {
    const a = t32([0, 0, 2], [3], true);
    const b = t32([2, 1.5, 3], [3], true);
    backward(powT(a, b), t32([1, 1, 1], [3]));
    expectClose(await read(b.grad!), [0, 0, 8 * Math.log(2)], { rtol: 1e-6 });
    expectClose(await read(a.grad!), [0, 0, 12], { rtol: 1e-6 });
  });
});

describe('where', () => {
  it('broadcasts cond [6,1], a [6,5], b [5]; gradients go to the chosen side', async () => {
    const condV = [1, 0, 0, 1, 1, 0];
    const a = asF32(randArray(30, 41));
    const b = asF32(randArray(5, 42));
    const w = asF32(randArray(30, 43));
    const want = new Float64Array(30);
    const ga = new Float64Array(30);
    const gb = new Float64Array(5);
    for (let i = 0; i < 6; i++) {
      for (let j = 0; j < 5; j++) {
        const o = i * 5 + j;
        want[o] = condV[i] ? a[o] : b[j];
        if (condV[i]) ga[o] += w[o];
        else gb[j] += w[o];
      }
    }
    const f = (aa: Float64Array, bb: Float64Array) => Float64Array.from({ length: 30 }, (_, o) => (condV[Math.floor(o / 5)] ? aa[o] : bb[o % 5]));
    expectClose(ga, finiteDiff((aa) => dot(f(aa, b), w), a), { atol: 1e-6 });
    expectClose(gb, finiteDiff((bb) => dot(f(a, bb), w), b), { atol: 1e-6 });
    for (const cond of [t32(condV, [6, 1]), tensor(Int32Array.from(condV), [6, 1])]) {
      const at = t32(a, [6, 5], true);
      const bt = t32(b, [5], true);
      const y = where(cond, at, bt);
      expect(y.shape).toEqual([6, 5]);
      expectClose(await read(y), want, { atol: 0, rtol: 0 });
      backward(y, t32(w, [6, 5]));
      expectClose(await read(at.grad!), ga, { atol: 0, rtol: 0 });
      expectClose(await read(bt.grad!), gb, { atol: 1e-6 });
    }
  });

  it('takes numbers and strided views; -0.0 is false, NaN true; i32 values', async () => {
    const cond = transpose(t32([1, -0, NaN, 0, 2, 0], [2, 3])); // [3, 2] view
    expectClose(await read(where(cond, 5, t32([-1, -2], [2]))), [5, -2, -1, 5, 5, -2]);
    const vi = where(tensor(new Int32Array([0, 1, 1]), [3]), tensor(new Int32Array([7, 8, 9]), [3]), -4);
    expect(vi.dtype).toBe('i32');
    expect(Array.from(await vi.data())).toEqual([-4, 8, 9]);
  });
});

describe('dimension coalescing', () => {
  it('merges dimensions every operand walks linearly, drops size-1 dimensions', () => {
    // a [4, 3, 6] slice of a [4, 5, 6] tensor (strides 30, 6, 1) against a contiguous output
    expect(coalesce([4, 3, 6], [{ strides: [18, 6, 1], offset: 0 }, { strides: [30, 6, 1], offset: 6 }])).toEqual({
      shape: [4, 18],
      ops: [{ strides: [18, 1], offset: 0 }, { strides: [30, 1], offset: 6 }],
    });
    // broadcast scalar and size-1 dimensions: rank 1
    expect(coalesce([2, 1, 3], [{ strides: [3, 3, 1], offset: 0 }, { strides: [0, 0, 0], offset: 2 }])).toEqual({
      shape: [6],
      ops: [{ strides: [1], offset: 0 }, { strides: [0], offset: 2 }],
    });
    // a transposed operand keeps both dimensions
    expect(coalesce([3, 4], [{ strides: [4, 1], offset: 0 }, { strides: [1, 3], offset: 0 }]).shape).toEqual([3, 4]);
    expect(coalesce([], [{ strides: [], offset: 5 }])).toEqual({ shape: [1], ops: [{ strides: [0], offset: 5 }] });
  });

  it('a coalesced strided slice gives the same values as the reference', async () => {
    const x = asF32(randArray(120, 77, -2, 2));
    const v = slice(t32(x, [4, 5, 6]), [0, 1], [4, 4]);
    expect(v.isContiguous).toBe(false);
    const want: number[] = [];
    for (let i = 0; i < 4; i++) for (let j = 1; j < 4; j++) for (let k = 0; k < 6; k++) want.push(Math.tanh(x[(i * 5 + j) * 6 + k]));
    expectClose(await read(tanh(v)), want, { atol: 2e-6, rtol: 2e-6 });
  });
});

describe('unary ops: bad input', () => {
  it('rejects integer tensors, dtype mismatches, bad broadcasts and bad scalars before running', () => {
    const i = tensor(new Int32Array([1, 2]), [2]);
    expect(() => exp(i)).toThrow(OpError);
    expect(() => exp(i)).toThrow(/exp: expects an f32 tensor, got i32/);
    const x = t32([1, 2, 3], [3]);
    expect(() => where(t32([1], [1]), x, i)).toThrow(/where: dtype mismatch/);
    expect(() => where(t32([1, 0], [2]), x, x)).toThrow(/where: .*cannot be broadcast/);
    expect(() => powT(x, t32([1, 2], [2]))).toThrow(/pow: .*cannot be broadcast/);
    expect(() => pow(x, NaN)).toThrow(/pow: exponent is NaN/);
    expect(() => softplus(x, 0)).toThrow(/softplus: beta/);
    expect(() => clamp(x)).toThrow(/clamp: at least one/);
    expect(() => gelu(x, 'fast' as 'tanh')).toThrow(/gelu: approximate/);
    const d = t32([1], [1]);
    d.dispose();
    expect(() => relu(d)).toThrow(/used after dispose/);
  });
});
