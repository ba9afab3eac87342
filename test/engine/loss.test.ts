/**
 * Losses against float64 references: fused cross-entropy (hard targets with ignoreIndex, label
 * smoothing and every reduction; soft targets), the uniform-target cross-entropy, NLL, MSE and
 * BCE with logits; out-of-range targets (never read, recorded, reported). Every backward checked
 * by finite differences on the reference and against the GPU.
 */
import { describe, it, expect, beforeAll } from 'vitest';
import { engine, t32, read } from '../helpers/gpu.ts';
import { randArray, asF32, expectClose, finiteDiff, dot } from '../helpers/reference.ts';
import { lseRow, refCe, refCeGrad, refCeRows, reduceRef, type Red } from '../helpers/ref-loss.ts';
import {
  crossEntropy, uniformCrossEntropy, nllLoss, mseLoss, binaryCrossEntropyWithLogits, validateTargets,
  checkIndexErrors, logSoftmax, backward, tensor, transpose, OpError, memoryStats, scope,
  runtime,
} from '../../src/engine/index.ts';

beforeAll(async () => {
  await engine();
});

function targetsOf(N: number, C: number, seed: number): number[] {
  return Array.from(randArray(N, seed, 0, C), (v) => Math.floor(v));
}

describe('crossEntropy with class-index targets', () => {
  const cases: { N: number; C: number; e: number; ignore: number; scale: number }[] = [
    { N: 7, C: 5, e: 0, ignore: -100, scale: 3 },
    { N: 7, C: 5, e: 0.15, ignore: -100, scale: 3 },
    { N: 5, C: 301, e: 0.1, ignore: -1, scale: 2 }, // rows longer than the workgroup
    { N: 6, C: 9, e: 0, ignore: -100, scale: 1000 }, // huge logits
  ];
  for (const { N, C, e, ignore, scale } of cases) {
    for (const red of ['mean', 'sum', 'none'] as const) {
      it(`N ${N} C ${C} smoothing ${e} ignore ${ignore} scale ${scale} reduction ${red}`, async () => {
        const x = asF32(randArray(N * C, N * C + 3, -scale, scale));
        const t = targetsOf(N, C, 9 + C);
        t[2] = ignore; // one ignored sample
        const xt = t32(x, [N, C], true);
        const loss = crossEntropy(xt, tensor(Int32Array.from(t), [N]), { reduction: red, labelSmoothing: e, ignoreIndex: ignore });
        const want = refCe(x, t, C, e, ignore, red);
        expect(loss.shape).toEqual(red === 'none' ? [N] : []);
        expectClose(await read(loss), want, { atol: 1e-5, rtol: scale > 100 ? 1e-6 : 1e-5, what: 'loss' });
        const w = red === 'none' ? randArray(N, 4, 0.5, 1.5) : Float64Array.from([1.3]);
        backward(loss, t32(w, loss.shape));
        const ref = refCeGrad(x, t, C, e, ignore, red, w);
        if (scale < 100 && N * C < 400) {
          const fd = finiteDiff((v) => dot(refCe(v, t, C, e, ignore, red), w), x);
          expectClose(fd, ref, { atol: 1e-7, rtol: 1e-6, what: 'reference gradient vs finite differences' });
        }
        expectClose(await read(xt.grad!), ref, { atol: 1e-6, rtol: 1e-4, what: 'gradient' });
      });
    }
  }

  it('mean over no valid sample is NaN (as PyTorch)', async () => {
    const loss = crossEntropy(t32(randArray(6, 1), [2, 3]), tensor(new Int32Array([-100, -100]), [2]));
    expect(Number.isNaN((await read(loss))[0])).toBe(true);
  });

  it('a strided (transposed) logits view', async () => {
    const x = asF32(randArray(21, 5, -2, 2));
    const base = t32(x, [3, 7], true);
    const logits = transpose(base); // [7, 3]
    const xt = new Float64Array(21);
    for (let i = 0; i < 7; i++) for (let j = 0; j < 3; j++) xt[i * 3 + j] = x[j * 7 + i];
    const t = [0, 2, 1, 1, 0, 2, 2];
    const loss = crossEntropy(logits, tensor(Int32Array.from(t), [7]));
    expectClose(await read(loss), refCe(xt, t, 3, 0, -100, 'mean'), { atol: 1e-6 });
    backward(loss);
    const gt = refCeGrad(xt, t, 3, 0, -100, 'mean', [1]);
    const g = new Float64Array(21);
    for (let i = 0; i < 7; i++) for (let j = 0; j < 3; j++) g[j * 7 + i] = gt[i * 3 + j];
    expectClose(await read(base.grad!), g, { atol: 1e-6, rtol: 1e-4 });
  });
});

