import { describe, it, expect, beforeAll } from 'vitest';
import { engine, t32, read } from '../helpers/gpu.ts';
import { randArray, asF32, expectClose, finiteDiff, dot } from '../helpers/reference.ts';
import { batchNorm2d, conditionalBatchNorm2d, classEmbedding, backward, tensor } from '../../src/engine/index.ts';

beforeAll(async () => {
  await engine();
});

const N = 3, C = 5, H = 7, W = 9, HW = H * W;
const EPS = 1e-5;

/** Float64 batch norm; gamma/beta per channel (length C), per sample (N*C) or null. */
function bnRef(x: Float64Array, gamma: Float64Array | null, beta: Float64Array | null, stats?: { mean: number[]; v: number[] }) {
  const mean: number[] = [];
  const v: number[] = [];
  const y = new Float64Array(x.length);
  for (let c = 0; c < C; c++) {
    let m = 0, q = 0;
    if (stats) {
      m = stats.mean[c];
      q = stats.v[c];
    } else {
      for (let n = 0; n < N; n++) for (let s = 0; s < HW; s++) m += x[(n * C + c) * HW + s];
      m /= N * HW;
      for (let n = 0; n < N; n++) for (let s = 0; s < HW; s++) q += (x[(n * C + c) * HW + s] - m) ** 2;
      q /= N * HW;
    }
    mean.push(m);
    v.push(q);
    for (let n = 0; n < N; n++)
      for (let s = 0; s < HW; s++) {
        const i = (n * C + c) * HW + s;
        const ai = gamma && gamma.length === N * C ? n * C + c : c;
        const xh = (x[i] - m) / Math.sqrt(q + EPS);
        y[i] = gamma && beta ? xh * gamma[ai] + beta[ai] : xh;
      }
  }
  return { y, mean, v };
}

/** Hand-derived backward (training or fixed statistics). */
function bnBackRef(x: Float64Array, gamma: Float64Array | null, g: Float64Array, training: boolean, stats?: { mean: number[]; v: number[] }) {
  const { mean, v } = bnRef(x, null, null, stats);
  const perSample = gamma !== null && gamma.length === N * C;
  const dx = new Float64Array(x.length);
  const dgamma = new Float64Array(gamma ? gamma.length : 0);
  const dbeta = new Float64Array(gamma ? gamma.length : 0);
  const cnt = N * HW;
  for (let c = 0; c < C; c++) {
    const is = 1 / Math.sqrt(v[c] + EPS);
    let s1 = 0, s2 = 0;
    const gh = (n: number, i: number) => g[i] * (gamma ? gamma[perSample ? n * C + c : c] : 1);
    for (let n = 0; n < N; n++)
      for (let s = 0; s < HW; s++) {
        const i = (n * C + c) * HW + s;
        const xh = (x[i] - mean[c]) * is;
        s1 += gh(n, i);
        s2 += gh(n, i) * xh;
        if (gamma) {
          const ai = perSample ? n * C + c : c;
          dgamma[ai] += g[i] * xh;
          dbeta[ai] += g[i];
        }
      }
    for (let n = 0; n < N; n++)
      for (let s = 0; s < HW; s++) {
        const i = (n * C + c) * HW + s;
        const xh = (x[i] - mean[c]) * is;
        dx[i] = training ? is * (gh(n, i) - s1 / cnt - xh * s2 / cnt) : is * gh(n, i);
      }
  }
  return { dx, dgamma, dbeta };
}

function inputs(seed: number, shift = 0.5) {
  return {
    x: asF32(randArray(N * C * HW, seed, -2 + shift, 2 + shift)),
    g: asF32(randArray(N * C * HW, seed + 1)),
    gc: asF32(randArray(C, seed + 2, 0.5, 1.5)),
    bc: asF32(randArray(C, seed + 3)),
    gn: asF32(randArray(N * C, seed + 4, 0.5, 1.5)),
    bn: asF32(randArray(N * C, seed + 5)),
  };
}

