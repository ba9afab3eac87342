import { describe, it, expect, beforeAll } from 'vitest';
import { engine, t32, read } from '../helpers/gpu.ts';
import { randArray, asF32, expectClose, finiteDiff, dot } from '../helpers/reference.ts';
import { refMatmul, actRef, type Mat } from '../helpers/ref-matmul.ts';
import { matmul, matmulRaw, linear, transpose, backward, sum, mul, noGrad, empty, runtime, OpError, planMatmul, type Tensor, type Activation, type MatmulKind } from '../../src/engine/index.ts';

// ------------------------------------------------------------------------------ float64 reference

/** Row-major [rows, cols] matrices stored transposed ([cols, rows]) for the transposed cases. */
function transposeData(m: Mat): Float64Array {
  const nb = m.batch.reduce((x, y) => x * y, 1);
  const out = new Float64Array(m.data.length);
  for (let z = 0; z < nb; z++) {
    const o = z * m.rows * m.cols;
    for (let i = 0; i < m.rows; i++) for (let j = 0; j < m.cols; j++) out[o + j * m.rows + i] = m.data[o + i * m.cols + j];
  }
  return out;
}

function mat(batch: number[], rows: number, cols: number, seed: number): Mat {
  const n = batch.reduce((x, y) => x * y, 1) * rows * cols;
  return { data: asF32(randArray(n, seed)), batch, rows, cols };
}

const tol = (K: number) => ({ atol: 2e-6 * Math.sqrt(K) + 1e-6, rtol: 1e-5 });

beforeAll(async () => {
  await engine();
});

// ------------------------------------------------------------------------------ every variant

const VARIANTS: MatmulKind[] = ['naive', 'tiled', 'reg4x4', 'reg8x8', 'reg16x8', 'simd8'];