describe('views with offsets', () => {
  it('crossEntropy on a slice of rows, targets from a slice too', async () => {
    const x = asF32(randArray(30, 131, -2, 2));
    const base = t32(x, [6, 5]);
    const logits = base.view([3, 5], [5, 1], 10); // rows 2..4: a leaf view with offset 10
    logits.requiresGrad = true;
    const allT = tensor(new Int32Array([9, 9, 4, 0, 2, 9]), [6]);
    const t = allT.view([3], [1], 2);
    const loss = crossEntropy(logits, t, { labelSmoothing: 0.1 });
    const sub = x.slice(10, 25);
    expectClose(await read(loss), refCe(sub, [4, 0, 2], 5, 0.1, -100, 'mean'), { atol: 1e-6 });
    backward(loss);
    expectClose(await read(logits.grad!), refCeGrad(sub, [4, 0, 2], 5, 0.1, -100, 'mean', [1]), { atol: 1e-6, rtol: 1e-4 });
  });
});

describe('out-of-range targets', () => {
  it('are never read: treated as ignored, recorded, and reported by checkIndexErrors', async () => {
    await checkIndexErrors(); // start from a clean register
    const N = 6;
    const C = 4;
    const x = asF32(randArray(N * C, 61, -2, 2));
    const t = [1, 7, 0, -5, 3, 2]; // 7 and -5 are out of range
    const xt = t32(x, [N, C], true);
    const loss = crossEntropy(xt, tensor(Int32Array.from(t), [N]));
    // the same value as with those rows ignored (mean over the 4 valid rows)
    const tIgn = t.map((v) => (v >= 0 && v < C ? v : -100));
    expectClose(await read(loss), refCe(x, tIgn, C, 0, -100, 'mean'), { atol: 1e-6 });
    backward(loss);
    expectClose(await read(xt.grad!), refCeGrad(x, tIgn, C, 0, -100, 'mean', [1]), { atol: 1e-6, rtol: 1e-4 });
    await expect(checkIndexErrors()).rejects.toThrow(/crossEntropy: 2 index value\(s\) out of range \(bad values between -5 and 7, first at position 1\)/);
    await checkIndexErrors(); // cleared after reporting
    nllLoss(t32(x, [N, C]), tensor(Int32Array.from(t), [N]));
    await expect(checkIndexErrors()).rejects.toThrow(/nllLoss: 2 index value/);
  });

  it('validateTargets checks labels up front', async () => {
    await validateTargets(tensor(new Int32Array([0, 4, -100, 2]), [4]), 5);
    await expect(validateTargets(tensor(new Int32Array([0, 5, -100, -3]), [4]), 5)).rejects.toThrow(
      /validateTargets: 2 of 4 indices of shape \[4\] are outside \[0, 5\) \(and not the ignore index -100\): values between -3 and 5, first at flat position 1/,
    );
    await expect(validateTargets(tensor(new Int32Array([0, -100]), [2]), 5, { ignoreIndex: null })).rejects.toThrow(OpError);
    await validateTargets(tensor(new Int32Array([0, -1]), [2]), 5, { ignoreIndex: -1 });
    await checkIndexErrors(); // validateTargets does not touch the shared register
  });
});

