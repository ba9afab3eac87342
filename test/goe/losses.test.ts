/**
 * Training-time OOD losses (Outlier Exposure in both averagings and the split form, energy-bounded
 * learning in the split and mixed forms): forward value against a float64 reference, the
 * reference's gradient with respect to the logits against central finite differences, and the
 * GPU gradient (engine autograd) against the reference's. Also: masks never read back, nothing
 * leaks, the edge batches (no outliers / only outliers) stay finite, and bad input is refused.
 */
import { describe, it, expect, beforeAll } from 'vitest';
import { tensor, backward, memoryStats, runtime, scope, OpError, type Tensor } from '../../src/engine/index.ts';
import {
  outlierExposureLoss,
  outlierExposureLossSplit,
  energyBoundedLoss,
  energyBoundedLossMixed,
  OE_DEFAULT_LAMBDA,
  ENERGY_DEFAULT_ALPHA,
  ENERGY_DEFAULT_M_IN,
  ENERGY_DEFAULT_M_OUT,
} from '../../src/goe/losses/index.ts';
import { engine, t32, read } from '../helpers/gpu.ts';
import { randArray, randnArray, asF32, expectClose, finiteDiff } from '../helpers/reference.ts';

beforeAll(async () => {
  await engine();
});

// ------------------------------------------------------------------ float64 reference

function lse(z: Float64Array, i: number, c: number): number {
  let m = -Infinity;
  for (let k = 0; k < c; k++) m = Math.max(m, z[i * c + k]);
  let s = 0;
  for (let k = 0; k < c; k++) s += Math.exp(z[i * c + k] - m);
  return m + Math.log(s);
}

/** Per-sample CE to class y: logsumexp(z) - z_y. */
function ceRef(z: Float64Array, i: number, c: number, y: number): number {
  return lse(z, i, c) - z[i * c + y];
}

/** Per-sample CE to the uniform distribution: logsumexp(z) - mean(z) (the OE repo's term). */
function uniformRef(z: Float64Array, i: number, c: number): number {
  let m = 0;
  for (let k = 0; k < c; k++) m += z[i * c + k];
  return lse(z, i, c) - m / c;
}

function energyRef(z: Float64Array, i: number, c: number): number {
  return -lse(z, i, c);
}

const relu2 = (v: number): number => (v > 0 ? v * v : 0);

function oeMixedRef(z: Float64Array, labels: Int32Array, c: number, lambda: number): number {
  const n = labels.length;
  let s = 0;
  for (let i = 0; i < n; i++) s += labels[i] >= 0 ? ceRef(z, i, c, labels[i]) : lambda * uniformRef(z, i, c);
  return s / n;
}

function oeSeparateRef(z: Float64Array, labels: Int32Array, c: number, lambda: number): number {
  let sIn = 0;
  let nIn = 0;
  let sOut = 0;
  let nOut = 0;
  for (let i = 0; i < labels.length; i++) {
    if (labels[i] >= 0) {
      sIn += ceRef(z, i, c, labels[i]);
      nIn++;
    } else {
      sOut += uniformRef(z, i, c);
      nOut++;
    }
  }
  return (nIn ? sIn / nIn : 0) + lambda * (nOut ? sOut / nOut : 0);
}

function eblMixedRef(z: Float64Array, labels: Int32Array, c: number, alpha: number, mIn: number, mOut: number): number {
  let ce = 0;
  let pin = 0;
  let nIn = 0;
  let pout = 0;
  let nOut = 0;
  for (let i = 0; i < labels.length; i++) {
    const e = energyRef(z, i, c);
    if (labels[i] >= 0) {
      ce += ceRef(z, i, c, labels[i]);
      pin += relu2(e - mIn);
      nIn++;
    } else {
      pout += relu2(mOut - e);
      nOut++;
    }
  }
  const mean = (s: number, k: number): number => (k ? s / k : 0);
  return mean(ce, nIn) + alpha * (mean(pin, nIn) + mean(pout, nOut));
}

