/**
 * Where backward puts gradients: a Parameter's first gradient copied straight into its arena slot
 * (a copy dispatch, never a buffer copy that ends the compute pass), accumulation across backward
 * calls and after zeroGrad, a value used twice (a residual) without a copy per consumer, and
 * aliasing: no leaf's gradient shares storage with another's or with the caller's gradient.
 * Values against float64 references checked by central finite differences.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { engine, t32, read } from '../helpers/gpu.ts';
import { randArray, asF32, expectClose, finiteDiff, dot } from '../helpers/reference.ts';
import {
  Parameter, releaseParameterArena, add, mul, sum, relu, reshape, transpose, contiguous, scope, backward,
  zeroGradOf, runtime, memoryStats, type Tensor,
} from '../../src/engine/index.ts';

beforeAll(async () => {
  await engine();
});
afterAll(() => releaseParameterArena());

function param(values: Float64Array, shape: number[]): Parameter {
  const p = Parameter.empty(shape);
  p.upload(Float32Array.from(values));
  return p;
}

/** Runs `fn` and counts what it records: dispatches by entry point, and buffer copies. */
function recorded(fn: () => void): { byEntry: Map<string, number>; copies: number } {
  const dev = runtime().device as unknown as {
    dispatch: (...a: unknown[]) => void;
    copy: (...a: unknown[]) => void;
  };
  const byEntry = new Map<string, number>();
  let copies = 0;
  const dispatch = dev.dispatch;
  const copy = dev.copy;
  dev.dispatch = function (this: unknown, ...a: unknown[]) {
    const entry = String((a[0] as { label: string }).label).split(':')[1];
    byEntry.set(entry, (byEntry.get(entry) ?? 0) + 1);
    return dispatch.apply(this, a);
  };
  dev.copy = function (this: unknown, ...a: unknown[]) {
    copies++;
    return copy.apply(this, a);
  };
  try {
    fn();
  } finally {
    dev.dispatch = dispatch;
    dev.copy = copy;
  }
  return { byEntry, copies };
}

// f(p, q) = sum(w * (relu-free residual r + r * r)), r = transpose(p) * x + q: p reaches its
// gradient through a transpose (a strided view), q through broadcasting, r feeds two consumers.
const [N, M] = [5, 7];
const pv = asF32(randArray(M * N, 1, -1, 1));
const qv = asF32(randArray(M, 2, -1, 1));
const xv = asF32(randArray(N * M, 3, 0.5, 1.5));
const wv = asF32(randArray(N * M, 4, -1, 1));

function ref(p: Float64Array, q: Float64Array): number {
  const out = new Float64Array(N * M);
  for (let i = 0; i < N; i++) {
    for (let j = 0; j < M; j++) {
      const r = p[j * N + i] * xv[i * M + j] + q[j];
      out[i * M + j] = r + r * r;
    }
  }
  return dot(out, wv);
}

function loss(p: Tensor, q: Tensor, x: Tensor, w: Tensor): Tensor {
  const r = add(mul(transpose(p), x), q);
  return sum(mul(add(r, mul(r, r)), w));
}