describe('crossEntropy with probability targets', () => {
  for (const e of [0, 0.2]) {
    for (const red of ['mean', 'sum', 'none'] as const) {
      it(`smoothing ${e} reduction ${red}: logits and target gradients`, async () => {
        const N = 5;
        const C = 7;
        const x = asF32(randArray(N * C, 71, -3, 3));
        const q = asF32(randArray(N * C, 72, 0.05, 1)); // unnormalised: the formula holds for any q
        const ref = (xv: ArrayLike<number>, qv: ArrayLike<number>): Float64Array => {
          const rows: number[] = [];
          for (let r = 0; r < N; r++) {
            const lse = lseRow(xv, r, C);
            let l = 0;
            for (let c = 0; c < C; c++) l += ((1 - e) * qv[r * C + c] + e / C) * (lse - xv[r * C + c]);
            rows.push(l);
          }
          return reduceRef(rows, red, N);
        };
        const xt = t32(x, [N, C], true);
        const qt = t32(q, [N, C], true);
        const loss = crossEntropy(xt, qt, { reduction: red, labelSmoothing: e });
        expectClose(await read(loss), ref(x, q), { atol: 1e-5, rtol: 1e-5 });
        const w = red === 'none' ? randArray(N, 8, 0.5, 1.5) : Float64Array.from([0.7]);
        backward(loss, t32(w, loss.shape));
        // analytic references, checked by finite differences
        const gx = new Float64Array(N * C);
        const gq = new Float64Array(N * C);
        for (let r = 0; r < N; r++) {
          const wr = red === 'none' ? w[r] : red === 'sum' ? w[0] : w[0] / N;
          const lse = lseRow(x, r, C);
          let sq = 0;
          for (let c = 0; c < C; c++) sq += (1 - e) * q[r * C + c] + e / C;
          for (let c = 0; c < C; c++) {
            const i = r * C + c;
            gx[i] = wr * (Math.exp(x[i] - lse) * sq - ((1 - e) * q[i] + e / C));
            gq[i] = wr * (1 - e) * (lse - x[i]);
          }
        }
        expectClose(finiteDiff((v) => dot(ref(v, q), w), x), gx, { atol: 1e-7, rtol: 1e-6, what: 'fd logits' });
        expectClose(finiteDiff((v) => dot(ref(x, v), w), q), gq, { atol: 1e-7, rtol: 1e-6, what: 'fd targets' });
        expectClose(await read(xt.grad!), gx, { atol: 1e-6, rtol: 1e-4, what: 'logits gradient' });
        expectClose(await read(qt.grad!), gq, { atol: 1e-6, rtol: 1e-4, what: 'targets gradient' });
      });
    }
  }
});

describe('uniformCrossEntropy (the Outlier Exposure term)', () => {
  for (const red of ['none', 'mean', 'sum'] as const) {
    it(`reduction ${red}`, async () => {
      const N = 9;
      const C = 11;
      const x = asF32(randArray(N * C, 81, -4, 4));
      const ref = (v: ArrayLike<number>): Float64Array => {
        const rows: number[] = [];
        for (let r = 0; r < N; r++) {
          let mx = 0;
          for (let c = 0; c < C; c++) mx += v[r * C + c] / C;
          rows.push(lseRow(v, r, C) - mx);
        }
        return reduceRef(rows, red, N);
      };
      const xt = t32(x, [N, C], true);
      const loss = red === 'none' ? uniformCrossEntropy(xt) : uniformCrossEntropy(xt, red);
      expect(loss.shape).toEqual(red === 'none' ? [N] : []);
      const want = ref(x);
      expectClose(await read(loss), want, { atol: 1e-5, rtol: 1e-5 });
      if (red === 'none') for (const v of want) expect(v).toBeGreaterThanOrEqual(Math.log(C));
      const w = red === 'none' ? randArray(N, 3, 0.5, 1.5) : Float64Array.from([1.1]);
      backward(loss, t32(w, loss.shape));
      const g = new Float64Array(N * C);
      for (let r = 0; r < N; r++) {
        const wr = red === 'none' ? w[r] : red === 'sum' ? w[0] : w[0] / N;
        const lse = lseRow(x, r, C);
        for (let c = 0; c < C; c++) g[r * C + c] = wr * (Math.exp(x[r * C + c] - lse) - 1 / C);
      }
      expectClose(finiteDiff((v) => dot(ref(v), w), x), g, { atol: 1e-7, rtol: 1e-6, what: 'fd' });
      expectClose(await read(xt.grad!), g, { atol: 1e-6, rtol: 1e-4, what: 'gradient' });
    });
  }

  it('is log C, its minimum, for constant logits', async () => {
    const y = await read(uniformCrossEntropy(t32(new Array(12).fill(3.5), [3, 4])));
    expectClose(y, [Math.log(4), Math.log(4), Math.log(4)], { atol: 1e-6 });
  });
});

