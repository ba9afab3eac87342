/**
 * OOD detectors: logit scores with known answers and against a float64 reference (large logits
 * and temperatures included), the shared Detector interface and scoreAll, ODIN's perturbation
 * direction by finite differences of the float64 loss on a tiny linear model, Mahalanobis (fit
 * statistics, known-answer distances, the perturbation by finite differences), the float64
 * linear algebra, no leaks, and the bad-input errors.
 */
import { describe, it, expect, beforeAll } from 'vitest';
import { keep, linear, Linear, memoryStats, noGrad, reshape, runtime, tensor, OpError, type Tensor } from '../../src/engine/index.ts';
import {
  cholesky,
  energyDetector,
  energyScore,
  entropyDetector,
  entropyScore,
  mahalanobisDetector,
  maxLogitDetector,
  maxLogitScore,
  mspDetector,
  mspScore,
  NotPositiveDefiniteError,
  odinDetector,
  odinPerturb,
  ODIN_DEFAULT_EPS,
  ODIN_DEFAULT_TEMPERATURE,
  scoreAll,
  spdInverse,
  type Detector,
} from '../../src/goe/detectors/index.ts';
import { computeOodMetrics } from '../../src/goe/metrics/index.ts';
import { engine, t32, read } from '../helpers/gpu.ts';
import { randArray, randnArray, asF32, expectClose, finiteDiff } from '../helpers/reference.ts';

beforeAll(async () => {
  await engine();
});

// ------------------------------------------------------------------ float64 reference

function row(z: ArrayLike<number>, i: number, c: number): number[] {
  return Array.from({ length: c }, (_, k) => z[i * c + k]);
}
function lse(v: number[]): number {
  const m = Math.max(...v);
  return m + Math.log(v.reduce((s, x) => s + Math.exp(x - m), 0));
}
function logSoftmaxRef(v: number[]): number[] {
  const l = lse(v);
  return v.map((x) => x - l);
}
const mspRef = (v: number[], t = 1): number => -Math.exp(Math.max(...logSoftmaxRef(v.map((x) => x / t))));
const energyRef = (v: number[], t = 1): number => -t * lse(v.map((x) => x / t));
const maxLogitRef = (v: number[]): number => -Math.max(...v);
const entropyRef = (v: number[], t = 1): number => {
  const lp = logSoftmaxRef(v.map((x) => x / t));
  return -lp.reduce((s, l) => s + Math.exp(l) * l, 0);
};
function perRow(z: ArrayLike<number>, n: number, c: number, f: (v: number[]) => number): Float64Array {
  return Float64Array.from({ length: n }, (_, i) => f(row(z, i, c)));
}

/** y = x W^T + b in float64 (x [n, d], W [c, d]). */
function linearRef(x: ArrayLike<number>, n: number, d: number, w: ArrayLike<number>, b: ArrayLike<number>, c: number): Float64Array {
  const out = new Float64Array(n * c);
  for (let i = 0; i < n; i++) {
    for (let k = 0; k < c; k++) {
      let s = b[k];
      for (let j = 0; j < d; j++) s += x[i * d + j] * w[k * d + j];
      out[i * c + k] = s;
    }
  }
  return out;
}

/** Gauss-Jordan inverse with partial pivoting (an algorithm independent of the Cholesky path). */
function inverseRef(a: ArrayLike<number>, n: number): Float64Array {
  const m = Array.from({ length: n }, (_, i) => [...Array.from({ length: n }, (_, j) => a[i * n + j]), ...Array.from({ length: n }, (_, j) => (i === j ? 1 : 0))]);
  for (let col = 0; col < n; col++) {
    let p = col;
    for (let r = col + 1; r < n; r++) if (Math.abs(m[r][col]) > Math.abs(m[p][col])) p = r;
    [m[col], m[p]] = [m[p], m[col]];
    const piv = m[col][col];
    for (let j = 0; j < 2 * n; j++) m[col][j] /= piv;
    for (let r = 0; r < n; r++) {
      if (r === col) continue;
      const f = m[r][col];
      for (let j = 0; j < 2 * n; j++) m[r][j] -= f * m[col][j];
    }
  }
  return Float64Array.from(m.flatMap((r) => r.slice(n)));
}

