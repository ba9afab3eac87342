/**
 * matmul's simd8 (SIMD-8, src/engine/simd8/matmul.ts): the plan (pure) and the product against a
 * float64 reference where the plan's corners are: K over several chunks (later chunks add to C,
 * the epilogue runs once), K over several texture layers, the swapped layout (U = Bᵀ) with each
 * bias kind, batches with broadcast strides, the fallback when the panels exceed the texture's
 * layers, and the accumulating epilogue (C += act(A @ B + bias)) on each store path. The every-shape / every-transpose sweep is in matmul.test.ts (VARIANTS).
 */
import { describe, it, expect, beforeAll } from 'vitest';
import { engine, t32, read } from '../helpers/gpu.ts';
import { asF32, expectClose, randArray } from '../helpers/reference.ts';
import { matmulRaw, type Activation } from '../../src/engine/index.ts';
import { packSimd8, planSimd8, runSimd8 } from '../../src/engine/simd8/matmul.ts';
import { caps, subgroupDefines } from '../../src/engine/ops/launch.ts';

const LAVAPIPE = { maxTextureDimension2D: 16384, maxTextureArrayLayers: 2048 };

describe('planSimd8 (pure)', () => {
  it('puts the smaller dimension in the panes and sizes chunks and panels', () => {
    const sq = planSimd8(1024, 1024, 1024, 1, LAVAPIPE)!;
    expect(sq).toMatchObject({ swap: false, rows: 1024, cols: 1024, kc: 1024, chunks: 1, panels: 32, layers: 32, nKt: 1 });
    // a WRN forward im2col product: M = 32768 rows of patches, N = 64 channels -> swapped
    const fwd = planSimd8(32768, 64, 576, 1, LAVAPIPE)!;
    expect(fwd).toMatchObject({ swap: true, rows: 64, cols: 32768, kc: 576, chunks: 1, panels: 1024 });
    // K not a multiple of 4 is padded inside the chunk; long K is chunked
    expect(planSimd8(7, 9, 5, 1, LAVAPIPE)).toMatchObject({ kc: 8, chunks: 1 });
    expect(planSimd8(64, 576, 32768, 1, LAVAPIPE)).toMatchObject({ kc: 1024, chunks: 32, kh: 16384, nKt: 2, panels: 18, layers: 36 });
    // chunks of equal length: K = 1152 is 2 x 576, not 1024 + 128 (padded to 1024)
    expect(planSimd8(128, 8192, 1152, 1, LAVAPIPE)).toMatchObject({ kc: 576, chunks: 2 });
    // K = 16500: 17 chunks of 972, texture layers of 16 chunks (15552 rows)
    expect(planSimd8(3, 5, 16500, 1, LAVAPIPE)).toMatchObject({ kc: 972, chunks: 17, kh: 15552, nKt: 2 });
  });

  it('refuses what the texture cannot hold', () => {
    expect(planSimd8(17, 1024, 16, 65, LAVAPIPE)).toBeNull(); // 65 x 32 panels > 2048 layers
    expect(planSimd8(17, 1024, 16, 64, LAVAPIPE)).not.toBeNull();
  });
});

function ref(a: Float64Array, b: Float64Array, M: number, N: number, K: number, bias: Float64Array | null, perRow: boolean, act: Activation, alpha = 0.01): Float64Array {
  const c = new Float64Array(M * N);
  for (let i = 0; i < M; i++) {
    for (let j = 0; j < N; j++) {
      let s = 0;
      for (let k = 0; k < K; k++) s += a[i * K + k] * b[k * N + j];
      if (bias) s += perRow ? bias[i] : bias[j];
      c[i * N + j] = act === 'relu' ? Math.max(s, 0) : act === 'tanh' ? Math.tanh(s) : act === 'leaky_relu' ? (s >= 0 ? s : alpha * s) : s;
    }
  }
  return c;
}

function transpose(x: Float64Array, rows: number, cols: number): Float64Array {
  const t = new Float64Array(x.length);
  for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) t[j * rows + i] = x[i * cols + j];
  return t;
}