describe('nllLoss', () => {
  for (const red of ['mean', 'sum', 'none'] as const) {
    it(`reduction ${red}, with an ignored sample; logSoftmax + nllLoss equals crossEntropy`, async () => {
      const N = 7;
      const C = 6;
      const x = asF32(randArray(N * C, 91, -2, 2));
      const t = targetsOf(N, C, 93);
      t[4] = -100;
      const ref = (v: ArrayLike<number>): Float64Array => {
        const rows = t.map((tr, r) => (tr === -100 ? 0 : -v[r * C + tr]));
        return reduceRef(rows, red, t.filter((v2) => v2 !== -100).length);
      };
      const xt = t32(x, [N, C], true);
      const loss = nllLoss(xt, tensor(Int32Array.from(t), [N]), { reduction: red });
      expectClose(await read(loss), ref(x), { atol: 1e-6 });
      const w = red === 'none' ? randArray(N, 2, 0.5, 1.5) : Float64Array.from([0.9]);
      backward(loss, t32(w, loss.shape));
      const count = N - 1;
      const g = new Float64Array(N * C);
      t.forEach((tr, r) => {
        if (tr !== -100) g[r * C + tr] = -(red === 'none' ? w[r] : red === 'sum' ? w[0] : w[0] / count);
      });
      expectClose(finiteDiff((v) => dot(ref(v), w), x), g, { atol: 1e-7, what: 'fd' });
      expectClose(await read(xt.grad!), g, { atol: 1e-7, what: 'gradient' });
      const viaLogSoftmax = nllLoss(logSoftmax(t32(x, [N, C])), tensor(Int32Array.from(t), [N]), { reduction: red });
      expectClose(await read(viaLogSoftmax), refCe(x, t, C, 0, -100, red), { atol: 1e-5, rtol: 1e-5 });
    });
  }
});

describe('mseLoss', () => {
  for (const red of ['mean', 'sum', 'none'] as const) {
    it(`reduction ${red}: both inputs get gradients`, async () => {
      const shape = [3, 5];
      const a = asF32(randArray(15, 101));
      const b = asF32(randArray(15, 102));
      const ref = (u: ArrayLike<number>, v: ArrayLike<number>): Float64Array => {
        const rows = Array.from(u, (ui, i) => (ui - v[i]) ** 2);
        return reduceRef(rows, red, rows.length);
      };
      const at = t32(a, shape, true);
      const bt = t32(b, shape, true);
      const loss = mseLoss(at, bt, red);
      expectClose(await read(loss), ref(a, b), { atol: 1e-6, rtol: 1e-5 });
      const w = red === 'none' ? randArray(15, 5, 0.5, 1.5) : Float64Array.from([1.7]);
      backward(loss, t32(w, loss.shape));
      const ga = Float64Array.from(a, (ai, i) => 2 * (ai - b[i]) * (red === 'none' ? w[i] : red === 'sum' ? w[0] : w[0] / 15));
      expectClose(finiteDiff((v) => dot(ref(v, b), w), a), ga, { atol: 1e-7, rtol: 1e-6, what: 'fd' });
      expectClose(await read(at.grad!), ga, { atol: 1e-6, rtol: 1e-5 });
      expectClose(await read(bt.grad!), ga.map((v) => -v), { atol: 1e-6, rtol: 1e-5 });
    });
  }
});