/** Squared Mahalanobis distances of one feature vector to every class mean. */
function mahalanobisRef(f: ArrayLike<number>, means: ArrayLike<number>, precision: ArrayLike<number>, c: number, d: number): number[] {
  const out: number[] = [];
  for (let k = 0; k < c; k++) {
    const v = Array.from({ length: d }, (_, j) => f[j] - means[k * d + j]);
    let s = 0;
    for (let i = 0; i < d; i++) for (let j = 0; j < d; j++) s += v[i] * precision[i * d + j] * v[j];
    out.push(s);
  }
  return out;
}

/** Class means and the biased tied covariance of class-centred features, two-pass float64. */
function fitRef(f: ArrayLike<number>, labels: ArrayLike<number>, n: number, d: number, c: number, ridge: number): { means: Float64Array; cov: Float64Array } {
  const means = new Float64Array(c * d);
  const counts = new Float64Array(c);
  for (let i = 0; i < n; i++) {
    counts[labels[i]]++;
    for (let j = 0; j < d; j++) means[labels[i] * d + j] += f[i * d + j];
  }
  for (let k = 0; k < c; k++) for (let j = 0; j < d; j++) means[k * d + j] /= counts[k];
  const cov = new Float64Array(d * d);
  for (let i = 0; i < n; i++) {
    for (let a = 0; a < d; a++) {
      for (let b = 0; b < d; b++) cov[a * d + b] += ((f[i * d + a] - means[labels[i] * d + a]) * (f[i * d + b] - means[labels[i] * d + b])) / n;
    }
  }
  let tr = 0;
  for (let a = 0; a < d; a++) tr += cov[a * d + a];
  for (let a = 0; a < d; a++) cov[a * d + a] += (ridge * tr) / d;
  return { means, cov };
}

// ------------------------------------------------------------------ logit scores