describe('batchNorm2d training', () => {
  for (const mode of ['per-channel', 'per-sample', 'none'] as const) {
    it(`forward, running estimates and fused backward (${mode} affine)`, async () => {
      const d = inputs(7);
      const gamma = mode === 'per-channel' ? d.gc : mode === 'per-sample' ? d.gn : null;
      const beta = mode === 'per-channel' ? d.bc : mode === 'per-sample' ? d.bn : null;
      const ref = bnRef(d.x, gamma, beta);
      const back = bnBackRef(d.x, gamma, d.g, true);
      // the hand-derived backward against finite differences of the float64 forward
      expectClose(back.dx, finiteDiff((x) => dot(bnRef(x, gamma, beta).y, d.g), d.x), { atol: 2e-6, rtol: 1e-5, what: 'ref dx vs FD' });
      if (gamma && beta) {
        expectClose(back.dgamma, finiteDiff((gm) => dot(bnRef(d.x, gm, beta).y, d.g), gamma), { atol: 1e-6, rtol: 1e-5, what: 'ref dgamma vs FD' });
        expectClose(back.dbeta, finiteDiff((bt) => dot(bnRef(d.x, gamma, bt).y, d.g), beta), { atol: 1e-6, rtol: 1e-5, what: 'ref dbeta vs FD' });
      }

      const shape = mode === 'per-sample' ? [N, C] : [C];
      const x = t32(d.x, [N, C, H, W], true);
      const w = gamma ? t32(gamma, shape, true) : null;
      const b = beta ? t32(beta, shape, true) : null;
      const rm0 = asF32(randArray(C, 30));
      const rv0 = asF32(randArray(C, 31, 0.5, 2));
      const rm = t32(rm0, [C]);
      const rv = t32(rv0, [C]);
      const y = batchNorm2d(x, w, b, { training: true, runningMean: rm, runningVar: rv, momentum: 0.3 });
      expectClose(await read(y), ref.y, { atol: 1e-5, rtol: 1e-4, what: 'forward' });
      const cnt = N * HW;
      expectClose(await read(rm), rm0.map((r, c) => 0.7 * r + 0.3 * ref.mean[c]), { atol: 1e-6, rtol: 1e-5, what: 'running mean' });
      expectClose(await read(rv), rv0.map((r, c) => 0.7 * r + 0.3 * ref.v[c] * cnt / (cnt - 1)), { atol: 1e-6, rtol: 1e-5, what: 'running var (unbiased)' });
      backward(y, t32(d.g, [N, C, H, W]));
      expectClose(await read(x.grad!), back.dx, { atol: 2e-5, rtol: 1e-4, what: 'dx' });
      if (w && b) {
        expectClose(await read(w.grad!), back.dgamma, { atol: 1e-4, rtol: 1e-4, what: 'dgamma' });
        expectClose(await read(b.grad!), back.dbeta, { atol: 1e-4, rtol: 1e-4, what: 'dbeta' });
      }
      for (const t of [x, w, b, rm, rv, y, x.grad, w?.grad, b?.grad]) t?.dispose();
    });
  }

  it('stays accurate with a large mean (two-pass variance)', async () => {
    const d = inputs(9, 1000);
    const ref = bnRef(d.x, null, null);
    const x = t32(d.x, [N, C, H, W]);
    const y = batchNorm2d(x, null, null);
    expectClose(await read(y), ref.y, { atol: 2e-3, rtol: 1e-3 });
    x.dispose();
    y.dispose();
  });
});

describe('batchNorm2d evaluation', () => {
  it('uses the running estimates, leaves them untouched, and backpropagates through fixed statistics', async () => {
    const d = inputs(11);
    const stats = { mean: Array.from(asF32(randArray(C, 40))), v: Array.from(asF32(randArray(C, 41, 0.5, 2))) };
    const ref = bnRef(d.x, d.gc, d.bc, stats);
    const back = bnBackRef(d.x, d.gc, d.g, false, stats);
    expectClose(back.dx, finiteDiff((x) => dot(bnRef(x, d.gc, d.bc, stats).y, d.g), d.x), { atol: 1e-6, rtol: 1e-5, what: 'ref dx vs FD' });
    const x = t32(d.x, [N, C, H, W], true);
    const w = t32(d.gc, [C], true);
    const b = t32(d.bc, [C], true);
    const rm = t32(stats.mean, [C]);
    const rv = t32(stats.v, [C]);
    const y = batchNorm2d(x, w, b, { training: false, runningMean: rm, runningVar: rv });
    expectClose(await read(y), ref.y, { atol: 1e-5, rtol: 1e-4, what: 'forward' });
    expectClose(await read(rm), stats.mean, { atol: 0, rtol: 0, what: 'running mean unchanged' });
    backward(y, t32(d.g, [N, C, H, W]));
    expectClose(await read(x.grad!), back.dx, { atol: 1e-5, rtol: 1e-4, what: 'dx' });
    expectClose(await read(w.grad!), back.dgamma, { atol: 1e-4, rtol: 1e-4, what: 'dgamma' });
    expectClose(await read(b.grad!), back.dbeta, { atol: 1e-4, rtol: 1e-4, what: 'dbeta' });
    for (const t of [x, w, b, rm, rv, y, x.grad, w.grad, b.grad]) t?.dispose();
  });
});