describe('matmul variants (kernels/matmul.wgsl)', () => {
  // (M, N, K): odd sizes, size 1, non-multiples of every tile (16, 64, 128), and 4-aligned ones so
  // that reg8x8 really runs its vec4 path (its unaligned fallback is reg4x4).
  const shapes: [number, number, number][] = [[1, 1, 1], [7, 33, 65], [65, 7, 127], [130, 129, 33], [132, 68, 36], [1, 200, 17]];
  for (const v of VARIANTS) {
    it(`${v}: plain, transposed operands, every shape`, async () => {
      for (const [M, N, K] of shapes) {
        const a = mat([], M, K, M * 31 + K);
        const b = mat([], K, N, N * 17 + K + 1);
        const want = refMatmul(a, b, null, 'none');
        for (const [tA, tB] of [[false, false], [true, false], [false, true], [true, true]]) {
          const A = t32(tA ? transposeData(a) : a.data, tA ? [K, M] : [M, K]);
          const B = t32(tB ? transposeData(b) : b.data, tB ? [N, K] : [K, N]);
          const C = matmulRaw(A, B, { transA: tA, transB: tB, variant: v, splits: 1 });
          expect(C.shape).toEqual([M, N]);
          expectClose(await read(C), want.data, { ...tol(K), what: `${v} ${M}x${N}x${K} tA=${tA} tB=${tB}` });
          for (const t of [A, B, C]) t.dispose();
        }
      }
    });
  }

  it('reg16x8 tile shapes (32, 64, 128 rows x 64, 128 columns), vec4 path, each with one transpose case', async () => {
    // each tile shape compiles its own pipeline (overrides): one transpose combination per shape
    // keeps the file fast; every combination runs on the 128x128 tile above
    const cases: [number, number, number, boolean, boolean][] = [[28, 60, 12, false, false], [60, 64, 20, true, false], [36, 132, 8, false, true], [100, 52, 24, true, true]];
    for (const [M, N, K, tA0, tB0] of cases) {
      const a = mat([], M, K, M + 7 * K);
      const b = mat([], K, N, N + 5 * K);
      const want = refMatmul(a, b, null, 'none');
      for (const [tA, tB] of [[tA0, tB0]]) {
        const A = t32(tA ? transposeData(a) : a.data, tA ? [K, M] : [M, K]);
        const B = t32(tB ? transposeData(b) : b.data, tB ? [N, K] : [K, N]);
        const C = matmulRaw(A, B, { transA: tA, transB: tB, variant: 'reg16x8', splits: 1 });
        expectClose(await read(C), want.data, { ...tol(K), what: `reg16x8 ${M}x${N}x${K} tA=${tA} tB=${tB}` });
        for (const t of [A, B, C]) t.dispose();
      }
    }
  });

  it('split K (each variant, uneven last slice) with bias and activation in the reduce pass', async () => {
    const [M, N, K] = [33, 68, 500];
    const a = mat([], M, K, 3);
    const b = mat([], K, N, 4);
    const bias = asF32(randArray(N, 5));
    const want = refMatmul(a, b, bias, 'relu');
    const A = t32(transposeData(a), [K, M]);
    const B = t32(b.data, [K, N]);
    const Bi = t32(bias, [N]);
    for (const v of VARIANTS) {
      for (const splits of [2, 3, 7]) {
        const C = matmulRaw(A, B, { transA: true, variant: v, splits, bias: Bi, activation: 'relu' });
        expectClose(await read(C), want.data, { ...tol(K), what: `${v} splits ${splits}` });
        C.dispose();
      }
    }
    for (const t of [A, B, Bi]) t.dispose();
  });

  it('batched with broadcast batch dimensions (stride 0), for every variant', async () => {
    const a = mat([3, 1], 9, 20, 11);
    const b = mat([1, 2], 20, 13, 12);
    const want = refMatmul(a, b, null, 'none');
    const A = t32(a.data, [3, 1, 9, 20]);
    const B = t32(b.data, [1, 2, 20, 13]);
    for (const v of VARIANTS) {
      const C = matmulRaw(A, B, { variant: v });
      expect(C.shape).toEqual([3, 2, 9, 13]);
      expectClose(await read(C), want.data, { ...tol(20), what: v });
      C.dispose();
    }
    // 4-aligned batched operands, so reg8x8 takes the vec4 path with batch strides
    const a4 = mat([5], 12, 16, 13);
    const b4 = mat([5], 16, 8, 14);
    const want4 = refMatmul(a4, b4, null, 'none');
    const A4 = t32(a4.data, [5, 12, 16]);
    const B4 = t32(b4.data, [5, 16, 8]);
    for (const v of ['reg8x8', 'reg16x8'] as MatmulKind[]) {
      const C4 = matmulRaw(A4, B4, { variant: v });
      expectClose(await read(C4), want4.data, { ...tol(16), what: `${v} batched` });
      C4.dispose();
    }
    for (const t of [A, B, A4, B4]) t.dispose();
  });

  it('a batch of A against one shared B: one product of entries x M rows, or per entry where A is not stacked', async () => {
    // entries x rows stacked row after row (folded), M = 1 (folded through the batch stride), a
    // transposed shared B, K not a multiple of 4 (the unaligned path), bias and activation
    for (const [nb, M, N, K, tB] of [[7, 5, 13, 33, false], [6, 1, 37, 1003, false], [4, 9, 11, 130, true], [35, 3, 10, 1031, false]] as const) {
      const a = mat([nb], M, K, nb * 7 + M);
      const b = mat([], K, N, N + K);
      const biasV = asF32(randArray(N, 91));
      const want = refMatmul(a, b, biasV, 'relu');
      const A = t32(a.data, [nb, M, K]);
      const B = t32(tB ? transposeData(b) : b.data, tB ? [N, K] : [K, N]);
      const bias = t32(biasV, [N]);
      for (const v of [...VARIANTS, undefined]) {
        const C = matmulRaw(A, B, { transB: tB, bias, activation: 'relu', variant: v });
        expect(C.shape).toEqual([nb, M, N]);
        expectClose(await read(C), want.data, { ...tol(K), what: `${v ?? 'auto'} ${nb}x[${M}, ${K}] @ [${K}, ${N}] tB=${tB}` });
        C.dispose();
      }
      // A's entries not stacked (a batch-transposed view): the same product, entry by entry
      const X = t32(transposeData({ ...a, batch: [], rows: nb, cols: M * K }), [M * K, nb]);
      const Av = X.view([nb, M, K], [1, K * nb, nb], 0);
      const C2 = matmulRaw(Av, B, { transB: tB, bias, activation: 'relu' });
      expectClose(await read(C2), want.data, { ...tol(K), what: `strided A ${nb}x${M}` });
      // a per-row bias is per entry's row: not folded
      const rowBias = asF32(randArray(M, 92));
      const C3 = matmulRaw(A, B, { transB: tB, bias: t32(rowBias, [M]), biasPerRow: true });
      expectClose(await read(C3), refMatmul(a, b, rowBias, 'none', true).data, { ...tol(K), what: 'per-row bias' });
      for (const t of [A, B, bias, X, Av, C2, C3]) t.dispose();
    }
  });

  it('reg8x8 and reg16x8 without the subgroup-uniform fragment (the path of adapters without subgroups)', async () => {
    const [M, N, K] = [132, 136, 44];
    const a = mat([], M, K, 15);
    const b = mat([], K, N, 16);
    const want = refMatmul(a, b, null, 'none');
    const A = t32(transposeData(a), [K, M]);
    const B = t32(b.data, [K, N]);
    for (const v of ['reg8x8', 'reg16x8'] as MatmulKind[]) {
      const C = matmulRaw(A, B, { transA: true, variant: v, subgroupRows: false });
      expectClose(await read(C), want.data, { ...tol(K), what: `${v} portable` });
      C.dispose();
    }
    for (const t of [A, B]) t.dispose();
  });

  it('more than four interleaved broadcast batch dimensions are materialised, not refused', async () => {
    const a = mat([2, 1, 2, 1, 2], 3, 5, 21);
    const b = mat([1, 2, 1, 2, 1], 5, 4, 22);
    const want = refMatmul(a, b, null, 'none');
    const A = t32(a.data, [2, 1, 2, 1, 2, 3, 5]);
    const B = t32(b.data, [1, 2, 1, 2, 1, 5, 4]);
    const C = matmulRaw(A, B);
    expect(C.shape).toEqual([2, 2, 2, 2, 2, 3, 4]);
    expectClose(await read(C), want.data, tol(5));
    for (const t of [A, B, C]) t.dispose();
  });
});