describe('scores from logits', () => {
  it('known answers on uniform logits: MSP -1/C, energy -(c + T log C), max logit -c, entropy log C', async () => {
    const n = 3;
    const c = 7;
    const v = 2.5;
    const z = t32(new Float64Array(n * c).fill(v), [n, c]);
    const fill = (x: number): number[] => new Array<number>(n).fill(x);
    expectClose(await read(mspScore(z)), fill(-1 / c), { rtol: 1e-6, what: 'MSP' });
    expectClose(await read(mspScore(z, 1000)), fill(-1 / c), { rtol: 1e-6, what: 'MSP at T = 1000' });
    expectClose(await read(energyScore(z)), fill(-(v + Math.log(c))), { rtol: 1e-6, what: 'energy' });
    // T = 2: -2 * logsumexp(v / 2) = -(v + 2 log C)
    expectClose(await read(energyScore(z, 2)), fill(-(v + 2 * Math.log(c))), { rtol: 1e-6, what: 'energy T = 2' });
    expectClose(await read(maxLogitScore(z)), fill(-v), { rtol: 1e-7, what: 'max logit' });
    expectClose(await read(entropyScore(z)), fill(Math.log(c)), { rtol: 1e-6, what: 'entropy' });
    z.dispose();
  });

  it('known answers on a dominant logit: MSP -1, entropy 0, energy -(max logit)', async () => {
    // [100, 0, 0, 0, 0]: softmax = 1 up to 4e-44 (underflows in f32), entropy 0 with no NaN
    const z = t32([100, 0, 0, 0, 0, 0, 100, 0, 0, 0], [2, 5]);
    expectClose(await read(mspScore(z)), [-1, -1], { rtol: 1e-7, what: 'MSP' });
    expectClose(await read(entropyScore(z)), [0, 0], { atol: 1e-6, what: 'entropy' });
    expectClose(await read(energyScore(z)), [-100, -100], { rtol: 1e-7, what: 'energy' });
    expectClose(await read(maxLogitScore(z)), [-100, -100], { rtol: 1e-7, what: 'max logit' });
    z.dispose();
  });

  it('two classes by hand: MSP = -sigmoid(|z1 - z0|), entropy of a Bernoulli', async () => {
    const z = t32([0, Math.log(3)], [1, 2]); // softmax (1/4, 3/4)
    expectClose(await read(mspScore(z)), [-0.75], { rtol: 1e-6 });
    expectClose(await read(entropyScore(z)), [-(0.25 * Math.log(0.25) + 0.75 * Math.log(0.75))], { rtol: 1e-6 });
    expectClose(await read(energyScore(z)), [-Math.log(4)], { rtol: 1e-6 });
    z.dispose();
  });

  for (const [label, scale, shift] of [
    ['moderate', 3, 0],
    ['large (|z| up to ~1e3)', 200, 400],
  ] as const) {
    for (const t of [1, 7.5, 1000]) {
      it(`random ${label} logits at T = ${t} match the float64 reference`, async () => {
        const n = 13;
        const c = 11;
        const data = asF32(Array.from(randnArray(n * c, 100 + t, scale), (x) => x + shift));
        const z = t32(data, [n, c]);
        expectClose(await read(mspScore(z, t)), perRow(data, n, c, (v) => mspRef(v, t)), { rtol: 2e-5, atol: 1e-7, what: 'MSP' });
        expectClose(await read(energyScore(z, t)), perRow(data, n, c, (v) => energyRef(v, t)), { rtol: 2e-6, atol: 1e-5, what: 'energy' });
        expectClose(await read(entropyScore(z, t)), perRow(data, n, c, (v) => entropyRef(v, t)), { rtol: 1e-4, atol: 2e-6, what: 'entropy' });
        expectClose(await read(maxLogitScore(z)), perRow(data, n, c, maxLogitRef), { rtol: 0, atol: 0, what: 'max logit' });
        z.dispose();
      });
    }
  }

  it('refuse bad input with an error naming the score and the shape', () => {
    const z1 = t32([1, 2, 3], [3]);
    const zi = tensor(Int32Array.from([1, 2, 3, 4]), [2, 2]);
    const z = t32([1, 2, 3, 4], [2, 2]);
    expect(() => mspScore(z1)).toThrow(OpError);
    expect(() => mspScore(z1)).toThrow(/mspScore: expects logits of shape \[N, C\], got \[3\]/);
    expect(() => energyScore(zi)).toThrow(/energyScore: expects f32 logits, got i32/);
    expect(() => entropyScore(z, 0)).toThrow(/temperature must be a positive finite number, got 0/);
    expect(() => mspDetector({ temperature: -1 })).toThrow(/temperature/);
    for (const t of [z1, zi, z]) t.dispose();
  });
});

// ------------------------------------------------------------------ the Detector interface

/** A tiny linear classifier: weights W [c, d], bias b [c] (f32 values as float64). */
function linearModel(d: number, c: number, seed: number, scale = 1): { w: Float64Array; b: Float64Array; wt: Tensor; bt: Tensor; model: (x: Tensor) => Tensor } {
  const w = asF32(randArray(c * d, seed, -scale, scale));
  const b = asF32(randArray(c, seed + 1, -0.5, 0.5));
  // the tensors are made on first use (describe blocks run before the engine starts), often
  // inside a detector's scope: keep() them out of it
  let wt: Tensor | null = null;
  let bt: Tensor | null = null;
  const lm = {
    w,
    b,
    get wt(): Tensor {
      wt ??= keep(t32(w, [c, d]));
      return wt;
    },
    get bt(): Tensor {
      bt ??= keep(t32(b, [c]));
      return bt;
    },
    model: (x: Tensor): Tensor => linear(x.rank === 2 ? x : reshape(x, [x.shape[0], -1]), lm.wt, lm.bt),
  };
  return lm;
}