describe('binaryCrossEntropyWithLogits', () => {
  const bceRef = (x: number, y: number): number => Math.max(x, 0) - x * y + Math.log1p(Math.exp(-Math.abs(x)));
  for (const red of ['mean', 'sum', 'none'] as const) {
    it(`reduction ${red}: stable for huge logits, gradients for logits and targets`, async () => {
      const n = 13;
      const x = asF32(randArray(n, 111, -6, 6));
      x[0] = 100;
      x[1] = -100;
      x[2] = 3e4;
      x[3] = -3e4;
      x[4] = 1e-5;
      const y = asF32(randArray(n, 112, 0, 1));
      const ref = (u: ArrayLike<number>, v: ArrayLike<number>): Float64Array => reduceRef(Array.from(u, (ui, i) => bceRef(ui, v[i])), red, n);
      const xt = t32(x, [n], true);
      const yt = t32(y, [n], true);
      const loss = binaryCrossEntropyWithLogits(xt, yt, red);
      expectClose(await read(loss), ref(x, y), { atol: 1e-6, rtol: 1e-6 });
      const w = red === 'none' ? randArray(n, 6, 0.5, 1.5) : Float64Array.from([0.8]);
      backward(loss, t32(w, loss.shape));
      const wi = (i: number) => (red === 'none' ? w[i] : red === 'sum' ? w[0] : w[0] / n);
      const gx = Float64Array.from(x, (xi, i) => wi(i) * (1 / (1 + Math.exp(-xi)) - y[i]));
      const gy = Float64Array.from(x, (xi, i) => -wi(i) * xi);
      // finite differences of the elementwise reference, summed over the moderate logits only
      // (next to a 3e4 term, a 1e-6 step drowns in float64 rounding)
      const mid = [...Array(n).keys()].slice(5);
      const partial = (u: ArrayLike<number>, v: ArrayLike<number>) => mid.reduce((a, i) => a + wi(i) * bceRef(u[i], v[i]), 0);
      const fdx = finiteDiff((v) => partial(v, y), x);
      const fdy = finiteDiff((v) => partial(x, v), y);
      expectClose(mid.map((i) => fdx[i]), mid.map((i) => gx[i]), { atol: 1e-7, rtol: 1e-6, what: 'fd logits' });
      expectClose(mid.map((i) => fdy[i]), mid.map((i) => gy[i]), { atol: 1e-7, rtol: 1e-6, what: 'fd targets' });
      expectClose(await read(xt.grad!), gx, { atol: 1e-7, rtol: 1e-5, what: 'logits gradient' });
      expectClose(await read(yt.grad!), gy, { atol: 1e-7, rtol: 1e-5, what: 'targets gradient' });
    });
  }
});

describe('memory and bad input', () => {
  it('frees everything it allocates in a scope', async () => {
    const x = t32(randArray(12, 5), [3, 4], true);
    const q = t32(randArray(12, 6, 0, 1), [3, 4]);
    const before = memoryStats();
    scope(() => {
      const l1 = crossEntropy(x, tensor(new Int32Array([0, 3, -100]), [3]));
      const l2 = crossEntropy(x, q, { reduction: 'sum' });
      const l3 = uniformCrossEntropy(x, 'mean');
      backward(l1);
      backward(l2);
      backward(l3);
      crossEntropy(x, tensor(new Int32Array([0, 3, 1]), [3]), { reduction: 'none' }); // never backpropagated
    });
    x.grad?.dispose();
    x.grad = null;
    expect(memoryStats()).toEqual(before);
  });

  it('raises OpError with the shapes before any kernel runs', () => {
    const dispatches = runtime().device.stats.dispatches;
    const x = tensor(new Float32Array(12), [3, 4]);
    const t = tensor(new Int32Array([0, 1, 2]), [3]);
    expect(() => crossEntropy(x, tensor(new Int32Array([0, 1]), [2]))).toThrow(/crossEntropy: targets must be \[N\] = \[3\] for logits \[3, 4\], got \[2\]/);
    expect(() => crossEntropy(tensor(new Float32Array(12), [12]), t)).toThrow(/crossEntropy: logits must be \[N, C\], got shape \[12\]/);
    expect(() => crossEntropy(x, tensor(new Float32Array(6), [3, 2]))).toThrow(/soft targets must have the logits' shape \[3, 4\], got \[3, 2\]/);
    expect(() => crossEntropy(x, tensor(new Uint32Array([0, 1, 2]), [3]))).toThrow(/targets must be i32 class indices/);
    expect(() => crossEntropy(x, t, { reduction: 'avg' as Red })).toThrow(/reduction must be/);
    expect(() => crossEntropy(x, t, { labelSmoothing: 1.5 })).toThrow(/labelSmoothing must be in \[0, 1\]/);
    expect(() => nllLoss(x, tensor(new Float32Array(3), [3]))).toThrow(/nllLoss: targets must be i32 \[3\]/);
    expect(() => mseLoss(x, tensor(new Float32Array(4), [4]))).toThrow(/mseLoss: input \[3, 4\] and target \[4\] must have the same shape/);
    expect(() => binaryCrossEntropyWithLogits(x, tensor(new Float32Array(3), [3]))).toThrow(OpError);
    expect(() => uniformCrossEntropy(tensor(new Int32Array(4), [2, 2]))).toThrow(/uniformCrossEntropy: logits must be f32/);
    expect(runtime().device.stats.dispatches).toBe(dispatches); // no kernel ran
  });
});