/** The split forms are the mixed forms on [in; out] with the outliers labelled -1. */
function joined(zIn: Float64Array, tIn: Int32Array, zOut: Float64Array): { z: Float64Array; labels: Int32Array } {
  const z = new Float64Array(zIn.length + zOut.length);
  z.set(zIn);
  z.set(zOut, zIn.length);
  const nOut = zOut.length / (zIn.length / tIn.length);
  const labels = new Int32Array(tIn.length + nOut).fill(-1);
  labels.set(tIn);
  return { z, labels };
}

/**
 * Analytic float64 gradient of any of these losses with respect to the logits: each is a weighted
 * sum of per-sample terms, whose gradients are
 *   CE to y: softmax - onehot(y);  uniform term: softmax - 1/C;  energy E = -lse: -softmax;
 *   relu(v)^2: 2 relu(v) v'.
 * Weights per form: OE mixed ce 1/N, uniform lambda/N; OE separate ce 1/nIn, uniform lambda/nOut;
 * energy-bounded ce 1/nIn, inlier penalty alpha/nIn, outlier penalty alpha/nOut.
 */
interface TermWeights {
  ce: number;
  uniform: number;
  pin: number;
  pout: number;
  mIn: number;
  mOut: number;
}

function analyticGrad(z: Float64Array, labels: Int32Array, c: number, w: TermWeights): Float64Array {
  const g = new Float64Array(z.length);
  for (let i = 0; i < labels.length; i++) {
    const l = lse(z, i, c);
    const p = Array.from({ length: c }, (_, k) => Math.exp(z[i * c + k] - l));
    const e = -l;
    for (let k = 0; k < c; k++) {
      let v: number;
      if (labels[i] >= 0) {
        v = w.ce * (p[k] - (k === labels[i] ? 1 : 0)) + w.pin * 2 * Math.max(e - w.mIn, 0) * -p[k];
      } else {
        v = w.uniform * (p[k] - 1 / c) + w.pout * 2 * Math.max(w.mOut - e, 0) * p[k];
      }
      g[i * c + k] = v;
    }
  }
  return g;
}

function counts(labels: Int32Array): { nIn: number; nOut: number } {
  const nIn = labels.filter((y) => y >= 0).length;
  return { nIn, nOut: labels.length - nIn };
}

const inv = (k: number): number => (k ? 1 / k : 0);

function oeWeights(labels: Int32Array, lambda: number, averaging: 'mixed' | 'separate'): TermWeights {
  const { nIn, nOut } = counts(labels);
  const n = labels.length;
  return averaging === 'mixed'
    ? { ce: 1 / n, uniform: lambda / n, pin: 0, pout: 0, mIn: 0, mOut: 0 }
    : { ce: inv(nIn), uniform: lambda * inv(nOut), pin: 0, pout: 0, mIn: 0, mOut: 0 };
}

function eblWeights(labels: Int32Array, alpha: number, mIn: number, mOut: number): TermWeights {
  const { nIn, nOut } = counts(labels);
  return { ce: inv(nIn), uniform: 0, pin: alpha * inv(nIn), pout: alpha * inv(nOut), mIn, mOut };
}

/** Splits a gradient of the joined [in; out] logits back into the two batches. */
function splitRows(g: Float64Array, nInRows: number, c: number): Float64Array[] {
  return [g.slice(0, nInRows * c), g.slice(nInRows * c)];
}

// ------------------------------------------------------------------ harness

const N = 11;
const C = 9;
// inliers and outliers interleaved, two kinds of negative label
const LABELS = Int32Array.from([3, -1, 0, 8, -1, 5, 2, -2, 7, -1, 1]);

function logitsData(n: number, c: number, seed: number, scale = 3, shift = 0): Float64Array {
  return asF32(Array.from(randnArray(n * c, seed, scale), (v) => v + shift));
}

interface Checked {
  value: number;
  grads: Float64Array[];
}

/** Runs `gpu` on f32 tensors of `inputs`, backpropagates, and returns the value and gradients. */
async function runGpu(inputs: { data: Float64Array; shape: number[] }[], gpu: (ts: Tensor[]) => Tensor): Promise<Checked> {
  const ts = inputs.map((x) => t32(x.data, x.shape, true));
  const loss = gpu(ts);
  expect(loss.size).toBe(1);
  const value = (await read(loss))[0];
  backward(loss);
  const grads: Float64Array[] = [];
  for (const t of ts) {
    expect(t.grad, 'gradient reached the logits').not.toBeNull();
    grads.push(await read(t.grad!));
  }
  loss.dispose();
  for (const t of ts) {
    t.grad?.dispose();
    t.dispose();
  }
  return { value, grads };
}