describe('Detector interface and scoreAll', () => {
  const d = 6;
  const c = 5;
  const lm = linearModel(d, c, 200, 2);
  const sizes = [5, 1, 7];
  const batches = sizes.map((n, k) => asF32(randArray(n * d, 210 + k, -2, 2)));

  const cases: [string, () => Detector, (v: number[]) => number][] = [
    ['MSP', () => mspDetector({ model: lm.model }), (v) => mspRef(v)],
    ['Energy T=2', () => energyDetector({ model: lm.model, temperature: 2 }), (v) => energyRef(v, 2)],
    ['MaxLogit', () => maxLogitDetector({ model: lm.model }), maxLogitRef],
    ['Entropy', () => entropyDetector({ model: lm.model }), (v) => entropyRef(v)],
  ];
  for (const [name, make, ref] of cases) {
    it(`${name}: scoreAll over batches of 5, 1 and 7 equals the reference, in order`, async () => {
      const det = make();
      const ts = batches.map((x, k) => t32(x, [sizes[k], d]));
      void [lm.wt, lm.bt]; // made before the count
      const before = memoryStats();
      const got = await scoreAll(det, ts);
      expect(memoryStats()).toEqual(before);
      const want = batches.flatMap((x, k) => Array.from(perRow(linearRef(x, sizes[k], d, lm.w, lm.b, c), sizes[k], c, ref)));
      expect(got).toBeInstanceOf(Float64Array);
      expectClose(got, want, { rtol: 1e-5, atol: 1e-6, what: name });
      for (const t of ts) t.dispose();
    });
  }

  it('higher = more OOD: confident logits score below flat ones for every detector (AUROC 1)', async () => {
    const n = 9;
    const c2 = 10;
    const confident = Float64Array.from(randArray(n * c2, 220, -1, 1), (v, i) => (Math.floor(i / c2) % c2 === i % c2 ? v + 12 : v));
    const flat = randArray(n * c2, 221, -0.3, 0.3);
    for (const det of [mspDetector(), energyDetector(), maxLogitDetector(), entropyDetector(), mspDetector({ temperature: 1000 })]) {
      const inScores = await scoreAll(det, [t32(confident, [n, c2])]);
      const outScores = await scoreAll(det, (async function* () {
        yield t32(flat, [n, c2]);
      })());
      expect(computeOodMetrics(inScores, outScores).auroc, det.name).toBe(1);
    }
  });

  it('a module works as the model (its forward), for the logit detectors, ODIN and Mahalanobis', async () => {
    const mod = new Linear(d, c);
    const fn = (x: Tensor) => mod.forward(x);
    const x = t32(batches[0]!, [sizes[0]!, d]);
    const pairs: [Detector, Detector][] = [
      [energyDetector({ model: mod }), energyDetector({ model: fn })],
      [mspDetector({ model: mod, temperature: 3 }), mspDetector({ model: fn, temperature: 3 })],
      [odinDetector({ model: mod, eps: 0.01 }), odinDetector({ model: fn, eps: 0.01 })],
    ];
    for (const [byModule, byFunction] of pairs) expect(await read(byModule.score(x)), byModule.name).toEqual(await read(byFunction.score(x)));
    const labels = [0, 1, 2, 3, 4];
    const fitted = [mahalanobisDetector({ features: mod }), mahalanobisDetector({ features: fn })];
    for (const det of fitted) await det.fit([{ input: t32(randArray(40 * d, 230, -2, 2), [40, d]), labels: Array.from({ length: 40 }, (_, i) => labels[i % 5]!) }]);
    expect(await read(fitted[0]!.score(x))).toEqual(await read(fitted[1]!.score(x)));
    expect(() => energyDetector({ model: {} as never })).toThrow(/options.model must be a function from inputs to a tensor, or a module with forward\(x\)/);
    x.dispose();
  });
});

// ------------------------------------------------------------------ ODIN

/** ODIN's float64 loss of one sample: -log softmax(z / T)[argmax z]. */
function odinLossRef(x: ArrayLike<number>, d: number, lm: { w: Float64Array; b: Float64Array }, c: number, t: number, yhat: number): number {
  const z = linearRef(x, 1, d, lm.w, lm.b, c);
  return -logSoftmaxRef(Array.from(z, (v) => v / t))[yhat];
}