// ------------------------------------------------------------------------------ epilogue

// ------------------------------------------------------------------------------ skinny

describe('skinny products (M = 1..8 per row block)', () => {
  async function run(M: number, N: number, K: number, tA: boolean, tB: boolean, extra: { lanes?: number; splits?: number } = {}) {
    const a = mat([], M, K, M * 13 + K * 3 + N);
    const b = mat([], K, N, N * 7 + K + 2);
    const want = refMatmul(a, b, null, 'none');
    const A = t32(tA ? transposeData(a) : a.data, tA ? [K, M] : [M, K]);
    const B = t32(tB ? transposeData(b) : b.data, tB ? [N, K] : [K, N]);
    const C = matmulRaw(A, B, { transA: tA, transB: tB, variant: 'skinny', splits: extra.splits ?? 1, skinnyLanes: extra.lanes });
    expect(C.shape).toEqual([M, N]);
    expectClose(await read(C), want.data, { ...tol(K), what: `skinny ${M}x${N}x${K} tA=${tA} tB=${tB} ${JSON.stringify(extra)}` });
    for (const t of [A, B, C]) t.dispose();
  }

  it('odd sizes, every transpose combination (scalar paths), and 4-aligned ones (vec4 paths)', async () => {
    // every (M, transposes, vec4) combination compiles a pipeline (~0.5 s on lavapipe): all four
    // transpose combinations on two shapes, one each on the others
    for (const [M, N, K] of [[1, 1001, 33], [3, 33, 257]]) for (const tA of [false, true]) for (const tB of [false, true]) await run(M, N, K, tA, tB);
    await run(7, 5, 1001, false, true);
    await run(2, 257, 5, true, false);
    await run(1, 1, 1, false, false);
    await run(1, 5, 200, false, true); // vec4 along a transposed B's K, A one vec4 row
    await run(3, 36, 64, false, false); // vec4 along B's N
    await run(3, 36, 64, false, true);
  });

  it('more rows than one block (9, 17: a last block of 1) and K split over lanes (2, 8, 64) and slices', async () => {
    await run(9, 33, 20, false, true);
    await run(17, 5, 12, true, false);
    await run(3, 257, 33, false, true, { lanes: 8 });
    await run(7, 33, 65, false, false, { lanes: 64 });
    await run(3, 36, 200, false, true, { lanes: 2 }); // vec4 with lanes
    await run(3, 1001, 500, false, true, { splits: 3 });
    await run(3, 33, 500, true, false, { splits: 2, lanes: 4 });
  });

  it('batched with broadcast batch dimensions, column bias and each activation, and a per-row bias', async () => {
    const a = mat([3, 1], 2, 33, 21);
    const b = mat([1, 2], 33, 257, 22);
    const bias = asF32(randArray(257, 23));
    const A = t32(a.data, [3, 1, 2, 33]);
    const Bt = t32(transposeData(b), [1, 2, 257, 33]);
    const Bi = t32(bias, [257]);
    for (const act of ['none', 'relu', 'gelu', 'gelu_tanh', 'leaky_relu', 'tanh', 'sigmoid'] as Activation[]) {
      const C = matmulRaw(A, Bt, { transB: true, variant: 'skinny', bias: Bi, activation: act });
      expect(C.shape).toEqual([3, 2, 2, 257]);
      expectClose(await read(C), refMatmul(a, b, bias, act).data, { ...tol(33), what: `skinny batched ${act}` });
      C.dispose();
    }
    const rb = asF32(randArray(2, 24));
    const R = t32(rb, [2]);
    const B2 = t32(b.data, [1, 2, 33, 257]);
    const C = matmulRaw(A, B2, { variant: 'skinny', bias: R, biasPerRow: true, activation: 'relu' });
    expectClose(await read(C), refMatmul(a, b, rb, 'relu', true).data, { ...tol(33), what: 'skinny per-row bias' });
    for (const t of [A, Bt, Bi, R, B2, C]) t.dispose();
  });

  it('picked for M <= 8 (cached per shape), not for 32 rows; bad lane counts are refused', () => {
    expect(planMatmul(1, 33278, 200, 1, true).kind).toBe('skinny');
    expect(planMatmul(1, 33278, 200, 1, true)).toBe(planMatmul(1, 33278, 200, 1, true));
    expect(planMatmul(8, 4001, 200, 1, false).kind).toBe('skinny');
    expect(planMatmul(4096, 512, 512, 1, true).kind).not.toBe('skinny');
    const A = t32(asF32(randArray(6, 1)), [2, 3]);
    const B = t32(asF32(randArray(12, 2)), [3, 4]);
    expect(() => matmulRaw(A, B, { variant: 'skinny', skinnyLanes: 3 })).toThrow(OpError);
    expect(() => matmulRaw(A, B, { variant: 'skinny', skinnyLanes: 128 })).toThrow(/skinnyLanes/);
    for (const t of [A, B]) t.dispose();
  });
});