/**
 * The float64 reference's value, its analytic gradient against central finite differences of
 * the reference value, then the GPU value and the GPU gradient (engine autograd) against them.
 */
async function checkLoss(
  what: string,
  inputs: { data: Float64Array; shape: number[] }[],
  ref: (xs: Float64Array[]) => number,
  refGrad: (xs: Float64Array[]) => Float64Array[],
  gpu: (ts: Tensor[]) => Tensor,
): Promise<void> {
  const xs = inputs.map((x) => x.data);
  const want = ref(xs);
  const grads = refGrad(xs);
  xs.forEach((x, k) => {
    const fd = finiteDiff((v) => ref(xs.map((y, j) => (j === k ? v : y))), x, 1e-5);
    expectClose(grads[k], fd, { atol: 1e-7, rtol: 1e-5, what: `${what}: analytic reference gradient ${k} vs finite differences` });
  });
  const got = await runGpu(inputs, gpu);
  expectClose([got.value], [want], { atol: 1e-5, rtol: 2e-5, what: `${what}: value` });
  got.grads.forEach((g, k) => expectClose(g, grads[k], { atol: 2e-6, rtol: 1e-3, what: `${what}: gradient ${k}` }));
}

// ------------------------------------------------------------------ Outlier Exposure

describe('outlierExposureLoss (mixed batch, outliers labelled negative)', () => {
  const z = logitsData(N, C, 11);

  for (const averaging of ['mixed', 'separate'] as const) {
    for (const lambda of [OE_DEFAULT_LAMBDA, 1.7]) {
      it(`${averaging} averaging, lambda ${lambda}: value and gradient`, async () => {
        const ref = averaging === 'mixed' ? oeMixedRef : oeSeparateRef;
        await checkLoss(
          `OE ${averaging} lambda ${lambda}`,
          [{ data: z, shape: [N, C] }],
          ([x]) => ref(x, LABELS, C, lambda),
          ([x]) => [analyticGrad(x, LABELS, C, oeWeights(LABELS, lambda, averaging))],
          ([t]) => outlierExposureLoss(t, tensor(LABELS, [N]), lambda === OE_DEFAULT_LAMBDA ? { averaging } : { averaging, lambda }),
        );
      });
    }
  }

  it('defaults are lambda 0.5 and the mixed (pytorch-ood) averaging', async () => {
    const labels = tensor(LABELS, [N]);
    const got = (await read(scope(() => outlierExposureLoss(t32(z, [N, C]), labels))))[0];
    expectClose([got], [oeMixedRef(z, LABELS, C, 0.5)], { rtol: 2e-5 });
    // the two averagings really differ on this batch (7 inliers, 4 outliers)
    expect(Math.abs(oeMixedRef(z, LABELS, C, 0.5) - oeSeparateRef(z, LABELS, C, 0.5))).toBeGreaterThan(0.1);
    labels.dispose();
  });

  it('hand-worked case: uniform logits give CE = log C and a uniform term of log C', async () => {
    // every logit 2: CE = log C for every inlier; the outlier term is lse - mean = log C too.
    // mixed: (3 * log C + 2 * 0.5 * log C) / 5 = 0.8 log C; separate: log C + 0.5 log C.
    const labels = Int32Array.from([0, -1, 2, 1, -1]);
    const flat = new Float64Array(5 * 3).fill(2);
    const mixed = (await read(scope(() => outlierExposureLoss(t32(flat, [5, 3]), tensor(labels, [5])))))[0];
    const separate = (await read(scope(() => outlierExposureLoss(t32(flat, [5, 3]), tensor(labels, [5]), { averaging: 'separate' }))))[0];
    expectClose([mixed, separate], [0.8 * Math.log(3), 1.5 * Math.log(3)], { rtol: 1e-6 });
  });

  it('batches without outliers or without inliers stay finite (empty terms count 0)', async () => {
    const n = 5;
    const zz = logitsData(n, C, 12);
    for (const labels of [Int32Array.from([1, 2, 3, 4, 0]), Int32Array.from([-1, -1, -1, -1, -1])]) {
      for (const averaging of ['mixed', 'separate'] as const) {
        const ref = averaging === 'mixed' ? oeMixedRef : oeSeparateRef;
        await checkLoss(
          `OE ${averaging} labels ${labels.join(',')}`,
          [{ data: zz, shape: [n, C] }],
          ([x]) => ref(x, labels, C, 0.5),
          ([x]) => [analyticGrad(x, labels, C, oeWeights(labels, 0.5, averaging))],
          ([t]) => outlierExposureLoss(t, tensor(labels, [n]), { averaging }),
        );
      }
    }
  });

  it('large logits (|z| ~ 300) stay accurate', async () => {
    const big = logitsData(N, C, 13, 100, 50);
    await checkLoss(
      'OE separate, large logits',
      [{ data: big, shape: [N, C] }],
      ([x]) => oeSeparateRef(x, LABELS, C, 0.5),
      ([x]) => [analyticGrad(x, LABELS, C, oeWeights(LABELS, 0.5, 'separate'))],
      ([t]) => outlierExposureLoss(t, tensor(LABELS, [N]), { averaging: 'separate' }),
    );
  });
});