/** x' = x - eps * sign(d loss / dx) / std, with the gradient by central finite differences. */
function odinExpected(x: Float64Array, n: number, d: number, lm: { w: Float64Array; b: Float64Array }, c: number, t: number, eps: number, stdOf: (j: number) => number): { xp: Float64Array; grad: Float64Array } {
  const xp = new Float64Array(n * d);
  const grad = new Float64Array(n * d);
  for (let i = 0; i < n; i++) {
    const xi = x.slice(i * d, (i + 1) * d);
    const z = row(linearRef(xi, 1, d, lm.w, lm.b, c), 0, c);
    const yhat = z.indexOf(Math.max(...z));
    const g = finiteDiff((v) => odinLossRef(v, d, lm, c, t, yhat), xi, 1e-4 * Math.max(1, t / 1000));
    for (let j = 0; j < d; j++) {
      grad[i * d + j] = g[j];
      xp[i * d + j] = xi[j] - (eps * Math.sign(g[j])) / stdOf(j);
    }
  }
  return { xp, grad };
}

describe('ODIN', () => {
  const n = 5;
  const d = 7;
  const c = 4;
  const lm = linearModel(d, c, 300);
  const x = asF32(randArray(n * d, 301, -1, 1));

  for (const [t, eps] of [
    [ODIN_DEFAULT_TEMPERATURE, ODIN_DEFAULT_EPS],
    [1, 0.01],
  ]) {
    it(`T = ${t}, eps = ${eps}: the perturbation follows -sign of the finite-difference gradient and raises the tempered MSP`, async () => {
      const { xp, grad } = odinExpected(x, n, d, lm, c, t, eps, () => 1);
      // every component's gradient is clearly non-zero, so each sign is determined
      const gmax = Math.max(...grad.map(Math.abs));
      expect(grad.every((g) => Math.abs(g) > 1e-3 * gmax)).toBe(true);
      const xt = t32(x, [n, d]);
      const got = await read(odinPerturb(xt, { model: lm.model, temperature: t, eps }));
      expectClose(got, xp, { atol: 3e-7, rtol: 0, what: "x'" });
      // the step raises the max softmax of the tempered logits of every sample (lowers the score)
      const before = perRow(linearRef(x, n, d, lm.w, lm.b, c), n, c, (v) => mspRef(v, t));
      const after = perRow(linearRef(xp, n, d, lm.w, lm.b, c), n, c, (v) => mspRef(v, t));
      for (let i = 0; i < n; i++) expect(after[i]).toBeLessThan(before[i]);
      // the detector scores x' with MSP at the same temperature
      const det = odinDetector({ model: lm.model, temperature: t, eps });
      expectClose(await read(det.score(xt)), after, { rtol: 1e-5, atol: 1e-7, what: 'ODIN score' });
      xt.dispose();
    });
  }

  it('defaults are T = 1000 and eps = 0.0014; eps = 0 is temperature scaling alone', async () => {
    expect([ODIN_DEFAULT_TEMPERATURE, ODIN_DEFAULT_EPS]).toEqual([1000, 0.0014]);
    const xt = t32(x, [n, d]);
    const plain = await read(odinDetector({ model: lm.model, eps: 0 }).score(xt));
    expectClose(plain, perRow(linearRef(x, n, d, lm.w, lm.b, c), n, c, (v) => mspRef(v, 1000)), { rtol: 1e-6 });
    const { xp } = odinExpected(x, n, d, lm, c, 1000, 0.0014, () => 1);
    const dflt = await read(odinDetector({ model: lm.model }).score(xt));
    expectClose(dflt, perRow(linearRef(xp, n, d, lm.w, lm.b, c), n, c, (v) => mspRef(v, 1000)), { rtol: 1e-6 });
    xt.dispose();
  });

  it('per-channel inputStd divides the step (NCHW input [5, 2, 1, 3] through a flattening model)', async () => {
    const lm6 = linearModel(6, 3, 310);
    const x6 = asF32(randArray(n * 6, 311, -1, 1));
    const std = [0.25, 0.5];
    const eps = 0.002;
    const { xp } = odinExpected(x6, n, 6, lm6, 3, 1000, eps, (j) => std[Math.floor(j / 3)]);
    const xt = t32(x6, [n, 2, 1, 3]);
    const out = odinPerturb(xt, { model: lm6.model, eps, inputStd: std });
    expect(out.shape).toEqual([n, 2, 1, 3]);
    expectClose(await read(out), xp, { atol: 3e-7, rtol: 0, what: "x' with inputStd" });
    expect(() => odinPerturb(xt, { model: lm6.model, inputStd: [1, 2, 3] })).toThrow(/inputStd has 3 values, but the input of shape \[5, 2, 1, 3\] has 2 channels/);
    xt.dispose();
    out.dispose();
  });

  it('works under noGrad, leaves x, its grad and frozen parameters untouched, and frees its temporaries', async () => {
    const xt = t32(x, [n, d]);
    lm.wt.requiresGrad = true;
    const det = odinDetector({ model: lm.model, freeze: [lm.wt] });
    await runtime().device.sync();
    const before = memoryStats();
    const s = noGrad(() => det.score(xt));
    expect(memoryStats().tensors).toBe(before.tensors + 1);
    expect(xt.grad).toBeNull();
    expect(xt.requiresGrad).toBe(false);
    expect(lm.wt.grad).toBeNull();
    expect(lm.wt.requiresGrad).toBe(true);
    // without freeze, the backward pass reaches the parameters (as PyTorch's would)
    const s2 = odinDetector({ model: lm.model }).score(xt);
    expect(lm.wt.grad).not.toBeNull();
    expectClose(await read(s2), await read(s), { rtol: 1e-6 });
    lm.wt.grad!.dispose();
    lm.wt.grad = null;
    lm.wt.requiresGrad = false;
    s.dispose();
    s2.dispose();
    xt.dispose();
  });

  it('refuses bad options', () => {
    expect(() => odinDetector({} as never)).toThrow(/odin: options.model must be a function/);
    expect(() => odinDetector({ model: lm.model, eps: -1 })).toThrow(/eps must be a finite number >= 0/);
    expect(() => odinDetector({ model: lm.model, temperature: 0 })).toThrow(/temperature/);
  });
});