describe('conditional batch norm', () => {
  it('gain 1 + table[class], bias table[class]; table gradients sum over samples of a class', async () => {
    const K = 4;
    const d = inputs(13);
    const cls = [2, 0, 2];
    const gt = asF32(randArray(K * C, 50, -0.5, 0.5));
    const bt = asF32(randArray(K * C, 51));
    const gain = new Float64Array(N * C);
    const bias = new Float64Array(N * C);
    for (let n = 0; n < N; n++) for (let c = 0; c < C; c++) {
      gain[n * C + c] = 1 + gt[cls[n] * C + c];
      bias[n * C + c] = bt[cls[n] * C + c];
    }
    const ref = bnRef(d.x, gain, bias);
    const back = bnBackRef(d.x, gain, d.g, true);
    const dgt = new Float64Array(K * C);
    const dbt = new Float64Array(K * C);
    for (let n = 0; n < N; n++) for (let c = 0; c < C; c++) {
      dgt[cls[n] * C + c] += back.dgamma[n * C + c];
      dbt[cls[n] * C + c] += back.dbeta[n * C + c];
    }
    const f = (g2: Float64Array, b2: Float64Array): number => {
      const ga = new Float64Array(N * C), bi = new Float64Array(N * C);
      for (let n = 0; n < N; n++) for (let c = 0; c < C; c++) {
        ga[n * C + c] = 1 + g2[cls[n] * C + c];
        bi[n * C + c] = b2[cls[n] * C + c];
      }
      return dot(bnRef(d.x, ga, bi).y, d.g);
    };
    expectClose(dgt, finiteDiff((g2) => f(g2, bt), gt), { atol: 1e-6, rtol: 1e-5, what: 'ref dgain table vs FD' });
    expectClose(dbt, finiteDiff((b2) => f(gt, b2), bt), { atol: 1e-6, rtol: 1e-5, what: 'ref dbias table vs FD' });

    const x = t32(d.x, [N, C, H, W], true);
    const classes = tensor(Int32Array.from(cls), [N]);
    const gT = t32(gt, [K, C], true);
    const bT = t32(bt, [K, C], true);
    const y = conditionalBatchNorm2d(x, classes, gT, bT);
    expectClose(await read(y), ref.y, { atol: 1e-5, rtol: 1e-4, what: 'forward' });
    backward(y, t32(d.g, [N, C, H, W]));
    expectClose(await read(x.grad!), back.dx, { atol: 2e-5, rtol: 1e-4, what: 'dx' });
    expectClose(await read(gT.grad!), dgt, { atol: 1e-4, rtol: 1e-4, what: 'dgain table' });
    expectClose(await read(bT.grad!), dbt, { atol: 1e-4, rtol: 1e-4, what: 'dbias table' });
    for (const t of [x, classes, gT, bT, y, x.grad, gT.grad, bT.grad]) t?.dispose();
  });

  it('classEmbedding gathers rows plus a shift', async () => {
    const table = t32([1, 2, 3, 4, 5, 6], [3, 2]);
    const cls = tensor(Int32Array.from([2, 2, 0, 1]), [4]);
    const e = classEmbedding(table, cls, 1);
    expectClose(await read(e), [6, 7, 6, 7, 2, 3, 4, 5], { atol: 0, rtol: 0 });
    for (const t of [table, cls, e]) t.dispose();
  });
});

describe('batchNorm2d bad input', () => {
  it('names the op and the shapes', () => {
    const x = tensor(new Float32Array(2 * 3 * 4 * 5).fill(1), [2, 3, 4, 5]);
    const x3 = tensor(new Float32Array(6).fill(1), [2, 3]);
    const w4 = tensor(new Float32Array(4).fill(1), [4]);
    const one = tensor(new Float32Array(3).fill(1), [1, 3, 1, 1]);
    expect(() => batchNorm2d(x3)).toThrow(/batchNorm2d: input must be 4-D \(N, C, H, W\), got shape \[2, 3\]/);
    expect(() => batchNorm2d(x, w4, w4)).toThrow(/batchNorm2d: weight must have shape \[3\] \(per channel\) or \[2, 3\] \(per sample\) for input \[2, 3, 4, 5\], got \[4\]/);
    expect(() => batchNorm2d(x, null, null, { training: false })).toThrow(/batchNorm2d: evaluation mode needs runningMean/);
    expect(() => batchNorm2d(one)).toThrow(/batchNorm2d: expected more than 1 value per channel when training/);
    for (const t of [x, x3, w4, one]) t.dispose();
  });
});
