/**
 * Kernel profiles (timestamp queries per dispatch): every dispatch is counted under its kernel's
 * label, the times are positive and ordered, results are unchanged, and a stream of more
 * dispatches than one query set holds is split across submissions.
 */
import { describe, it, expect, beforeAll } from 'vitest';
import { Device, KernelLoader, matmul, add, type Runtime } from '../../src/engine/index.ts';
import { engine, t32, read } from '../helpers/gpu.ts';

let rt: Runtime;
beforeAll(async () => {
  rt = await engine();
});

function rand(n: number, seed: number): Float64Array {
  const a = new Float64Array(n);
  let s = seed;
  for (let i = 0; i < n; i++) {
    s = (s * 1103515245 + 12345) % 2147483648;
    a[i] = s / 2147483648 - 0.5;
  }
  return a;
}

describe('kernel profile', () => {
  it('times every dispatch under its kernel label, results unchanged', async () => {
    const dev = rt.device;
    if (!dev.features.has('timestamp-query')) {
      expect(() => dev.startKernelProfile()).toThrow(/timestamp-query/);
      return;
    }
    const [m, k, n] = [67, 129, 45];
    const av = rand(m * k, 1);
    const bv = rand(k * n, 2);
    const a = t32(av, [m, k]);
    const b = t32(bv, [k, n]);
    const small = t32([1, 2, 3], [3]);
    await dev.sync();
    const d0 = dev.stats.dispatches;
    dev.startKernelProfile();
    const c = matmul(a, b);
    const s1 = add(small, small);
    const s2 = add(s1, small);
    const times = await dev.stopKernelProfile();
    const dispatched = dev.stats.dispatches - d0;
    expect(times.reduce((sum, t) => sum + t.count, 0)).toBe(dispatched);
    const addTime = times.find((t) => /elementwise\.wgsl:/.test(t.label));
    expect(addTime?.count).toBe(2);
    for (const t of times) {
      expect(t.ms).toBeGreaterThanOrEqual(0);
      expect(Number.isFinite(t.ms)).toBe(true);
    }
    for (let i = 1; i < times.length; i++) expect(times[i - 1].ms).toBeGreaterThanOrEqual(times[i].ms);
    expect(times.some((t) => t.ms > 0)).toBe(true);
    // the profiled product is still the product (float64 reference)
    const got = await read(c);
    for (let i = 0; i < m; i += 13) {
      for (let j = 0; j < n; j += 7) {
        let want = 0;
        for (let p = 0; p < k; p++) want += Math.fround(av[i * k + p]) * Math.fround(bv[p * n + j]);
        expect(Math.abs(got[i * n + j] - want)).toBeLessThan(1e-4);
      }
    }
    expect(Array.from(await read(s2))).toEqual([3, 6, 9]);
    // a second profile starts from zero; stopping without one is an error
    dev.startKernelProfile();
    add(small, small);
    expect((await dev.stopKernelProfile()).map((t) => t.count)).toEqual([1]);
    await expect(dev.stopKernelProfile()).rejects.toThrow(/no kernel profile is running/);
  });

  it('splits a stream of more dispatches than one query set holds', async () => {
    if (!rt.device.features.has('timestamp-query')) return;
    // a device of its own that never submits on its own count, so the query set fills first
    const dev = await Device.create({ dispatchesPerSubmit: 1 << 20 });
    try {
      const kernels = new KernelLoader(dev);
      const k = kernels.get('fill', 'fill', { defines: { T: 'f32' } });
      const buf = dev.pool.acquire(4 * 64);
      dev.startKernelProfile();
      const params = new Uint32Array(4);
      params[0] = 64;
      for (let i = 0; i < 2100; i++) dev.dispatch(k, [buf], params, [1]);
      const times = await dev.stopKernelProfile();
      expect(times).toHaveLength(1);
      expect(times[0].count).toBe(2100);
      expect(dev.stats.submits).toBeGreaterThanOrEqual(2);
    } finally {
      dev.destroy();
    }
  });
});