// ------------------------------------------------------------------ Mahalanobis

describe('Mahalanobis', () => {
  it('known answer: two classes in 2-D with covariance I/2 give distances 2 |f - mu|^2', async () => {
    // class 0 around (0, 0), class 1 around (10, 0), each at (+-1, 0), (0, +-1): per-class scatter
    // diag(2, 2), tied covariance diag(4, 4) / 8 = I/2, precision 2I.
    const pts = [1, 0, -1, 0, 0, 1, 0, -1];
    const feats = [...pts, ...pts.map((v, i) => (i % 2 === 0 ? v + 10 : v))];
    const labels = [0, 0, 0, 0, 1, 1, 1, 1];
    const det = mahalanobisDetector({ features: (f) => f, ridge: 0 });
    det.fitFeatures(feats, labels, 2);
    expectClose(det.fitted!.covariance, [0.5, 0, 0, 0.5], { atol: 1e-15 });
    expectClose(det.fitted!.means, [0, 0, 10, 0], { atol: 1e-15 });
    const q = t32([0, 0, 3, 4, 5, 0, 10, 1, -2, -1], [5, 2]);
    // (0,0): 0; (3,4): min(50, 130); (5,0): min(50, 50); (10,1): min(202, 2); (-2,-1): min(10, 290)
    expectClose(await read(det.score(q)), [0, 50, 50, 2, 10], { atol: 2e-5, rtol: 1e-6 });
    expectClose(await read(det.distances(q)), [0, 200, 50, 130, 50, 50, 202, 2, 10, 290], { atol: 2e-5, rtol: 1e-6 });
    q.dispose();
    det.dispose();
  });

  it('fit over batches (labels as tensors and arrays) matches a two-pass float64 fit; scores match', async () => {
    const d = 5;
    const c = 3;
    const sizes = [17, 9, 23];
    const n = sizes.reduce((a, b) => a + b, 0);
    // anisotropic, correlated features with class offsets and a large common offset (tests the
    // one-pass accumulation's accuracy)
    const base = randnArray(n * d, 400);
    const labels = Int32Array.from({ length: n }, (_, i) => (i * 7) % c);
    const f = asF32(Array.from(base, (v, k) => {
      const i = Math.floor(k / d);
      const j = k % d;
      const mix = j > 0 ? 0.6 * base[k - 1] : 0;
      return 50 + (j + 1) * v + mix + 3 * labels[i] * (j % 2 === 0 ? 1 : -1);
    }));
    const ref = fitRef(f, labels, n, d, c, 1e-6);
    const det = mahalanobisDetector({ features: (x) => x });
    let at = 0;
    const data = sizes.map((m, k) => {
      const input = t32(f.subarray(at * d, (at + m) * d), [m, d]);
      const ys = labels.subarray(at, at + m);
      at += m;
      return { input, labels: k === 1 ? tensor(Int32Array.from(ys), [m]) : Array.from(ys) };
    });
    await det.fit(data);
    const st = det.fitted!;
    expect([st.classes, st.dim]).toEqual([c, d]);
    expectClose(st.means, ref.means, { rtol: 1e-12, atol: 1e-12, what: 'means' });
    expectClose(st.covariance, ref.cov, { rtol: 1e-9, atol: 1e-11, what: 'covariance' });
    const q = asF32(Array.from(randnArray(7 * d, 401, 4), (v) => v + 50));
    const qt = t32(q, [7, d]);
    const prec = inverseRef(ref.cov, d);
    const want = Float64Array.from({ length: 7 }, (_, i) => Math.min(...mahalanobisRef(q.subarray(i * d, (i + 1) * d), ref.means, prec, c, d)));
    expectClose(await read(det.score(qt)), want, { rtol: 2e-4, atol: 1e-3, what: 'scores' });
    for (const b of data) {
      b.input.dispose();
      if (!Array.isArray(b.labels)) (b.labels as Tensor).dispose();
    }
    qt.dispose();
    det.dispose();
  });

  it('a dead (constant) feature: singular without a ridge (clear error), finite with the default ridge', async () => {
    const n = 12;
    const f = Array.from({ length: n * 3 }, (_, k) => (k % 3 === 2 ? 1 : Math.sin(k * 1.7)));
    const labels = Array.from({ length: n }, (_, i) => i % 2);
    expect(() => mahalanobisDetector({ features: (x) => x, ridge: 0 }).fitFeatures(f, labels, 3)).toThrow(/mahalanobis.fit: the tied covariance of the 3-dimensional features is singular .*raise options.ridge/);
    const det = mahalanobisDetector({ features: (x) => x });
    det.fitFeatures(f, labels, 3);
    const s = await read(det.score(t32([0.1, 0.2, 1, 0.3, -0.1, 1], [2, 3])));
    expect(s.every(Number.isFinite)).toBe(true);
    det.dispose();
  });

  it('the perturbation follows -sign of the finite-difference gradient of the closest-class distance', async () => {
    const n = 6;
    const dIn = 5;
    const dF = 4;
    const c = 3;
    const ext = linearModel(dIn, dF, 410);
    // training inputs: three clusters
    const m = 30;
    const trainX = asF32(Array.from(randnArray(m * dIn, 411), (v, k) => v + (Math.floor(k / dIn) % c) * 1.5));
    const trainY = Array.from({ length: m }, (_, i) => i % c);
    const eps = 0.003;
    const det = mahalanobisDetector({ features: ext.model, eps });
    const xt = t32(trainX, [m, dIn]);
    await det.fit([{ input: xt, labels: trainY }]);
    const st = det.fitted!;
    const prec = inverseRef(st.covariance, dF);
    const distOf = (xi: ArrayLike<number>): number[] => mahalanobisRef(linearRef(xi, 1, dIn, ext.w, ext.b, dF), st.means, prec, c, dF);
    const x = asF32(randnArray(n * dIn, 412, 1.5));
    const expected = new Float64Array(n * dIn);
    const before: number[] = [];
    for (let i = 0; i < n; i++) {
      const xi = x.slice(i * dIn, (i + 1) * dIn);
      const dist = distOf(xi);
      const chat = dist.indexOf(Math.min(...dist));
      before.push(dist[chat]);
      const g = finiteDiff((v) => distOf(v)[chat], xi, 1e-5);
      const gmax = Math.max(...g.map(Math.abs));
      expect(g.every((v) => Math.abs(v) > 1e-3 * gmax)).toBe(true);
      for (let j = 0; j < dIn; j++) expected[i * dIn + j] = xi[j] - eps * Math.sign(g[j]);
    }
    const qt = t32(x, [n, dIn]);
    expectClose(await read(det.perturb(qt)), expected, { atol: 3e-7, rtol: 0, what: "x'" });
    // the score is the minimum distance at x', and the step brought every sample closer
    const after = Array.from({ length: n }, (_, i) => Math.min(...distOf(expected.subarray(i * dIn, (i + 1) * dIn))));
    for (let i = 0; i < n; i++) expect(after[i]).toBeLessThan(before[i]);
    expectClose(await read(det.score(qt)), after, { rtol: 1e-4, atol: 1e-4, what: 'perturbed score' });
    // without eps, the score is the distance at x itself
    const plain = mahalanobisDetector({ features: ext.model });
    await plain.fit([{ input: xt, labels: trainY }]);
    expectClose(await read(plain.score(qt)), before, { rtol: 1e-4, atol: 1e-4, what: 'plain score' });
    for (const t of [xt, qt]) t.dispose();
    det.dispose();
    plain.dispose();
  });

  it('refuses scoring before fit, wrong feature sizes, and labels with a missing class', async () => {
    const det = mahalanobisDetector({ features: (x) => x });
    const q = t32([1, 2, 3], [1, 3]);
    expect(() => det.score(q)).toThrow(/mahalanobis: call fit\(\) \(or fitFeatures\(\)\) before scoring/);
    expect(() => det.fitFeatures([1, 2, 3, 4], [0, 2], 2)).toThrow(/class 1 has no training samples/);
    expect(() => det.fitFeatures([1, 2, 3, 4], [0, -1], 2)).toThrow(/labels must be class indices >= 0, got -1/);
    det.fitFeatures([1, 0, 0, 1, 2, 2], [0, 1, 0], 2);
    expect(() => det.score(q)).toThrow(/features of shape \[1, 3\] do not have the fitted dimension 2/);
    q.dispose();
    det.dispose();
  });
});