describe('fused epilogue', () => {
  const acts: Activation[] = ['none', 'relu', 'gelu', 'gelu_tanh', 'leaky_relu', 'tanh', 'sigmoid'];
  it('column bias and each activation (large pre-activations included)', async () => {
    const [M, N, K] = [17, 35, 29];
    const a = mat([], M, K, 41);
    const b = mat([], K, N, 42);
    // scale b so pre-activations reach |x| ~ 10-20 (tanh/sigmoid/gelu tails, exp overflow)
    b.data = asF32(b.data.map((x) => 4 * x));
    const bias = asF32(randArray(N, 43, -3, 3));
    const A = t32(a.data, [M, K]);
    const B = t32(b.data, [K, N]);
    const Bi = t32(bias, [N]);
    for (const act of acts) {
      const want = refMatmul(a, b, bias, act);
      // every activation through reg4x4; naive and reg8x8 share the epilogue code (two activations each)
      const vs: MatmulKind[] = act === 'gelu' || act === 'leaky_relu' ? ['reg4x4', 'reg8x8', 'naive'] : ['reg4x4'];
      for (const v of vs) {
        const C = matmulRaw(A, B, { bias: Bi, activation: act, variant: v });
        expectClose(await read(C), want.data, { atol: 2e-5, rtol: 2e-5, what: `${act} ${v}` });
        C.dispose();
      }
    }
    for (const t of [A, B, Bi]) t.dispose();
  });

  it('per-row bias (biasPerRow) and a bias view with an offset', async () => {
    const [M, N, K] = [11, 6, 9];
    const a = mat([], M, K, 51);
    const b = mat([], K, N, 52);
    const biasAll = asF32(randArray(M + 3, 53));
    const bias = biasAll.slice(3);
    const A = t32(a.data, [M, K]);
    const B = t32(b.data, [K, N]);
    const Ball = t32(biasAll, [M + 3]);
    const Bi = Ball.view([M], [1], 3);
    const C = matmul(A, B, { bias: Bi, biasPerRow: true, activation: 'tanh' });
    expectClose(await read(C), refMatmul(a, b, bias, 'tanh', true).data, tol(K));
    for (const t of [A, B, Ball, Bi, C]) t.dispose();
  });
});