describe('gradients into parameter slots', () => {
  it('first gradient lands in the slot by dispatches, no buffer copy; values = finite differences', async () => {
    const p = param(pv, [M, N]);
    const q = param(qv, [M]);
    const x = t32(xv, [N, M]);
    const w = t32(wv, [N, M]);
    const { byEntry, copies } = recorded(() => scope(() => backward(loss(p, q, x, w))));
    expect(copies).toBe(0);
    // one copy_strided per parameter (into its slot), none for the residual's second consumer
    expect(byEntry.get('copy_strided')).toBe(2);
    expectClose(await read(p.grad!), finiteDiff((v) => ref(v, qv), pv), { atol: 1e-4, rtol: 1e-3, what: 'dp' });
    expectClose(await read(q.grad!), finiteDiff((v) => ref(pv, v), qv), { atol: 1e-4, rtol: 1e-3, what: 'dq' });
    // the gradient is the parameter's slot of the arena's mirror, not a tensor of its own
    expect(p.grad!.bufferFor('t')).toBe(p.arena.grad().bufferFor('t'));
    for (const t of [p, q, x, w]) t.dispose();
  });

  it('accumulates over two backward calls; zeroGrad to none and to zero start again', async () => {
    const p = param(pv, [M, N]);
    const q = param(qv, [M]);
    const x = t32(xv, [N, M]);
    const w = t32(wv, [N, M]);
    const once = finiteDiff((v) => ref(v, qv), pv);
    const step = () => scope(() => backward(loss(p, q, x, w)));
    step();
    step();
    expectClose(await read(p.grad!), once.map((v) => 2 * v), { atol: 2e-4, rtol: 1e-3, what: 'two backward calls' });
    zeroGradOf([p, q], true);
    expect(p.grad).toBeNull();
    step();
    expectClose(await read(p.grad!), once, { atol: 1e-4, rtol: 1e-3, what: 'after zeroGrad (none)' });
    zeroGradOf([p, q], false);
    expect(Array.from(await read(q.grad!))).toEqual(new Array(M).fill(0));
    step();
    expectClose(await read(p.grad!), once, { atol: 1e-4, rtol: 1e-3, what: 'after zeroGrad (zero)' });
    for (const t of [p, q, x, w]) t.dispose();
  });

  it('a parameter used twice gets the sum (p * p + p: 2p + 1)', async () => {
    const v = asF32(randArray(9, 5));
    const p = param(v, [9]);
    scope(() => backward(sum(add(mul(p, p), p))));
    expectClose(await read(p.grad!), v.map((a) => 2 * a + 1), { atol: 1e-6, rtol: 1e-6 });
    p.dispose();
  });

  it("the caller's gradient in the same arena buffer as the slot (a copy through a temporary)", async () => {
    const a = param(asF32(randArray(6, 6)), [6]);
    const b = param(asF32(randArray(6, 7)), [6]);
    const gv = asF32(randArray(6, 8));
    a.grad = t32(gv, [6]);
    backward(b, a.grad!);
    expectClose(await read(b.grad!), gv, { atol: 0, rtol: 0 });
    expectClose(await read(a.grad!), gv, { atol: 0, rtol: 0, what: 'source slot unchanged' });
    a.dispose();
    b.dispose();
  });
});

describe('shared gradients and aliasing (plain leaves)', () => {
  it("the caller's gradient is never adopted: two backward calls through a view leave it as it was", async () => {
    const x = t32([1, 2, 3, 4, 5, 6], [2, 3], true);
    const g = t32([1, -2, 3, -4, 5, -6], [6]);
    backward(reshape(x, [6]), g);
    backward(reshape(x, [6]), g);
    expect(Array.from(await read(g))).toEqual([1, -2, 3, -4, 5, -6]);
    expect(Array.from(await read(x.grad!))).toEqual([2, -4, 6, -8, 10, -12]);
    x.grad!.dispose();
    for (const t of [x, g]) t.dispose();
  });

  it('two leaves of one add get gradients of their own (accumulating into one leaves the other)', async () => {
    const a = t32([1, 2], [2], true);
    const b = t32([3, 4], [2], true);
    scope(() => backward(sum(add(a, b))));
    expect(a.grad!.bufferFor('t') === b.grad!.bufferFor('t')).toBe(false);
    scope(() => backward(sum(mul(a, 3))));
    expect(Array.from(await read(a.grad!))).toEqual([4, 4]);
    expect(Array.from(await read(b.grad!))).toEqual([1, 1]);
    for (const t of [a, b, a.grad!, b.grad!]) t.dispose();
  });

  it('residual h + relu(h): one add, no copy for the second consumer; values = finite differences; nothing leaks', async () => {
    const v = asF32(randArray(11, 9));
    const wv2 = asF32(randArray(11, 10));
    const refR = (xs: Float64Array) => {
      let s = 0;
      for (let i = 0; i < xs.length; i++) {
        const h = 2 * xs[i];
        const y = h + Math.max(h, 0);
        s += wv2[i] * (y + Math.max(y, 0));
      }
      return s;
    };
    const x = t32(v, [11], true);
    const w = t32(wv2, [11]);
    const base = memoryStats();
    const { byEntry } = recorded(() =>
      scope(() => {
        const h = mul(x, 2);
        const y = add(h, relu(h));
        backward(sum(mul(add(y, relu(y)), w)));
      }),
    );
    expect(byEntry.get('copy_strided') ?? 0).toBe(0);
    expectClose(await read(x.grad!), finiteDiff(refR, v), { atol: 1e-4, rtol: 1e-3 });
    x.grad!.dispose();
    x.grad = null;
    expect(memoryStats()).toEqual(base);
    for (const t of [x, w]) t.dispose();
  });

  it('a retained intermediate gradient and a leaf gradient stay separate', async () => {
    const x = t32([1, 2, 3], [3], true);
    const mid = scope(() => {
      const h = contiguous(mul(x, 1)).retainGrad();
      backward(sum(h));
      return h;
    });
    scope(() => backward(sum(mul(x, 2))));
    expect(Array.from(await read(mid.grad!))).toEqual([1, 1, 1]);
    expect(Array.from(await read(x.grad!))).toEqual([3, 3, 3]);
    for (const t of [x, mid, x.grad!]) t.dispose();
  });
});