// ------------------------------------------------------------------ float64 linear algebra

describe('float64 Cholesky and SPD inverse', () => {
  it('factorise and invert a random SPD matrix (odd size) to float64 accuracy', () => {
    const n = 9;
    const b = randnArray(n * n, 500);
    const a = new Float64Array(n * n);
    for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) {
      let s = i === j ? 0.5 : 0;
      for (let k = 0; k < n; k++) s += b[i * n + k] * b[j * n + k];
      a[i * n + j] = s;
    }
    const l = cholesky(a, n);
    const llt = new Float64Array(n * n);
    for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) {
      expect(j > i ? l[i * n + j] : 0).toBe(0);
      let s = 0;
      for (let k = 0; k < n; k++) s += l[i * n + k] * l[j * n + k];
      llt[i * n + j] = s;
    }
    expectClose(llt, a, { rtol: 1e-12, atol: 1e-12, what: 'L L^T' });
    expectClose(spdInverse(a, n), inverseRef(a, n), { rtol: 1e-9, atol: 1e-10, what: 'inverse' });
  });

  it('reports the first non-positive pivot', () => {
    expect(() => cholesky(Float64Array.from([1, 2, 2, 1]), 2)).toThrow(NotPositiveDefiniteError);
    expect(() => cholesky(Float64Array.from([1, 2, 2, 1]), 2)).toThrow(/pivot 1 is -3/);
  });
});
