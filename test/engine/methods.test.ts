import { describe, it, expect, beforeAll } from 'vitest';
import { engine, t32, read } from '../helpers/gpu.ts';
import { randArray, asF32, expectClose, finiteDiff } from '../helpers/reference.ts';
import { Tensor, tensor } from '../../src/engine/index.ts';

beforeAll(async () => {
  await engine();
});

describe('Tensor methods', () => {
  it('are installed by importing the API', () => {
    for (const m of ['add', 'mul', 'relu', 'gelu', 'sum', 'mean', 'reshape', 'permute', 'transpose', 'slice', 'pad', 'backward', 'where']) {
      expect(typeof (Tensor.prototype as unknown as Record<string, unknown>)[m], m).toBe('function');
    }
  });

  it('a chain x.mul(2).add(y).tanh().mul(w).sum() and backward() match float64 and finite differences', async () => {
    const R = 5;
    const C = 7;
    const x = asF32(randArray(R * C, 1, -1.5, 1.5));
    const y = asF32(randArray(C, 2));
    const w = asF32(randArray(R * C, 3));
    const f = (xx: Float64Array, yy: Float64Array) => {
      let s = 0;
      for (let i = 0; i < R; i++) for (let j = 0; j < C; j++) s += Math.tanh(2 * xx[i * C + j] + yy[j]) * w[i * C + j];
      return s;
    };
    const gx = new Float64Array(R * C);
    const gy = new Float64Array(C);
    for (let i = 0; i < R; i++) {
      for (let j = 0; j < C; j++) {
        const t = Math.tanh(2 * x[i * C + j] + y[j]);
        const d = (1 - t * t) * w[i * C + j];
        gx[i * C + j] = 2 * d;
        gy[j] += d;
      }
    }
    expectClose(gx, finiteDiff((xx) => f(xx, y), x), { atol: 1e-6 });
    expectClose(gy, finiteDiff((yy) => f(x, yy), y), { atol: 1e-6 });

    const xt = t32(x, [R, C], true);
    const yt = t32(y, [C], true);
    const loss = xt.mul(2).add(yt).tanh().mul(t32(w, [R, C])).sum();
    expect(loss.shape).toEqual([]);
    expectClose([await loss.item()], [f(x, y)], { atol: 1e-5, rtol: 1e-5 });
    loss.backward();
    expectClose(await read(xt.grad!), gx, { atol: 2e-6, rtol: 1e-5 });
    expectClose(await read(yt.grad!), gy, { atol: 2e-6, rtol: 1e-5 });
  });

  it('movement and shape methods: reshape/permute with arrays or arguments, transpose, slice, pad, squeeze', async () => {
    const v = Array.from({ length: 24 }, (_, i) => i + 0.5);
    const x = t32(v, [2, 3, 4]);
    const a = x.reshape(4, -1);
    const b = x.reshape([4, 6]);
    expect(a.shape).toEqual([4, 6]);
    expect(Array.from(await read(a))).toEqual(Array.from(await read(b)));
    const p = x.permute(2, 0, 1);
    expect(p.shape).toEqual([4, 2, 3]);
    // element [k, i, j] of the permutation is x[i, j, k]
    const pv = await read(p.contiguous());
    expect(pv[(3 * 2 + 1) * 3 + 2]).toBe(v[(1 * 3 + 2) * 4 + 3]);
    expect(Array.from(await read(x.permute([2, 0, 1])))).toEqual(Array.from(pv));
    expect(x.transpose(0, 2).shape).toEqual([4, 3, 2]);
    const s = x.slice([1, 0, 1], [2, 3, 4], [1, 2, 2]);
    expect(s.shape).toEqual([1, 2, 2]);
    expect(Array.from(await read(s))).toEqual([v[13], v[15], v[21], v[23]]);
    expect(Array.from(await read(s.squeeze(0).flatten()))).toEqual([v[13], v[15], v[21], v[23]]);
    expect(Array.from(await read(t32([1, 2], [2]).pad([1, 2], 9)))).toEqual([9, 1, 2, 9, 9]);
    expect(x.select(1, -1).shape).toEqual([2, 4]);
    expect(x.unsqueeze(1).shape).toEqual([2, 1, 3, 4]);
    expect(x.chunk(2, 2).map((c) => c.shape)).toEqual([[2, 3, 2], [2, 3, 2]]);
    expect(x.broadcastTo([5, 2, 3, 4]).shape).toEqual([5, 2, 3, 4]);
  });

  it('comparisons, where, pow, clamp, reductions and detach', async () => {
    const x = t32([-2, -0.5, 0.25, 3], [4], true);
    expect(Array.from(await read(x.gt(0)))).toEqual([0, 0, 1, 1]);
    expect(Array.from(await read(x.le(0.25)))).toEqual([1, 1, 1, 0]);
    const y = x.where(x.gt(0), 0);
    expect(Array.from(await read(y))).toEqual([0, 0, 0.25, 3]);
    expectClose(await read(x.pow(2)), [4, 0.25, 0.0625, 9]);
    expectClose(await read(x.clamp(-1, 1)), [-1, -0.5, 0.25, 1]);
    expectClose([await x.abs().mean().item()], [(2 + 0.5 + 0.25 + 3) / 4]);
    expectClose([await x.max().item()], [3]);
    expect(Array.from(await x.argmax().data())).toEqual([3]);
    // d/dx mean(x^2) = x / 2
    x.pow(2).mean().backward();
    expectClose(await read(x.grad!), [-1, -0.25, 0.125, 1.5]);
    const d = x.detach();
    expect(d.requiresGrad).toBe(false);
    expect(Array.from(await read(d))).toEqual(Array.from(await read(x)));
    expect(Array.from(await tensor(new Int32Array([3, 1]), [2]).eq(3).data())).toEqual([1, 0]);
  });

  it('report op errors under the op name', () => {
    const x = t32([1, 2, 3], [3]);
    expect(() => x.reshape(2, 2)).toThrow(/reshape: cannot reshape \[3\]/);
    expect(() => x.add(t32([1, 2], [2]))).toThrow(/add: shapes \[3\] and \[2\] cannot be broadcast/);
    expect(() => x.backward()).toThrow(/backward: .*does not require a gradient/);
  });
});
