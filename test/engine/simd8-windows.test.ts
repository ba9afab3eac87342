/**
 * The SIMD-8 product over several uniform windows per dispatch (src/engine/simd8/matmul.ts
 * `windowGroups`, kernels/simd8/matmul.wgsl `product_windows`): how a call's (batch entry, window,
 * K chunk) triples split into dispatches (pure), and products against a float64 reference with
 * poisoned outputs where the split has corners: K over more chunks than one dispatch binds (a
 * later dispatch adds to C), several batch entries in one dispatch, a last window short of rows,
 * unit counts that are not a multiple of the units per dispatch, and the one-window `product`.
 */
import { describe, it, expect, beforeAll, afterEach } from 'vitest';
import { engine, t32, read } from '../helpers/gpu.ts';
import { asF32, expectClose, randArray } from '../helpers/reference.ts';
import { matmulRaw, runtime, type Activation } from '../../src/engine/index.ts';
import { planSimd8, windowGroups } from '../../src/engine/simd8/matmul.ts';
import { simd8Product } from '../../src/engine/tuning.ts';
import { caps } from '../../src/engine/ops/launch.ts';

describe('windowGroups (pure)', () => {
  it('takes the fewest dispatches, then the most chunks per unit', () => {
    // a WRN-40-2 weight gradient at batch 128: 2 windows x 43 chunks, 86 dispatches one by one
    expect(windowGroups(2, 43, 11)).toEqual({ units: 1, chunks: 11, dispatches: 8 });
    // a forward: 8 windows x 2 chunks: both chunks in registers, 5 + 3 units
    expect(windowGroups(8, 2, 11)).toEqual({ units: 5, chunks: 2, dispatches: 2 });
    // batch entries of one window each, one chunk
    expect(windowGroups(128, 1, 11)).toEqual({ units: 11, chunks: 1, dispatches: 12 });
    // 14 chunks in 4 slots: 2 units x 2 chunks (7 dispatches) beats 1 x 4 (8)
    expect(windowGroups(2, 14, 4)).toEqual({ units: 2, chunks: 2, dispatches: 7 });
    expect(windowGroups(3, 5, 1)).toEqual({ units: 1, chunks: 1, dispatches: 15 });
  });

  it('never binds more windows than the slots', () => {
    for (let units = 1; units <= 30; units++) {
      for (let chunks = 1; chunks <= 30; chunks++) {
        for (const slots of [1, 2, 5, 11]) {
          const g = windowGroups(units, chunks, slots);
          expect(g.units * g.chunks).toBeLessThanOrEqual(slots);
          expect(g.dispatches).toBe(Math.ceil(units / g.units) * Math.ceil(chunks / g.chunks));
          expect(g.dispatches).toBeLessThanOrEqual(units * chunks);
        }
      }
    }
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

describe.skipIf(!(await engine().then(() => caps().simd8)))('simd8 product over several windows (needs subgroups of 8: lavapipe)', () => {
  beforeAll(async () => {
    await engine();
  });
  afterEach(() => {
    simd8Product.windowsPerDispatch = 11;
  });

  /** Product dispatches recorded while `f` runs. */
  function countProducts<T>(f: () => T): { result: T; products: number } {
    const dev = runtime().device;
    const orig = dev.dispatch;
    let products = 0;
    dev.dispatch = (k, ...rest) => {
      if (/:product(_windows)?$/.test(k.label)) products++;
      return orig.call(dev, k, ...rest);
    };
    try {
      return { result: f(), products };
    } finally {
      dev.dispatch = orig;
    }
  }

  // [batch, M, N, K, bias per row, activation]: M <= N, so U = A and rows = M
  const cases: [number, number, number, number, boolean, Activation][] = [
    [3, 37, 45, 2100, true, 'relu'], // 3 windows (16 + 16 + 5 rows) x 3 chunks per entry, 9 units
    [1, 23, 70, 13317, false, 'none'], // 14 chunks: more than one dispatch binds, later ones add
    [2, 200, 210, 300, true, 'none'], // 48-row windows, 5 per entry (the last 8 rows), 10 units
  ];

  for (const slots of [11, 4, 1]) {
    it(`matches the float64 reference with ${slots} window(s) per dispatch`, async () => {
      simd8Product.windowsPerDispatch = slots;
      for (const [batch, M, N, K, bias, act] of cases) {
        const plan = planSimd8(M, N, K, batch, caps())!;
        expect(plan.swap).toBe(false);
        const a = asF32(randArray(batch * M * K, M + K));
        const b = asF32(randArray(batch * K * N, N + 1));
        const bi = bias ? asF32(randArray(M, 3)) : null;
        const A = t32(a, [batch, M, K]);
        const B = t32(b, [batch, K, N]);
        const Bi = bi ? t32(bi, [M]) : null;
        const { result: C, products } = countProducts(() =>
          matmulRaw(A, B, { variant: 'simd8', bias: Bi ?? undefined, biasPerRow: true, activation: act }),
        );
        expect(products).toBe(windowGroups(batch * plan.windows, plan.chunks, slots).dispatches);
        const want = new Float64Array(batch * M * N);
        for (let z = 0; z < batch; z++) {
          want.set(ref(a.subarray(z * M * K, (z + 1) * M * K), b.subarray(z * K * N, (z + 1) * K * N), M, N, K, bi, act), z * M * N);
        }
        expectClose(await read(C), want, { atol: 3e-5 * Math.sqrt(K / 100), rtol: 1e-4, what: `${batch}x${M}x${N}x${K}, ${slots} slots` });
        for (const t of [A, B, Bi, C]) t?.dispose();
      }
    });
  }

  it('swapped layout (U = Bᵀ) over batch entries in one dispatch', async () => {
    const [batch, M, N, K] = [5, 70, 13, 45];
    const plan = planSimd8(M, N, K, batch, caps())!;
    expect(plan).toMatchObject({ swap: true, windows: 1 });
    const a = asF32(randArray(batch * M * K, 21));
    const b = asF32(randArray(batch * K * N, 22));
    const A = t32(a, [batch, M, K]);
    const B = t32(b, [batch, K, N]);
    const { result: C, products } = countProducts(() => matmulRaw(A, B, { variant: 'simd8' }));
    expect(products).toBe(1);
    const want = new Float64Array(batch * M * N);
    for (let z = 0; z < batch; z++) want.set(ref(a.subarray(z * M * K, (z + 1) * M * K), b.subarray(z * K * N, (z + 1) * K * N), M, N, K, null, 'none'), z * M * N);
    expectClose(await read(C), want, { atol: 2e-5, rtol: 1e-5, what: 'swapped' });
    for (const t of [A, B, C]) t.dispose();
  });
});