describe('outlierExposureLossSplit (the OE repo: separate in and out batches)', () => {
  const nIn = 7;
  const nOut = 6;
  const zIn = logitsData(nIn, C, 21);
  const zOut = logitsData(nOut, C, 22);
  const tIn = Int32Array.from([4, 0, 8, 1, 1, 6, 3]);

  for (const lambda of [0.5, 0.25]) {
    it(`lambda ${lambda}: value and gradients for both batches`, async () => {
      await checkLoss(
        `OE split lambda ${lambda}`,
        [
          { data: zIn, shape: [nIn, C] },
          { data: zOut, shape: [nOut, C] },
        ],
        ([a, b]) => {
          const { z, labels } = joined(a, tIn, b);
          return oeSeparateRef(z, labels, C, lambda);
        },
        ([a, b]) => {
          const { z, labels } = joined(a, tIn, b);
          return splitRows(analyticGrad(z, labels, C, oeWeights(labels, lambda, 'separate')), nIn, C);
        },
        ([a, b]) => outlierExposureLossSplit(a, tensor(tIn, [nIn]), b, { lambda }),
      );
    });
  }

  it('equals the mixed-batch form with separate averaging on the concatenated batch', async () => {
    const { z, labels } = joined(zIn, tIn, zOut);
    const split = (await read(scope(() => outlierExposureLossSplit(t32(zIn, [nIn, C]), tensor(tIn, [nIn]), t32(zOut, [nOut, C])))))[0];
    const mixed = (await read(scope(() => outlierExposureLoss(t32(z, [nIn + nOut, C]), tensor(labels, [nIn + nOut]), { averaging: 'separate' }))))[0];
    expectClose([split], [mixed], { rtol: 1e-6 });
  });
});

// ------------------------------------------------------------------ energy-bounded learning

/** Margins that fall between sample energies (so no sample sits on a relu kink) and leave some
 * samples on each side. */
function marginsFor(z: Float64Array, labels: Int32Array, c: number): { mIn: number; mOut: number } {
  const eIn: number[] = [];
  const eOut: number[] = [];
  labels.forEach((y, i) => (y >= 0 ? eIn : eOut).push(energyRef(z, i, c)));
  const mid = (es: number[]): number => {
    const s = [...es].sort((a, b) => a - b);
    const k = Math.floor(s.length / 2);
    return (s[k - 1] + s[k]) / 2;
  };
  return { mIn: mid(eIn), mOut: mid(eOut) };
}