describe.skipIf(!(await engine().then(() => caps().simd8)))('simd8 products (needs subgroups of 8: lavapipe)', () => {
  beforeAll(async () => {
    await engine();
  });

  it('K over several chunks and texture layers, with bias and activation applied once, both layouts', async () => {
    // (M, N, K): 3 chunks of 1024 (swapped and not), and K > 16384: two texture layers per panel
    const cases: [number, number, number, boolean, Activation][] = [
      [19, 37, 2100, false, 'relu'],
      [37, 19, 2100, true, 'tanh'],
      [3, 5, 16500, false, 'none'],
    ];
    for (const [M, N, K, perRow, act] of cases) {
      const a = asF32(randArray(M * K, M + K));
      const b = asF32(randArray(K * N, N + K));
      const bias = asF32(randArray(perRow ? M : N, 7));
      const A = t32(a, [M, K]);
      const B = t32(b, [K, N]);
      const Bi = t32(bias, [bias.length]);
      const C = matmulRaw(A, B, { variant: 'simd8', bias: Bi, biasPerRow: perRow, activation: act });
      expectClose(await read(C), ref(a, b, M, N, K, bias, perRow, act), { atol: 3e-5 * Math.sqrt(K / 100), rtol: 1e-4, what: `${M}x${N}x${K} ${act}` });
      for (const t of [A, B, Bi, C]) t.dispose();
    }
  });

  it('interior tiles stored as whole vec4s: several chunks, each bias kind, batch offsets, edges beside them', async () => {
    // M <= N and N % 4 == 0: 16 x 32 tiles inside the product take the vec4 store, the ragged
    // last rows and columns the per-element loop
    const cases: [number, number, number, number, boolean, Activation][] = [
      [1, 40, 72, 2100, false, 'relu'],
      [3, 35, 68, 50, true, 'tanh'],
      [2, 16, 32, 9, false, 'none'],
    ];
    for (const [batch, M, N, K, perRow, act] of cases) {
      const a = asF32(randArray(batch * M * K, M + N));
      const b = asF32(randArray(batch * K * N, K + 3));
      const bias = asF32(randArray(perRow ? M : N, 5));
      const A = t32(a, [batch, M, K]);
      const B = t32(b, [batch, K, N]);
      const Bi = t32(bias, [bias.length]);
      const C = matmulRaw(A, B, { variant: 'simd8', bias: Bi, biasPerRow: perRow, activation: act });
      const want = new Float64Array(batch * M * N);
      for (let z = 0; z < batch; z++) want.set(ref(a.subarray(z * M * K, (z + 1) * M * K), b.subarray(z * K * N, (z + 1) * K * N), M, N, K, bias, perRow, act), z * M * N);
      expectClose(await read(C), want, { atol: 3e-5 * Math.sqrt(K / 100), rtol: 1e-4, what: `${batch}x${M}x${N}x${K}` });
      for (const t of [A, B, Bi, C]) t.dispose();
    }
  });

  it('swapped layout (M > N) with transposed operands, each bias kind and leaky ReLU slope', async () => {
    const [M, N, K] = [70, 13, 45];
    const a = asF32(randArray(M * K, 1));
    const b = asF32(randArray(K * N, 2));
    for (const perRow of [false, true]) {
      const bias = asF32(randArray(perRow ? M : N, 3));
      const A = t32(transpose(a, M, K), [K, M]);
      const B = t32(transpose(b, K, N), [N, K]);
      const Bi = t32(bias, [bias.length]);
      const C = matmulRaw(A, B, { transA: true, transB: true, variant: 'simd8', bias: Bi, biasPerRow: perRow, activation: 'leaky_relu', negativeSlope: 0.2 });
      expectClose(await read(C), ref(a, b, M, N, K, bias, perRow, 'leaky_relu', 0.2), { atol: 2e-5, rtol: 1e-5, what: `perRow ${perRow}` });
      for (const t of [A, B, Bi, C]) t.dispose();
    }
  });

  it('batched, broadcast batch strides, swapped and not', async () => {
    for (const [M, N] of [[9, 40], [40, 9]]) {
      const K = 33;
      const a = asF32(randArray(3 * M * K, M));
      const b = asF32(randArray(K * N, N));
      const A = t32(a, [3, M, K]);
      const B = t32(b, [1, K, N]); // one B for the three entries (batch stride 0)
      const C = matmulRaw(A, B, { variant: 'simd8' });
      expect(C.shape).toEqual([3, M, N]);
      const want = new Float64Array(3 * M * N);
      for (let z = 0; z < 3; z++) want.set(ref(a.subarray(z * M * K, (z + 1) * M * K), b, M, N, K, null, false, 'none'), z * M * N);
      expectClose(await read(C), want, { atol: 2e-5, rtol: 1e-5, what: `${M}x${N}` });
      for (const t of [A, B, C]) t.dispose();
    }
  });

  it('falls back to the tiled kernels when the panels exceed the texture layers', async () => {
    const [batch, M, N, K] = [65, 3, 1024, 4];
    expect(planSimd8(M, N, K, batch, LAVAPIPE)).toBeNull();
    const a = asF32(randArray(batch * M * K, 11));
    const b = asF32(randArray(batch * K * N, 12));
    const A = t32(a, [batch, M, K]);
    const B = t32(b, [batch, K, N]);
    const C = matmulRaw(A, B, { variant: 'simd8' });
    const got = await read(C);
    for (const z of [0, 64]) {
      const want = ref(a.subarray(z * M * K, (z + 1) * M * K), b.subarray(z * K * N, (z + 1) * K * N), M, N, K, null, false, 'none');
      expectClose(got.subarray(z * M * N, (z + 1) * M * N), want, { atol: 1e-5, rtol: 1e-5, what: `entry ${z}` });
    }
    for (const t of [A, B, C]) t.dispose();
  });
});