// ------------------------------------------------------------------------------ matmul semantics

describe('matmul (PyTorch semantics)', () => {
  it('1-D operands: vector @ matrix, matrix @ vector, dot, batched @ vector', async () => {
    const v = asF32(randArray(7, 61));
    const m = mat([], 7, 5, 62);
    const V = t32(v, [7]);
    const Mt = t32(m.data, [7, 5]);
    const r1 = matmul(V, Mt);
    expect(r1.shape).toEqual([5]);
    expectClose(await read(r1), refMatmul({ data: v, batch: [], rows: 1, cols: 7 }, m, null, 'none').data, tol(7));
    const m2 = mat([], 5, 7, 63);
    const M2 = t32(m2.data, [5, 7]);
    const r2 = matmul(M2, V);
    expect(r2.shape).toEqual([5]);
    expectClose(await read(r2), refMatmul(m2, { data: v, batch: [], rows: 7, cols: 1 }, null, 'none').data, tol(7));
    const r3 = matmul(V, V);
    expect(r3.shape).toEqual([]);
    expectClose(await read(r3), [v.reduce((s, x) => s + x * x, 0)], tol(7));
    const bm = mat([3], 4, 7, 64);
    const BM = t32(bm.data, [3, 4, 7]);
    const r4 = matmul(BM, V);
    expect(r4.shape).toEqual([3, 4]);
    expectClose(await read(r4), refMatmul(bm, { data: v, batch: [], rows: 7, cols: 1 }, null, 'none').data, tol(7));
    for (const t of [V, Mt, M2, BM, r1, r2, r3, r4]) t.dispose();
  });

  it('a transposed view maps to the TRANS flag (same result as transB)', async () => {
    const a = mat([2], 5, 9, 71);
    const w = mat([], 6, 9, 72); // [out, in]
    const A = t32(a.data, [2, 5, 9]);
    const W = t32(w.data, [6, 9]);
    const Wt = transpose(W); // [9, 6] view, strides [1, 9]
    const want = refMatmul(a, { data: transposeData(w), batch: [], rows: 9, cols: 6 }, null, 'none');
    const c1 = matmul(A, Wt);
    const c2 = matmul(A, W, { transB: true });
    const c3 = linear(A, W);
    for (const c of [c1, c2, c3]) {
      expect(c.shape).toEqual([2, 5, 6]);
      expectClose(await read(c), want.data, tol(9));
    }
    for (const t of [A, W, Wt, c1, c2, c3]) t.dispose();
  });

  it('a non-contiguous operand that is no transpose goes through a copy', async () => {
    const big = mat([], 8, 12, 81);
    const B0 = t32(big.data, [8, 12]);
    // every other column: strides [12, 2]
    const sub = B0.view([8, 6], [12, 2], 1);
    const subData = new Float64Array(48);
    for (let i = 0; i < 8; i++) for (let j = 0; j < 6; j++) subData[i * 6 + j] = big.data[i * 12 + 2 * j + 1];
    const a = mat([], 3, 8, 82);
    const A = t32(a.data, [3, 8]);
    const C = matmul(A, sub);
    expectClose(await read(C), refMatmul(a, { data: subData, batch: [], rows: 8, cols: 6 }, null, 'none').data, tol(8));
    for (const t of [B0, sub, A, C]) t.dispose();
  });

  it('bad inputs: clear errors naming the shapes, before any kernel runs', () => {
    const A = t32(randArray(6, 1), [2, 3]);
    const B = t32(randArray(8, 2), [4, 2]);
    expect(() => matmul(A, B)).toThrow(OpError);
    expect(() => matmul(A, B)).toThrow(/matmul: inner dimensions differ: \[2, 3\] @ \[4, 2\]/);
    const V = t32(randArray(4, 3), [4]);
    expect(() => matmul(A, V)).toThrow(/\[2, 3\] @ \[4\]/);
    const X = t32(randArray(12, 4), [2, 2, 3]);
    const Y = t32(randArray(18, 5), [3, 3, 2]);
    expect(() => matmul(X, Y)).toThrow(/batch dimensions of \[2, 2, 3\] and \[3, 3, 2\] cannot be broadcast/);
    const W = t32(randArray(6, 6), [3, 2]);
    const bias = t32(randArray(3, 7), [3]);
    expect(() => matmul(A, W, { bias })).toThrow(/bias of shape \[3\] does not match/);
    expect(() => linear(A, B)).toThrow(/linear: input \[2, 3\] does not end in in_features = 2/);
    expect(() => matmul(A, W, { activation: 'swish' as Activation })).toThrow(/unknown activation "swish"/);
    // beyond the adapter's storage binding limit: refused with the sizes, nothing allocated
    const lim = runtime().device.limits.maxStorageBufferBindingSize;
    const rows = Math.floor(lim / 4 / 2) + 1; // [rows, 2] x [2, 2] gives a result of [rows, 2]
    const tall = empty([rows, 1]);
    const wide = t32(randArray(2, 9), [1, 2]);
    expect(() => matmul(tall, wide)).toThrow(/the result of \[\d+, 2\] needs \d+ MiB in one binding/);
    for (const t of [tall, wide]) t.dispose();
    const D = t32(randArray(6, 8), [3, 2]);
    D.dispose();
    expect(() => matmul(A, D)).toThrow(/used after dispose/);
    for (const t of [A, B, V, X, Y, W, bias]) t.dispose();
  });
});