describe('energyBoundedLoss', () => {
  const nIn = 8;
  const nOut = 7;
  const tIn = Int32Array.from([0, 5, 8, 2, 2, 7, 1, 4]);

  it('defaults (alpha 0.1, m_in -25, m_out -7) on logits where both penalties are active', async () => {
    expect([ENERGY_DEFAULT_ALPHA, ENERGY_DEFAULT_M_IN, ENERGY_DEFAULT_M_OUT]).toEqual([0.1, -25, -7]);
    // inliers' logits around 22 (E from -27.3 to -24.7: some above m_in = -25), outliers'
    // around 3 (E from -9 to -6.1: some below m_out = -7); none within 0.02 of a margin
    const zIn = logitsData(nIn, C, 31, 2.5, 22);
    const zOut = logitsData(nOut, C, 32, 2.5, 3);
    const eIn = Array.from({ length: nIn }, (_, i) => energyRef(zIn, i, C));
    const eOut = Array.from({ length: nOut }, (_, i) => energyRef(zOut, i, C));
    expect(eIn.some((e) => e > -25) && eIn.some((e) => e < -25)).toBe(true);
    expect(eOut.some((e) => e < -7) && eOut.some((e) => e > -7)).toBe(true);
    await checkLoss(
      'energy-bounded defaults',
      [
        { data: zIn, shape: [nIn, C] },
        { data: zOut, shape: [nOut, C] },
      ],
      ([a, b]) => {
        const j = joined(a, tIn, b);
        return eblMixedRef(j.z, j.labels, C, 0.1, -25, -7);
      },
      ([a, b]) => {
        const j = joined(a, tIn, b);
        return splitRows(analyticGrad(j.z, j.labels, C, eblWeights(j.labels, 0.1, -25, -7)), nIn, C);
      },
      ([a, b]) => energyBoundedLoss(a, tensor(tIn, [nIn]), b),
    );
  });

  it('custom alpha and margins between the samples\' energies', async () => {
    const zIn = logitsData(nIn, C, 33);
    const zOut = logitsData(nOut, C, 34, 1);
    const { z, labels } = joined(zIn, tIn, zOut);
    const { mIn, mOut } = marginsFor(z, labels, C);
    await checkLoss(
      'energy-bounded custom',
      [
        { data: zIn, shape: [nIn, C] },
        { data: zOut, shape: [nOut, C] },
      ],
      ([a, b]) => {
        const j = joined(a, tIn, b);
        return eblMixedRef(j.z, j.labels, C, 0.37, mIn, mOut);
      },
      ([a, b]) => {
        const j = joined(a, tIn, b);
        return splitRows(analyticGrad(j.z, j.labels, C, eblWeights(j.labels, 0.37, mIn, mOut)), nIn, C);
      },
      ([a, b]) => energyBoundedLoss(a, tensor(tIn, [nIn]), b, { alpha: 0.37, mIn, mOut }),
    );
  });

  it('hand-worked case: uniform logits', async () => {
    // logits all 1 over C = 4: CE = log 4, E = -(1 + log 4) = -2.386; with m_in = -3 the inlier
    // penalty is (0.614)^2, with m_out = -2 the outlier penalty is (0.386)^2.
    const e = -(1 + Math.log(4));
    const want = Math.log(4) + 0.5 * ((e + 3) ** 2 + (-2 - e) ** 2);
    const got = (await read(scope(() => energyBoundedLoss(t32(new Float64Array(8).fill(1), [2, 4]), tensor(Int32Array.from([1, 3]), [2]), t32(new Float64Array(12).fill(1), [3, 4]), { alpha: 0.5, mIn: -3, mOut: -2 }))))[0];
    expectClose([got], [want], { rtol: 1e-6 });
  });
});