// The accumulating epilogue (runSimd8's `accumulate`, the kernel's ACCUMULATE override): C at an
// offset inside a larger buffer, starting from random values, becomes C + act(A @ B + bias) on
// every store path, vec4 stores of interior tiles and the element-wise tail, the swapped layout
// and colSplit layouts, batch entries, K not a multiple of 4 and over several chunks; the
// buffer's other elements hold a sentinel that must survive.
describe.skipIf(!(await engine().then(() => caps().simd8)))('simd8 accumulating epilogue (needs subgroups of 8: lavapipe)', () => {
  const SENTINEL = 12345.5;
  const CODES = { none: 0, relu: 1, leaky_relu: 2, tanh: 3 } as const;

  interface Case {
    what: string;
    batch: number;
    M: number;
    N: number;
    K: number;
    /** C's offset in its buffer (a multiple of 4 lets interior tiles take the vec4 store). */
    off: number;
    /** 0: C is [batch, M, N]; P > 0: C is [N / P, M, P] (batch 1, not swapped). */
    P: number;
    bias: 'none' | 'row' | 'col';
    act: keyof typeof CODES;
    swap: boolean;
  }
  const cases: Case[] = [
    { what: 'vec4 interior tiles and tails (35 rows, 68 columns, C 4-aligned)', batch: 1, M: 35, N: 68, K: 50, off: 8, P: 0, bias: 'none', act: 'none', swap: false },
    { what: 'element-wise stores only (C at offset 3)', batch: 1, M: 35, N: 68, K: 50, off: 3, P: 0, bias: 'col', act: 'relu', swap: false },
    { what: 'three batch entries, 19 x 37, K = 45, per-row bias', batch: 3, M: 19, N: 37, K: 45, off: 5, P: 0, bias: 'row', act: 'tanh', swap: false },
    { what: 'K = 2100 over three chunks', batch: 1, M: 21, N: 40, K: 2100, off: 4, P: 0, bias: 'none', act: 'none', swap: false },
    { what: 'swapped layout (U = Bᵀ), 70 x 13, leaky ReLU', batch: 2, M: 70, N: 13, K: 45, off: 6, P: 0, bias: 'row', act: 'leaky_relu', swap: true },
    { what: 'colSplit 12 (vec4 stores per image), per-row bias', batch: 1, M: 19, N: 36, K: 37, off: 8, P: 12, bias: 'row', act: 'none', swap: false },
    { what: 'colSplit 7 (element-wise), K = 2100', batch: 1, M: 21, N: 35, K: 2100, off: 1, P: 7, bias: 'none', act: 'relu', swap: false },
  ];

  for (const c of cases) {
    it(c.what, async () => {
      const { batch, M, N, K, off, P } = c;
      const plan = planSimd8(M, N, K, batch, caps(), c.swap)!;
      expect(plan.swap).toBe(c.swap);
      const a = asF32(randArray(batch * M * K, M + K));
      const b = asF32(randArray(batch * K * N, N + K));
      const bi = c.bias === 'none' ? null : asF32(randArray(c.bias === 'row' ? M : N, 9));
      const c0 = asF32(randArray(batch * M * N, 17));
      const pad = 7;
      const init = new Float64Array(off + c0.length + pad).fill(SENTINEL);
      init.set(c0, off);
      const A = t32(a, [batch, M, K]);
      const B = t32(b, [batch, K, N]);
      const Bi = bi ? t32(bi, [bi.length]) : null;
      const buf = t32(init, [init.length]);
      const C = buf.view([c0.length], [1], off);
      const call = {
        M, N, K, batch, bshape: [1, 1, 1, batch], bstA: [0, 0, 0, M * K], bstB: [0, 0, 0, K * N],
        bias: Bi, biasCode: c.bias === 'none' ? 0 : c.bias === 'row' ? 2 : 1, act: CODES[c.act], alpha: 0.2, defines: subgroupDefines(),
      };
      packSimd8(plan, { t: A, trans: false, ld: K }, { t: B, trans: false, ld: N }, call, (uTex, tex) => {
        runSimd8(plan, uTex, tex, C, { bias: Bi, biasCode: call.biasCode, act: call.act, alpha: 0.2, accumulate: true, colSplit: P, spare: A, defines: call.defines });
      });
      const want = Float64Array.from(c0);
      for (let z = 0; z < batch; z++) {
        const r = ref(a.subarray(z * M * K, (z + 1) * M * K), b.subarray(z * K * N, (z + 1) * K * N), M, N, K, bi, c.bias === 'row', c.act, 0.2);
        for (let i = 0; i < M; i++) {
          for (let j = 0; j < N; j++) {
            const at = P ? Math.floor(j / P) * M * P + i * P + (j % P) : z * M * N + i * N + j;
            want[at] += r[i * N + j];
          }
        }
      }
      const got = await read(buf);
      expectClose(got.subarray(off, off + c0.length), want, { atol: 3e-5 * Math.sqrt(K / 100), rtol: 1e-4, what: c.what });
      const outside = [...got.subarray(0, off), ...got.subarray(off + c0.length)];
      expect(outside).toEqual(new Array(off + pad).fill(SENTINEL));
      for (const t of [A, B, Bi, C, buf]) t?.dispose();
    });
  }
});