// ------------------------------------------------------------------------------ gradients

/** Loss L = sum(w * f(...)) so every output element matters; returns L's float64 value. */
function lossRef(out: Mat, w: Float64Array): number {
  return dot(out.data, w);
}

describe('matmul backward', () => {
  async function checkGrads(opts: { tA: boolean; tB: boolean; act: Activation; bias: boolean; aBatch: number[]; bBatch: number[]; dims?: [number, number, number] }) {
    const { tA, tB, act } = opts;
    const [M, N, K] = opts.dims ?? [5, 6, 7];
    const a = mat(opts.aBatch, M, K, 91);
    const b = mat(opts.bBatch, K, N, 92);
    const bias = opts.bias ? asF32(randArray(N, 93)) : null;
    const outShape = refMatmul(a, b, bias, act);
    const w = asF32(randArray(outShape.data.length, 94));
    // float64 reference gradients by finite differences of the reference (checked against the
    // analytic reference below), then the GPU gradients against them
    const fA = (x: Float64Array) => lossRef(refMatmul({ ...a, data: x }, b, bias, act), w);
    const fB = (x: Float64Array) => lossRef(refMatmul(a, { ...b, data: x }, bias, act), w);
    const gA = finiteDiff(fA, a.data);
    const gB = finiteDiff(fB, b.data);
    const gBias = bias ? finiteDiff((x) => lossRef(refMatmul(a, b, x, act), w), bias) : null;
    // analytic reference: dZ = w * act'(z); dA = dZ @ B^T, dB = A^T @ dZ (summed over broadcasts)
    const z = refMatmul(a, b, bias, 'none');
    const dz = z.data.map((zv, i) => w[i] * (finiteDiff((x) => actRef(x[0], act), Float64Array.of(zv))[0]));
    const analyticA = new Float64Array(a.data.length);
    const analyticB = new Float64Array(b.data.length);
    const nb = z.batch.reduce((x, y) => x * y, 1);
    const flat = (m: Mat, zi: number) => (m.batch.length === 0 || m.batch.every((d) => d === 1) ? 0 : zi % m.batch.reduce((x, y) => x * y, 1));
    for (let zi = 0; zi < nb; zi++) {
      const ao = flat(a, zi) * M * K, bo = flat(b, zi) * K * N, co = zi * M * N;
      for (let i = 0; i < M; i++) for (let j = 0; j < N; j++) for (let k = 0; k < K; k++) {
        analyticA[ao + i * K + k] += dz[co + i * N + j] * b.data[bo + k * N + j];
        analyticB[bo + k * N + j] += dz[co + i * N + j] * a.data[ao + i * K + k];
      }
    }
    expectClose(gA, analyticA, { atol: 1e-5, rtol: 1e-4, what: 'reference dA vs finite differences' });
    expectClose(gB, analyticB, { atol: 1e-5, rtol: 1e-4, what: 'reference dB vs finite differences' });

    const A = t32(tA ? transposeData(a) : a.data, [...a.batch, ...(tA ? [K, M] : [M, K])], true);
    const B = t32(tB ? transposeData(b) : b.data, [...b.batch, ...(tB ? [N, K] : [K, N])], true);
    const Bi = bias ? t32(bias, [N], true) : undefined;
    const W = t32(w, outShape.batch.length ? [...outShape.batch, M, N] : [M, N]);
    const out = matmul(A, B, { transA: tA, transB: tB, bias: Bi, activation: act });
    const L = sum(mul(out, W));
    backward(L);
    const ga = await read(A.grad!);
    const gb = await read(B.grad!);
    expectClose(ga, tA ? transposeData({ ...a, data: gA }) : gA, { atol: 1e-4, rtol: 1e-3, what: `dA ${JSON.stringify(opts)}` });
    expectClose(gb, tB ? transposeData({ ...b, data: gB }) : gB, { atol: 1e-4, rtol: 1e-3, what: `dB ${JSON.stringify(opts)}` });
    if (Bi) expectClose(await read(Bi.grad!), gBias!, { atol: 1e-4, rtol: 1e-3, what: 'dbias' });
    for (const t of [A, B, W, out, L] as Tensor[]) t.dispose();
    A.grad?.dispose();
    B.grad?.dispose();
    Bi?.grad?.dispose();
    Bi?.dispose();
  }

  it('2-D, all four transpose combinations', async () => {
    for (const tA of [false, true]) for (const tB of [false, true]) await checkGrads({ tA, tB, act: 'none', bias: false, aBatch: [], bBatch: [] });
  });

  it('bias and each activation (pre-activation saved, act\'(z) in the backward)', async () => {
    for (const act of ['relu', 'gelu', 'gelu_tanh', 'leaky_relu', 'tanh', 'sigmoid'] as Activation[]) {
      await checkGrads({ tA: false, tB: true, act, bias: true, aBatch: [], bBatch: [] });
    }
  });

  it('batched with a broadcast (2-D) weight: folded path, and a broadcast batch of one', async () => {
    await checkGrads({ tA: false, tB: true, act: 'none', bias: true, aBatch: [3], bBatch: [] });
    await checkGrads({ tA: true, tB: false, act: 'relu', bias: false, aBatch: [2], bBatch: [1] });
    await checkGrads({ tA: false, tB: false, act: 'none', bias: false, aBatch: [1], bBatch: [2] });
  });

  it('1-D operand gradients and linear()', async () => {
    const x = asF32(randArray(6, 101));
    const wt = mat([], 4, 6, 102);
    const bias = asF32(randArray(4, 103));
    const X = t32(x, [6], true);
    const Wt = t32(wt.data, [4, 6], true);
    const Bi = t32(bias, [4], true);
    const y = linear(X, Wt, Bi, 'tanh');
    expect(y.shape).toEqual([4]);
    backward(sum(y));
    // d/dx sum(tanh(W x + b)) = W^T (1 - y^2); d/dW = (1 - y^2) x^T; d/db = 1 - y^2
    const yr = Array.from({ length: 4 }, (_, o) => Math.tanh(x.reduce((s, xi, i) => s + xi * wt.data[o * 6 + i], 0) + bias[o]));
    const d = yr.map((v) => 1 - v * v);
    expectClose(await read(X.grad!), Array.from({ length: 6 }, (_, i) => d.reduce((s, di, o) => s + di * wt.data[o * 6 + i], 0)), { atol: 1e-5 });
    expectClose(await read(Wt.grad!), Array.from({ length: 24 }, (_, k) => d[Math.floor(k / 6)] * x[k % 6]), { atol: 1e-5 });
    expectClose(await read(Bi.grad!), d, { atol: 1e-5 });
    for (const t of [X, Wt, Bi, y, X.grad!, Wt.grad!, Bi.grad!]) t.dispose();
  });

  it('through skinny (the pick for M <= 8): M = 1 and 3, every transpose, bias and activations, batched', async () => {
    // the forward (M rows), dA = dC @ op(B)ᵀ (M rows) and, with M x K small, dB's products all
    // have M or K <= 8 rows here: the picked kernel is skinny for them
    expect(planMatmul(1, 6, 7, 1, false).kind).toBe('skinny');
    expect(planMatmul(3, 7, 5, 1, false).kind).toBe('skinny');
    for (const tA of [false, true]) for (const tB of [false, true]) await checkGrads({ tA, tB, act: 'none', bias: false, aBatch: [], bBatch: [], dims: [1, 6, 7] });
    await checkGrads({ tA: false, tB: true, act: 'tanh', bias: true, aBatch: [], bBatch: [], dims: [3, 7, 5] });
    await checkGrads({ tA: false, tB: true, act: 'gelu', bias: true, aBatch: [2], bBatch: [], dims: [1, 5, 3] });
    await checkGrads({ tA: false, tB: false, act: 'sigmoid', bias: false, aBatch: [2], bBatch: [1], dims: [3, 5, 6] });
  });

  it('without a gradient the activation stays fused (no extra pass, nothing saved)', async () => {
    const a = mat([], 3, 4, 111);
    const b = mat([], 4, 5, 112);
    const A = t32(a.data, [3, 4], true);
    const B = t32(b.data, [4, 5]);
    const y = noGrad(() => matmul(A, B, { activation: 'gelu' }));
    expect(y.gradFn).toBeNull();
    expectClose(await read(y), refMatmul(a, b, null, 'gelu').data, tol(4));
    for (const t of [A, B, y]) t.dispose();
  });
});