describe('energyBoundedLossMixed (one mixed batch, outliers labelled negative)', () => {
  const z = logitsData(N, C, 41);
  const { mIn, mOut } = marginsFor(z, LABELS, C);

  it('value and gradient; equals the split form on the same samples', async () => {
    await checkLoss(
      'energy-bounded mixed',
      [{ data: z, shape: [N, C] }],
      ([x]) => eblMixedRef(x, LABELS, C, 0.2, mIn, mOut),
      ([x]) => [analyticGrad(x, LABELS, C, eblWeights(LABELS, 0.2, mIn, mOut))],
      ([t]) => energyBoundedLossMixed(t, tensor(LABELS, [N]), { alpha: 0.2, mIn, mOut }),
    );
    const inRows = [...LABELS.keys()].filter((i) => LABELS[i] >= 0);
    const outRows = [...LABELS.keys()].filter((i) => LABELS[i] < 0);
    const rows = (idx: number[]): Float64Array => Float64Array.from(idx.flatMap((i) => Array.from(z.subarray(i * C, (i + 1) * C))));
    const split = (
      await read(
        scope(() =>
          energyBoundedLoss(t32(rows(inRows), [inRows.length, C]), tensor(Int32Array.from(inRows.map((i) => LABELS[i])), [inRows.length]), t32(rows(outRows), [outRows.length, C]), { alpha: 0.2, mIn, mOut }),
        ),
      )
    )[0];
    const mixed = (await read(scope(() => energyBoundedLossMixed(t32(z, [N, C]), tensor(LABELS, [N]), { alpha: 0.2, mIn, mOut }))))[0];
    expectClose([mixed], [split], { rtol: 1e-6 });
  });

  it('a batch without outliers stays finite', async () => {
    const labels = Int32Array.from([0, 1, 2, 3, 4, 5, 6, 7, 8, 0, 1]);
    await checkLoss(
      'energy-bounded mixed, no outliers',
      [{ data: z, shape: [N, C] }],
      ([x]) => eblMixedRef(x, labels, C, 0.1, mIn, mOut),
      ([x]) => [analyticGrad(x, labels, C, eblWeights(labels, 0.1, mIn, mOut))],
      ([t]) => energyBoundedLossMixed(t, tensor(labels, [N]), { mIn, mOut }),
    );
  });
});

// ------------------------------------------------------------------ training-step properties

describe('in a training step', () => {
  it('never reads back, and frees everything but the gradient', async () => {
    const z = t32(logitsData(N, C, 51), [N, C], true);
    const labels = tensor(LABELS, [N]);
    await runtime().device.sync();
    const before = memoryStats();
    const reads = runtime().device.stats.readbacks;
    for (const fn of [
      () => outlierExposureLoss(z, labels),
      () => outlierExposureLoss(z, labels, { averaging: 'separate' }),
      () => energyBoundedLossMixed(z, labels),
      () => energyBoundedLoss(z, labels, z),
      () => outlierExposureLossSplit(z, labels, z),
    ]) {
      const loss = fn();
      backward(loss);
      loss.dispose();
    }
    expect(runtime().device.stats.readbacks).toBe(reads);
    // only z.grad was added
    expect(memoryStats().tensors).toBe(before.tensors + 1);
    z.grad!.dispose();
    z.dispose();
    labels.dispose();
  });
});

describe('bad input', () => {
  it('is refused with an error naming the loss and the shapes', () => {
    const z = t32(randArray(N * C, 61), [N, C]);
    const labels = tensor(LABELS, [N]);
    const f32Labels = t32(Array.from(LABELS), [N]);
    const short = tensor(LABELS.subarray(0, 5), [5]);
    const z3 = t32(randArray(N * 4, 62), [N, 4]);
    expect(() => outlierExposureLoss(z, f32Labels)).toThrow(OpError);
    expect(() => outlierExposureLoss(z, f32Labels)).toThrow(/outlierExposureLoss: labels must be i32/);
    expect(() => outlierExposureLoss(z, short)).toThrow(/shape \[5\] do not match logits of shape \[11, 9\]/);
    expect(() => outlierExposureLoss(t32(randArray(N, 63), [N]), labels)).toThrow(/logits must have shape \[N, C\], got \[11\]/);
    expect(() => outlierExposureLoss(z, labels, { lambda: -1 })).toThrow(/lambda must be a finite number >= 0/);
    expect(() => outlierExposureLoss(z, labels, { averaging: 'batch' as never })).toThrow(/averaging must be 'mixed' \(pytorch-ood\) or 'separate' \(OE repo\)/);
    expect(() => outlierExposureLossSplit(z, labels, z3)).toThrow(/different class counts/);
    expect(() => energyBoundedLoss(z, labels, z, { mIn: NaN })).toThrow(/energyBoundedLoss: mIn must be a finite number/);
    expect(() => energyBoundedLoss(z, labels, t32([], [0, C]))).toThrow(/outLogits is an empty batch/);
    for (const t of [z, labels, f32Labels, short, z3]) t.dispose();
  });
});
