/**
 * The SIMD-8 product with U in panes (src/engine/simd8/matmul.ts, kernels/simd8/matmul.wgsl
 * `pack_u` / `product`): one product dispatch per call whatever K and the batch, against a float64
 * reference with poisoned outputs where the layout has corners: K over several chunks and over
 * two texture layers (nKt = 2), a last block short of rows, several batch entries, the swapped
 * layout, and short panes stacked down a texture layer over several layers.
 */
import { describe, it, expect, beforeAll } from 'vitest';
import { engine, t32, read } from '../helpers/gpu.ts';
import { asF32, expectClose, randArray } from '../helpers/reference.ts';
import { matmulRaw, runtime, type Activation } from '../../src/engine/index.ts';
import { planSimd8 } from '../../src/engine/simd8/matmul.ts';
import { caps } from '../../src/engine/ops/launch.ts';

const LAVAPIPE = { maxTextureDimension2D: 16384, maxTextureArrayLayers: 2048 };

describe('planSimd8 panes (pure)', () => {
  it('stacks short panes down a layer and counts two layers per layer of panes', () => {
    // 64 blocks of 16 rows, K = 1024: 256 texel rows a pane, 64 panes fill one layer pair
    expect(planSimd8(1024, 1024, 1024, 1, LAVAPIPE)).toMatchObject({ uh: 256, uPer: 64, uRows: 16384, uLayers: 2 });
    // attention scores, 128 entries x 16 blocks, K = 64: 2048 panes of 16 rows, 1024 a layer
    expect(planSimd8(256, 256, 64, 128, LAVAPIPE)).toMatchObject({ uh: 16, uPer: 1024, uRows: 16384, uLayers: 4 });
    // a WRN weight gradient's group: K = 44032 over 3 texture layers, 2 blocks
    expect(planSimd8(32, 288, 44032, 1, LAVAPIPE, false)).toMatchObject({ kh: 16384, nKt: 3, uh: 4096, uPer: 4, uLayers: 4 });
  });

  it('refuses what the layers cannot hold', () => {
    // rows fixed as U (no swap): 256 blocks x batch, panes of 4096 texel rows, 4 a layer pair
    expect(planSimd8(4096, 32, 16384, 16, LAVAPIPE, false)).toMatchObject({ uPer: 4, uLayers: 2048, layers: 16 });
    expect(planSimd8(4096, 32, 16384, 17, LAVAPIPE, false)).toBeNull(); // 2176 layers of panes
    expect(planSimd8(17, 1024, 16, 65, LAVAPIPE)).toBeNull(); // T: 65 x 32 panels > 2048 layers
  });
});

function ref(a: Float64Array, b: Float64Array, M: number, N: number, K: number, bias: Float64Array | null, act: Activation): Float64Array {
  const c = new Float64Array(M * N);
  for (let i = 0; i < M; i++) {
    for (let j = 0; j < N; j++) {
      let s = bias ? bias[i] : 0;
      for (let k = 0; k < K; k++) s += a[i * K + k] * b[k * N + j];
      c[i * N + j] = act === 'relu' ? Math.max(s, 0) : s;
    }
  }
  return c;
}

describe.skipIf(!(await engine().then(() => caps().simd8)))('simd8 product with U in panes (needs subgroups of 8: lavapipe)', () => {
  beforeAll(async () => {
    await engine();
  });

  /** Product and pack dispatches recorded while `f` runs. */
  function countDispatches<T>(f: () => T): { result: T; products: number; packs: number } {
    const dev = runtime().device;
    const orig = dev.dispatch;
    let products = 0;
    let packs = 0;
    dev.dispatch = (k, ...rest) => {
      if (k.label === 'simd8/matmul.wgsl:product') products++;
      if (/simd8\/matmul\.wgsl:pack_[ut]$/.test(k.label)) packs++;
      return orig.call(dev, k, ...rest);
    };
    try {
      const result = f();
      return { result, products, packs };
    } finally {
      dev.dispatch = orig;
    }
  }

  // [batch, M, N, K, bias per row, activation]: M <= N, so U = A and rows = M
  const cases: [number, number, number, number, boolean, Activation][] = [
    [3, 37, 45, 2100, true, 'relu'], // 3 blocks (the last of 5 rows) x 3 chunks per entry
    [1, 23, 70, 20011, false, 'none'], // 20 chunks over two texture layers (nKt = 2)
    [2, 200, 210, 300, true, 'none'], // 13 blocks per entry, the last 8 rows
    [300, 40, 48, 203, false, 'relu'], // 900 short panes: 3 layer pairs of up to 322 stacked panes
  ];

  for (const [batch, M, N, K, bias, act] of cases) {
    it(`${batch}x[${M}x${K}]@[${K}x${N}] in one product dispatch matches float64`, async () => {
      const plan = planSimd8(M, N, K, batch, caps())!;
      expect(plan.swap).toBe(false);
      const a = asF32(randArray(batch * M * K, M + K));
      const b = asF32(randArray(batch * K * N, N + 1));
      const bi = bias ? asF32(randArray(M, 3)) : null;
      const A = t32(a, [batch, M, K]);
      const B = t32(b, [batch, K, N]);
      const Bi = bi ? t32(bi, [M]) : null;
      const { result: C, products, packs } = countDispatches(() =>
        matmulRaw(A, B, { variant: 'simd8', bias: Bi ?? undefined, biasPerRow: true, activation: act }),
      );
      expect([products, packs]).toEqual([1, 2]);
      const want = new Float64Array(batch * M * N);
      for (let z = 0; z < batch; z++) {
        want.set(ref(a.subarray(z * M * K, (z + 1) * M * K), b.subarray(z * K * N, (z + 1) * K * N), M, N, K, bi, act), z * M * N);
      }
      expectClose(await read(C), want, { atol: 3e-5 * Math.sqrt(K / 100), rtol: 1e-4, what: `${batch}x${M}x${N}x${K}` });
      for (const t of [A, B, Bi, C]) t?.dispose();
    });
  }

  it('swapped layout (U = Bᵀ) over batch entries in one dispatch', async () => {
    const [batch, M, N, K] = [5, 70, 13, 45];
    expect(planSimd8(M, N, K, batch, caps())).toMatchObject({ swap: true });
    const a = asF32(randArray(batch * M * K, 21));
    const b = asF32(randArray(batch * K * N, 22));
    const A = t32(a, [batch, M, K]);
    const B = t32(b, [batch, K, N]);
    const { result: C, products } = countDispatches(() => matmulRaw(A, B, { variant: 'simd8' }));
    expect(products).toBe(1);
    const want = new Float64Array(batch * M * N);
    for (let z = 0; z < batch; z++) want.set(ref(a.subarray(z * M * K, (z + 1) * M * K), b.subarray(z * K * N, (z + 1) * K * N), M, N, K, null, 'none'), z * M * N);
    expectClose(await read(C), want, { atol: 2e-5, rtol: 1e-5, what: 'swapped' });
    for (const t of [A, B, C]) t.dispose();
  });
});
