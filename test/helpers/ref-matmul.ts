/** float64 reference of the batched matmul with broadcasting, bias and fused activation (shared by
 * test/engine/matmul.test.ts and the browser checks, test/browser/kernel-checks.ts). */
import type { Activation } from '../../src/engine/api.ts';

export interface Mat {
  data: Float64Array;
  batch: number[];
  rows: number;
  cols: number;
}

/** Batched reference product with broadcasting of the batch dimensions, bias and activation. */
export function refMatmul(a: Mat, b: Mat, bias: Float64Array | null, act: Activation, perRow = false): Mat {
  const r = Math.max(a.batch.length, b.batch.length);
  const bs: number[] = [];
  for (let i = 0; i < r; i++) {
    const da = a.batch[a.batch.length - r + i] ?? 1;
    const db = b.batch[b.batch.length - r + i] ?? 1;
    bs.push(Math.max(da, db));
  }
  const nb = bs.reduce((x, y) => x * y, 1);
  const M = a.rows, K = a.cols, N = b.cols;
  const out = new Float64Array(nb * M * N);
  const index = (m: Mat, z: number) => {
    // batch index z of the broadcast shape -> flat batch index in m
    let rem = z, idx = 0, stride = 1;
    for (let d = r - 1; d >= 0; d--) {
      const c = rem % bs[d];
      rem = Math.floor(rem / bs[d]);
      const md = d - (r - m.batch.length);
      if (md >= 0) {
        if (m.batch[md] !== 1) idx += c * stride;
        stride *= m.batch[md];
      }
    }
    return idx;
  };
  for (let z = 0; z < nb; z++) {
    const ao = index(a, z) * M * K;
    const bo = index(b, z) * K * N;
    for (let i = 0; i < M; i++) {
      for (let j = 0; j < N; j++) {
        let s = 0;
        for (let k = 0; k < K; k++) s += a.data[ao + i * K + k] * b.data[bo + k * N + j];
        if (bias) s += perRow ? bias[i] : bias[j];
        out[(z * M + i) * N + j] = actRef(s, act);
      }
    }
  }
  return { data: out, batch: bs, rows: M, cols: N };
}

export function actRef(x: number, act: Activation): number {
  switch (act) {
    case 'relu': return Math.max(x, 0);
    case 'gelu': return 0.5 * x * (1 + erf(x / Math.SQRT2));
    case 'gelu_tanh': return 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x ** 3)));
    case 'leaky_relu': return x > 0 ? x : 0.01 * x;
    case 'tanh': return Math.tanh(x);
    case 'sigmoid': return 1 / (1 + Math.exp(-x));
    default: return x;
  }
}

/** erf in double precision: Taylor series below 3, the continued fraction of erfc above. */
export function erf(x: number): number {
  const ax = Math.abs(x);
  if (ax >= 3) {
    let f = 0;
    for (let n = 80; n >= 1; n--) f = n / 2 / (ax + f);
    return Math.sign(x) * (1 - Math.exp(-ax * ax) / Math.sqrt(Math.PI) / (ax + f));
  }
  let term = x, s = x;
  for (let n = 1; n < 200; n++) {
    term *= (-x * x) / n;
    const add = term / (2 * n + 1);
    s += add;
    if (Math.abs(add) < 1e-18) break;
  }
  return (2 / Math.sqrt(Math.PI)) * s;
}
