/**
 * Tensor ownership and autograd mechanics: scopes, dispose, views, graph recording, gradient
 * accumulation, retainGrad, noGrad/detach, freeing of saved tensors, and the bad-input errors.
 */
import { describe, it, expect, beforeAll } from 'vitest';
import {
  tensor, add, mul, sub, div, sum, mean, reshape, transpose, permute, broadcastTo, contiguous,
  scope, keep, backward, noGrad, detach, memoryStats, runtime, OpError, maximum, minimum, compare, matmul,
} from '../../src/engine/index.ts';
import { engine, t32, read } from '../helpers/gpu.ts';
import { randArray, asF32, expectClose, finiteDiff, dot } from '../helpers/reference.ts';

beforeAll(async () => {
  await engine();
});

describe('ownership', () => {
  it('scope frees what it made, except what it returns', () => {
    const before = memoryStats();
    const kept = scope(() => {
      const a = tensor([1, 2, 3]);
      const b = add(a, a);
      mul(b, b);
      return b;
    });
    expect(kept.disposed).toBe(false);
    expect(memoryStats().tensors).toBe(before.tensors + 1);
    kept.dispose();
    expect(memoryStats()).toEqual(before);
  });

  it('returned tensors move to the enclosing scope; keep() exempts from every scope', () => {
    const before = memoryStats();
    let inner: ReturnType<typeof tensor> | null = null;
    let kept: ReturnType<typeof tensor> | null = null;
    scope(() => {
      inner = scope(() => tensor([1]));
      kept = keep(tensor([2]));
    });
    expect(inner!.disposed).toBe(true);
    expect(kept!.disposed).toBe(false);
    kept!.dispose();
    expect(memoryStats()).toEqual(before);
  });

  it('a scope that throws still frees its tensors', () => {
    const before = memoryStats();
    expect(() =>
      scope(() => {
        tensor([1, 2]);
        throw new Error('boom');
      }),
    ).toThrow('boom');
    expect(memoryStats()).toEqual(before);
  });

  it('views share storage: the buffer lives until the last view is disposed', async () => {
    const before = memoryStats();
    const a = tensor([1, 2, 3, 4, 5, 6], [2, 3]);
    const v = transpose(a);
    a.dispose();
    expect(Array.from(await v.data())).toEqual([1, 4, 2, 5, 3, 6]);
    v.dispose();
    expect(memoryStats()).toEqual(before);
  });

  it('using a disposed tensor is a clear error before any kernel runs', () => {
    const a = tensor([1, 2], [2]);
    a.name = 'weights';
    a.dispose();
    const dispatches = runtime().device.stats.dispatches;
    expect(() => add(a, 1)).toThrow(/add: tensor #\d+ \(weights\) of shape \[2\] was used after dispose\(\)/);
    expect(runtime().device.stats.dispatches).toBe(dispatches);
  });

  it('shape and dtype errors name the op and the shapes', () => {
    expect(() => add(tensor([1, 2, 3]), tensor([1, 2]))).toThrow(OpError);
    expect(() => add(tensor([1, 2, 3]), tensor([1, 2]))).toThrow(/add: shapes \[3\] and \[2\] cannot be broadcast/);
    expect(() => add(tensor([1]), tensor(Int32Array.from([1])))).toThrow(/add: dtype mismatch: f32 and i32/);
    expect(() => reshape(tensor([1, 2, 3]), [2, 2])).toThrow(/reshape: cannot reshape \[3\] \(3 elements\) into \[2, 2\]/);
    expect(() => tensor([1, 2, 3], [2, 2])).toThrow(/3 values do not fill shape \[2, 2\]/);
    expect(() => permute(tensor([1, 2], [1, 2]), [0, 0])).toThrow(/permute: \[0, 0\] is not a permutation/);
  });
});

describe('views', () => {
  it('reshape, transpose, permute, broadcastTo and contiguous', async () => {
    const x = tensor([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23], [2, 3, 4]);
    const p = permute(x, [2, 0, 1]);
    expect(p.shape).toEqual([4, 2, 3]);
    const ref: number[] = [];
    for (let k = 0; k < 4; k++) for (let i = 0; i < 2; i++) for (let j = 0; j < 3; j++) ref.push(i * 12 + j * 4 + k);
    expect(Array.from(await p.data())).toEqual(ref);
    const c = contiguous(p);
    expect(c.isContiguous).toBe(true);
    expect(Array.from(await reshape(c, [-1]).data())).toEqual(ref);
    expect(Array.from(await reshape(p, [4, 6]).data())).toEqual(ref);
    expect(Array.from(await broadcastTo(tensor([1, 2]), [3, 2]).data())).toEqual([1, 2, 1, 2, 1, 2]);
    expect(() => broadcastTo(tensor([1, 2]), [3, 3])).toThrow(/cannot broadcast shape \[2\] to \[3, 3\]/);
  });
});

describe('autograd', () => {
  it('matches finite differences through broadcasting, views and all binary ops', async () => {
    const [n, m] = [3, 5];
    const xa = asF32(randArray(n * m, 1, 0.5, 2));
    const ya = asF32(randArray(m, 2, 0.5, 2));
    const w = randArray(m * n, 3);
    // f(x, y) = sum(w * transpose((x * y - y) / (x + y), max(x, y) - min(x, 1)))
    const ref = (xv: Float64Array, yv: Float64Array): number => {
      const out = new Float64Array(m * n);
      for (let i = 0; i < n; i++) {
        for (let j = 0; j < m; j++) {
          const a = xv[i * m + j];
          const b = yv[j];
          const v = (a * b - b) / (a + b) + Math.max(a, b) - Math.min(a, 1);
          out[j * n + i] = v;
        }
      }
      return dot(out, w);
    };
    const x = t32(xa, [n, m], true);
    const y = t32(ya, [m], true);
    const wt = t32(w, [m, n]);
    const loss = scope(() => {
      const q = div(sub(mul(x, y), y), add(x, y));
      const r = sub(add(q, maximum(x, y)), minimum(x, 1));
      const l = sum(mul(contiguous(transpose(r)), wt));
      backward(l);
      return l;
    });
    expectClose(await read(loss), [ref(xa, ya)], { rtol: 1e-5 });
    const gx = finiteDiff((v) => ref(v, ya), xa);
    const gy = finiteDiff((v) => ref(xa, v), ya);
    expectClose(await read(x.grad!), gx, { atol: 1e-4, rtol: 1e-3, what: 'dx' });
    expectClose(await read(y.grad!), gy, { atol: 1e-4, rtol: 1e-3, what: 'dy' });
  });

  it('accumulates into leaves across backward calls and keeps intermediate grads on request', async () => {
    const x = t32([1, 2, 3], [3], true);
    for (let i = 0; i < 2; i++) {
      scope(() => backward(sum(mul(x, x))));
    }
    expect(Array.from(await x.grad!.data())).toEqual([4, 8, 12]);
    const mid = scope(() => {
      const h = mul(x, 3).retainGrad();
      backward(mean(mul(h, h)));
      return h;
    });
    // d mean(h^2)/dh = 2h/3 with h = 3x
    expectClose(await read(mid.grad!), [2, 4, 6], { what: 'retained grad' });
  });

  it('a value used twice gets the sum of both gradients', async () => {
    const x = t32([2, -1], [2], true);
    scope(() => backward(sum(add(mul(x, x), x))));
    expect(Array.from(await x.grad!.data())).toEqual([5, -1]);
  });

  it('noGrad and detach record nothing', () => {
    const x = t32([1, 2], [2], true);
    const y = noGrad(() => mul(x, x));
    expect(y.requiresGrad).toBe(false);
    expect(y.gradFn).toBeNull();
    const d = detach(x);
    expect(d.requiresGrad).toBe(false);
    expect(mul(d, 2).gradFn).toBeNull();
  });

  it('backward errors: non-scalar without a gradient, no grad, twice', () => {
    const x = t32([1, 2], [2], true);
    const y = mul(x, x);
    expect(() => backward(y)).toThrow(/backward\(\) from a non-scalar of shape \[2\] needs an explicit gradient/);
    expect(() => backward(tensor([1]))).toThrow(/does not require a gradient/);
    const s = sum(y);
    backward(s);
    expect(() => backward(s)).toThrow(/already used by a backward pass/);
    expect(() => backward(y, tensor([1, 2, 3]))).toThrow(/gradient of shape \[3\] does not match the output's shape \[2\]/);
  });

  it('backward with an explicit gradient for a non-scalar', async () => {
    const x = t32([1, 2, 3], [3], true);
    const g = tensor([1, 10, 100]);
    scope(() => backward(mul(x, x), g));
    expect(Array.from(await x.grad!.data())).toEqual([2, 40, 600]);
    expect(g.disposed).toBe(false);
  });

  it('frees saved tensors once backward used them, and graphs that are never backpropagated', () => {
    const x = t32([1, 2, 3], [3], true);
    const base = memoryStats();
    const loss = scope(() => sum(mul(mul(x, x), x)));
    const withGraph = memoryStats();
    expect(withGraph.storages).toBeGreaterThan(base.storages + 1); // saved intermediates alive
    backward(loss);
    loss.dispose();
    x.grad!.dispose();
    x.grad = null;
    expect(memoryStats()).toEqual(base);
    // never backpropagated: disposing the output frees the whole graph
    const unused = scope(() => sum(mul(mul(x, x), x)));
    unused.dispose();
    expect(memoryStats()).toEqual(base);
  });

  it('comparisons give 1/0 and no gradient', async () => {
    const x = t32([1, 2, 3], [3], true);
    const c = compare('gt', x, 1.5);
    expect(Array.from(await c.data())).toEqual([0, 1, 1]);
    expect(c.requiresGrad).toBe(false);
  });
});

describe('binary backwards compute only the gradients their inputs need', () => {
  // x [3, 4] needs a gradient; c is a constant, broadcast as [4] or full-shaped
  const xv = asF32(randArray(12, 301, 0.5, 2));
  const cv = asF32(randArray(12, 302, 0.5, 2));
  const bv = asF32(randArray(4, 303, 0.5, 2));
  type Op = (a: ReturnType<typeof t32>, b: ReturnType<typeof t32>) => ReturnType<typeof t32>;
  const cases: [string, Op, (x: number, c: number) => [number, number]][] = [
    ['add', add, () => [1, 1]],
    ['sub', sub, () => [1, -1]],
    ['mul', mul, (x, c) => [c, x]],
    ['div', div, (x, c) => [1 / c, -x / (c * c)]],
    ['maximum', maximum, (x, c) => (x > c ? [1, 0] : [0, 1])],
    ['minimum', minimum, (x, c) => (x < c ? [1, 0] : [0, 1])],
  ];

  /** Backward of sum(op(a, b)) with the given operands requiring gradients; returns the dispatches
   * the backward took and the gradients read back. */
  async function run(op: Op, needA: boolean, needB: boolean, broadcastB: boolean) {
    const a = t32(xv, [3, 4], needA);
    const b = broadcastB ? t32(bv, [4], needB) : t32(cv, [3, 4], needB);
    const dev = runtime().device;
    const loss = sum(op(a, b));
    const d0 = dev.stats.dispatches;
    backward(loss);
    const dispatches = dev.stats.dispatches - d0;
    const ga = a.grad ? await read(a.grad) : null;
    const gb = b.grad ? await read(b.grad) : null;
    for (const t of [a, b, loss]) t.dispose();
    return { dispatches, ga, gb };
  }

  for (const [name, op, d] of cases) {
    it(`${name}: one side or both, full-shaped and broadcast; fewer dispatches with a constant`, async () => {
      for (const broadcastB of [false, true]) {
        const c = (i: number) => (broadcastB ? bv[i % 4] : cv[i]);
        const wantA = Array.from(xv, (x, i) => d(x, c(i))[0]);
        const wantB = new Array<number>(broadcastB ? 4 : 12).fill(0);
        xv.forEach((x, i) => (wantB[broadcastB ? i % 4 : i] += d(x, c(i))[1]));
        const both = await run(op, true, true, broadcastB);
        const onlyA = await run(op, true, false, broadcastB);
        const onlyB = await run(op, false, true, broadcastB);
        for (const r of [both, onlyA]) expectClose(r.ga!, wantA, { what: `${name} da` });
        for (const r of [both, onlyB]) expectClose(r.gb!, wantB, { what: `${name} db` });
        expect(onlyA.gb).toBeNull();
        expect(onlyB.ga).toBeNull();
        // skipping a side never costs more; it saves a kernel where that side has work of its own
        // (add's full-shaped gradient is g itself; div's dy and sub's -g reuse what dx needs or
        // are all there is)
        expect(onlyA.dispatches).toBeLessThanOrEqual(both.dispatches);
        expect(onlyB.dispatches).toBeLessThanOrEqual(both.dispatches);
        if (!(name === 'add' && !broadcastB)) expect(onlyA.dispatches).toBeLessThan(both.dispatches);
        if (['mul', 'maximum', 'minimum'].includes(name)) expect(onlyB.dispatches).toBeLessThan(both.dispatches);
      }
    });
  }
});

describe('matmul computes only the gradients its inputs need', () => {
  it('a frozen weight, a constant input or a frozen bias: no product for them, the rest unchanged', async () => {
    const [M, K, N] = [5, 7, 3];
    const av = asF32(randArray(M * K, 311));
    const bv = asF32(randArray(K * N, 312));
    const cv = asF32(randArray(N, 313));
    const dev = runtime().device;
    /** The backward's matrix-product dispatches (kernels of matmul.wgsl or simd8/matmul.wgsl but
     * the activation's gradient) and the gradients read back. */
    async function run(na: boolean, nb: boolean, nc: boolean) {
      const a = t32(av, [M, K], na);
      const b = t32(bv, [K, N], nb);
      const c = t32(cv, [N], nc);
      const loss = sum(matmul(a, b, { bias: c, activation: 'tanh' }));
      let products = 0;
      const dispatch = dev.dispatch;
      dev.dispatch = (k, ...rest) => {
        if (/(^|\/)matmul\.wgsl:(?!act_)/.test(k.label)) products++;
        return dispatch.call(dev, k, ...rest);
      };
      try {
        backward(loss);
      } finally {
        dev.dispatch = dispatch;
      }
      const g = await Promise.all([a, b, c].map((t) => (t.grad ? read(t.grad) : null)));
      for (const t of [a, b, c, loss]) t.dispose();
      return { products, g };
    }
    const all = await run(true, true, true);
    const onlyA = await run(true, false, false);
    const onlyB = await run(false, true, false);
    const onlyBias = await run(false, false, true);
    expect(onlyA.products).toBeGreaterThan(0);
    expect(onlyB.products).toBeGreaterThan(0);
    expect(onlyA.products + onlyB.products).toBe(all.products);
    expect(onlyBias.products).toBe(0);
    for (const [r, need] of [[onlyA, [true, false, false]], [onlyB, [false, true, false]], [onlyBias, [false, false, true]]] as const) {
      need.forEach((n, i) => {
        if (n) expectClose(r.g[i]!, all.g[i]!, { atol: 0, rtol: 0, what: `input ${i}` });
        else expect(r.g[i]).toBeNull();
      });
    }
  });
});
