import { describe, it, expect, beforeAll } from 'vitest';
import { engine, t32, read } from '../helpers/gpu.ts';
import { randArray, asF32, expectClose, finiteDiff, dot } from '../helpers/reference.ts';
import { tensor, backward, transpose, scope, memoryStats, OpError, type Tensor } from '../../src/engine/index.ts';
import { slice, narrow, select, split, chunk, squeeze, unsqueeze, flatten, concat, cat, stack, pad, arange } from '../../src/engine/ops/shape.ts';
import { exp, gelu, where, powT } from '../../src/engine/ops/unary.ts';
import { randn } from '../../src/engine/ops/random.ts';

beforeAll(async () => {
  await engine();
});

// ------------------------------------------------------------------ float64 references

const numelOf = (s: readonly number[]) => s.reduce((a, n) => a * n, 1);

function coordsOf(shape: readonly number[], flat: number): number[] {
  const c = new Array<number>(shape.length);
  for (let d = shape.length - 1; d >= 0; d--) {
    c[d] = flat % shape[d];
    flat = Math.floor(flat / shape[d]);
  }
  return c;
}

function flatOf(shape: readonly number[], c: readonly number[]): number {
  let f = 0;
  for (let d = 0; d < shape.length; d++) f = f * shape[d] + c[d];
  return f;
}

/** Where each output element comes from: [input number, flat index in it], or null for a constant. */
type Source = [number, number] | null;

function mapOf(outShape: readonly number[], f: (c: number[]) => Source): Source[] {
  return Array.from({ length: numelOf(outShape) }, (_, o) => f(coordsOf(outShape, o)));
}

/**
 * Checks a movement op given its element map: forward exactly, the reference gradient (scatter-add
 * of the weights) against central differences, and the GPU gradients of every input.
 */
async function checkMovement(
  what: string,
  inputs: { values: Float64Array; shape: number[]; make?: (t: Tensor) => Tensor }[],
  run: (ts: Tensor[]) => Tensor,
  outShape: number[],
  map: Source[],
  fill = 0,
): Promise<void> {
  const ref = (xs: Float64Array[]) => map.map((s) => (s ? xs[s[0]][s[1]] : fill));
  const w = asF32(randArray(map.length, 999, -1, 1));
  const xs = inputs.map((i) => i.values);
  const grads = xs.map((x) => new Float64Array(x.length));
  map.forEach((s, o) => {
    if (s) grads[s[0]][s[1]] += w[o];
  });
  xs.forEach((x, k) => {
    const fd = finiteDiff((xk) => dot(ref(xs.map((v, j) => (j === k ? xk : v))), w), x);
    expectClose(grads[k], fd, { atol: 1e-6, what: `${what}: reference gradient of input ${k}` });
  });
  const leaves = inputs.map((i) => t32(i.values, i.shape, true));
  const args = leaves.map((l, k) => (inputs[k].make ? inputs[k].make!(l) : l));
  const y = run(args);
  expect(y.shape, `${what}: shape`).toEqual(outShape);
  expectClose(await read(y), ref(xs), { atol: 0, rtol: 0, what: `${what}: forward` });
  backward(y, t32(w, outShape));
  for (let k = 0; k < leaves.length; k++) {
    expectClose(await read(leaves[k].grad!), grads[k], { atol: 1e-6, what: `${what}: gradient of input ${k}` });
  }
}

const rnd = (shape: number[], seed: number) => asF32(randArray(numelOf(shape), seed, -2, 2));

/** Input k stored as `storedShape` and viewed transposed (last two dims): a non-contiguous operand.
 * Returns the logical values (row-major in the transposed shape) and the factory. */
function transposedInput(logicalShape: number[], seed: number): { values: Float64Array; shape: number[]; make: (t: Tensor) => Tensor; logical: Float64Array } {
  const r = logicalShape.length;
  const stored = [...logicalShape];
  [stored[r - 2], stored[r - 1]] = [stored[r - 1], stored[r - 2]];
  const values = rnd(stored, seed);
  const logical = new Float64Array(values.length);
  for (let o = 0; o < values.length; o++) {
    const c = coordsOf(logicalShape, o);
    const sc = [...c];
    [sc[r - 2], sc[r - 1]] = [sc[r - 1], sc[r - 2]];
    logical[o] = values[flatOf(stored, sc)];
  }
  return { values, shape: stored, make: (t) => transpose(t), logical };
}

/** Maps a logical index of a transposed input back to its stored index. */
function storedIndex(logicalShape: number[], flat: number): number {
  const r = logicalShape.length;
  const c = coordsOf(logicalShape, flat);
  const stored = [...logicalShape];
  [stored[r - 2], stored[r - 1]] = [stored[r - 1], stored[r - 2]];
  [c[r - 2], c[r - 1]] = [c[r - 1], c[r - 2]];
  return flatOf(stored, c);
}

describe('slicing views', () => {
  it('slice with negative, clamped and open bounds and steps, on contiguous and transposed inputs', async () => {
    const shape = [5, 7, 6];
    const x = rnd(shape, 1);
    // [1:5:2, -6::3, 0:100]
    const out = [2, 2, 6];
    await checkMovement('slice', [{ values: x, shape }], ([t]) => slice(t, [1, -6, 0], [5, Infinity, 100], [2, 3, 1]), out,
      mapOf(out, ([i, j, k]) => [0, flatOf(shape, [1 + 2 * i, 1 + 3 * j, k])]));
    // a slice of a transposed view: [5, 6, 7] logical, [::2 , 1:-1] only on the first two dims
    const tin = transposedInput([5, 6, 7], 2);
    const out2 = [3, 4, 7];
    await checkMovement('slice of a view', [tin], ([t]) => slice(t, [0, 1], [5, -1], [2]), out2,
      mapOf(out2, ([i, j, k]) => [0, storedIndex([5, 6, 7], flatOf([5, 6, 7], [2 * i, 1 + j, k]))]));
    // empty slice
    expect(slice(t32(x, shape), [4], [2]).shape).toEqual([0, 7, 6]);
  });

  it('a slice feeds a strided kernel (exp of a non-contiguous view)', async () => {
    const shape = [6, 9];
    const x = rnd(shape, 3);
    const y = exp(slice(t32(x, shape), [1, 2], [6, 9], [2, 3]));
    const want: number[] = [];
    for (let i = 1; i < 6; i += 2) for (let j = 2; j < 9; j += 3) want.push(Math.exp(x[i * 9 + j]));
    expectClose(await read(y), want, { rtol: 2e-6 });
  });

  it('narrow, select (negative index), split and chunk', async () => {
    const shape = [4, 5, 3];
    const x = rnd(shape, 4);
    await checkMovement('narrow', [{ values: x, shape }], ([t]) => narrow(t, 1, 1, 3), [4, 3, 3],
      mapOf([4, 3, 3], ([i, j, k]) => [0, flatOf(shape, [i, 1 + j, k])]));
    await checkMovement('select', [{ values: x, shape }], ([t]) => select(t, -2, -1), [4, 3],
      mapOf([4, 3], ([i, k]) => [0, flatOf(shape, [i, 4, k])]));
    const parts = split(t32(x, shape), [2, 0, 3], 1);
    expect(parts.map((p) => p.shape)).toEqual([[4, 2, 3], [4, 0, 3], [4, 3, 3]]);
    const chunks = chunk(t32(x, shape), 3, 1);
    expect(chunks.map((p) => p.shape)).toEqual([[4, 2, 3], [4, 2, 3], [4, 1, 3]]);
    expectClose(await read(chunks[2]), mapOf([4, 1, 3], ([i, , k]) => [0, flatOf(shape, [i, 4, k])]).map((s) => x[s![1]]), { atol: 0, rtol: 0 });
    expect(split(t32(x, shape), 2, 0).map((p) => p.shape[0])).toEqual([2, 2]);
    // gradients of several pieces of one tensor add up in the same leaf
    const leaf = t32(x, shape, true);
    const [a, , c] = split(leaf, [2, 0, 3], 1);
    backward(concat([c, a], 1), t32(new Array(60).fill(1), [4, 5, 3]));
    expectClose(await read(leaf.grad!), new Array(60).fill(1), { atol: 0 });
  });

  it('squeeze, unsqueeze and flatten (views; flatten of a non-contiguous tensor copies)', async () => {
    const shape = [3, 1, 5, 1];
    const x = rnd(shape, 5);
    const ident = (s: number[]) => mapOf(s, (c) => [0, flatOf(s, c)]);
    await checkMovement('squeeze()', [{ values: x, shape }], ([t]) => squeeze(t), [3, 5], ident([3, 5]));
    await checkMovement('squeeze(-1)', [{ values: x, shape }], ([t]) => squeeze(t, -1), [3, 1, 5], ident([3, 1, 5]));
    await checkMovement('squeeze([0, 1])', [{ values: x, shape }], ([t]) => squeeze(t, [0, 1]), [3, 5, 1], ident([3, 5, 1]));
    await checkMovement('unsqueeze(-1)', [{ values: x, shape }], ([t]) => unsqueeze(t, -1), [3, 1, 5, 1, 1], ident([3, 1, 5, 1, 1]));
    await checkMovement('unsqueeze(0)', [{ values: x, shape }], ([t]) => unsqueeze(t, 0), [1, 3, 1, 5, 1], ident([1, 3, 1, 5, 1]));
    await checkMovement('flatten(1)', [{ values: x, shape }], ([t]) => flatten(t, 1), [3, 5], ident([3, 5]));
    // unsqueeze of a transposed view stays a view with the right strides
    const tin = transposedInput([3, 4], 6);
    await checkMovement('unsqueeze(1) of a view', [tin], ([t]) => unsqueeze(t, 1), [3, 1, 4],
      mapOf([3, 1, 4], ([i, , j]) => [0, storedIndex([3, 4], i * 4 + j)]));
    await checkMovement('flatten of a view', [tin], ([t]) => flatten(t), [12], mapOf([12], ([o]) => [0, storedIndex([3, 4], o)]));
  });
});

describe('concat, stack, pad', () => {
  it('concat along the middle dimension, one input a transposed view', async () => {
    const sa = [3, 2, 5];
    const tb = transposedInput([3, 4, 5], 8);
    const sc = [3, 1, 5];
    const a = rnd(sa, 7);
    const c = rnd(sc, 9);
    const out = [3, 7, 5];
    await checkMovement('concat', [{ values: a, shape: sa }, tb, { values: c, shape: sc }], (ts) => concat(ts, 1), out,
      mapOf(out, ([i, j, k]) => {
        if (j < 2) return [0, flatOf(sa, [i, j, k])];
        if (j < 6) return [1, storedIndex([3, 4, 5], flatOf([3, 4, 5], [i, j - 2, k]))];
        return [2, flatOf(sc, [i, 0, k])];
      }));
    expect(cat).toBe(concat);
    // along the last dimension (negative dim), with an empty piece
    const p = rnd([2, 3], 10);
    const q = rnd([2, 2], 11);
    const y = concat([t32(p, [2, 3]), t32([], [2, 0]), t32(q, [2, 2])], -1);
    expectClose(await read(y), [p[0], p[1], p[2], q[0], q[1], p[3], p[4], p[5], q[2], q[3]], { atol: 0 });
    const ints = concat([tensor(new Int32Array([1, 2]), [2]), tensor(new Int32Array([3]), [1])]);
    expect(ints.dtype).toBe('i32');
    expect(Array.from(await ints.data())).toEqual([1, 2, 3]);
  });

  it('stack along dimensions 1 and -1', async () => {
    const s = [4, 3];
    const xs = [rnd(s, 12), rnd(s, 13), rnd(s, 14)];
    const ins = xs.map((values) => ({ values, shape: s }));
    await checkMovement('stack(1)', ins, (ts) => stack(ts, 1), [4, 3, 3], mapOf([4, 3, 3], ([i, k, j]) => [k, flatOf(s, [i, j])]));
    await checkMovement('stack(-1)', ins, (ts) => stack(ts, -1), [4, 3, 3], mapOf([4, 3, 3], ([i, j, k]) => [k, flatOf(s, [i, j])]));
  });

  it('pad in F.pad order with a value, and with negative pads that crop', async () => {
    const shape = [2, 3, 5];
    const x = rnd(shape, 15);
    // last dim: 1 left, 2 right; middle dim: 0 above, 3 below
    const out = [2, 6, 8];
    await checkMovement('pad', [{ values: x, shape }], ([t]) => pad(t, [1, 2, 0, 3], 0.5), out,
      mapOf(out, ([i, j, k]) => (j < 3 && k >= 1 && k < 6 ? [0, flatOf(shape, [i, j, k - 1])] : null)), 0.5);
    // last dim: crop 1 on the left, pad 2 on the right; middle: pad 1 above, crop 1 below; first: pad 1, 0
    const out2 = [3, 3, 6];
    await checkMovement('pad with crops', [{ values: x, shape }], ([t]) => pad(t, [-1, 2, 1, -1, 1, 0], -3), out2,
      mapOf(out2, ([i, j, k]) => (i >= 1 && j >= 1 && k < 4 ? [0, flatOf(shape, [i - 1, j - 1, k + 1])] : null)), -3);
    // padding a transposed view
    const tin = transposedInput([3, 4], 16);
    await checkMovement('pad of a view', [tin], ([t]) => pad(t, [2, 1]), [3, 7],
      mapOf([3, 7], ([i, k]) => (k >= 2 && k < 6 ? [0, storedIndex([3, 4], i * 4 + k - 2)] : null)));
  });
});

describe('arange', () => {
  it('integer and float ranges, negative steps, PyTorch dtype inference', async () => {
    const a = arange(7);
    expect(a.dtype).toBe('i32');
    expect(Array.from(await a.data())).toEqual([0, 1, 2, 3, 4, 5, 6]);
    expect(Array.from(await arange(2, -7, -3).data())).toEqual([2, -1, -4]);
    const f = arange(0, 1, 0.1);
    expect(f.dtype).toBe('f32');
    expect(f.shape).toEqual([10]);
    expectClose(await read(f), Array.from({ length: 10 }, (_, i) => i * 0.1), { atol: 1e-7, rtol: 1e-6 });
    expectClose(await read(arange(1.5, 4)), [1.5, 2.5, 3.5], { atol: 0 });
    const big = arange(-3.25, 4000.5, 1.75, 'f32');
    expect(big.shape).toEqual([Math.ceil((4000.5 + 3.25) / 1.75)]);
    expectClose(await read(big), Array.from({ length: big.size }, (_, i) => -3.25 + 1.75 * i), { atol: 0, rtol: 2e-7 });
    expect(Array.from(await arange(5, 0, -2, 'u32').data())).toEqual([5, 3, 1]);
    expect(Array.from(await arange(3, 8, 1, 'f32').data())).toEqual([3, 4, 5, 6, 7]);
    expect(arange(3, 3).shape).toEqual([0]);
  });
});

describe('shape ops: bad input', () => {
  it('names the op and the shapes before running any kernel', () => {
    const x = t32([1, 2, 3, 4, 5, 6], [2, 3]);
    expect(() => concat([x, t32([1, 2], [2, 1]), t32([1], [1, 1])], 0)).toThrow(OpError);
    expect(() => concat([x, t32([1, 2], [1, 2])], 0)).toThrow(/concat: shapes \[2, 3\], \[1, 2\] differ outside dimension 0/);
    expect(() => concat([x, tensor(new Int32Array(3), [1, 3])], 0)).toThrow(/concat: dtype mismatch/);
    expect(() => concat([], 0)).toThrow(/concat: needs at least one tensor/);
    expect(() => stack([x, t32([1, 2, 3], [3])])).toThrow(/stack: all tensors must have the same shape/);
    expect(() => select(x, 1, 3)).toThrow(/select: index 3 out of range for dimension 1 of shape \[2, 3\]/);
    expect(() => narrow(x, 0, 1, 2)).toThrow(/narrow: start 1 and length 2 out of range/);
    expect(() => slice(x, [0], [2], [0])).toThrow(/slice: step 0 along dimension 0 must be a positive integer/);
    expect(() => slice(x, [0, 0, 0], [1, 1, 1])).toThrow(/slice: 3 slice bounds for a tensor of shape \[2, 3\]/);
    expect(() => pad(x, [1, 2, 3])).toThrow(/pad: pads \[1, 2, 3\] must have an even length/);
    expect(() => pad(x, [-2, -2])).toThrow(/pad: .* negative size -1/);
    expect(() => unsqueeze(x, 3)).toThrow(/unsqueeze: dimension 3 out of range for rank 3/);
    expect(() => split(x, [1, 1], 1)).toThrow(/split: sizes \[1, 1\] do not add up/);
    expect(() => arange(0, 5, 0)).toThrow(/arange: step must be non-zero/);
    expect(() => arange(0, 5, -1)).toThrow(/arange: the bounds \[0, 5\) are inconsistent/);
    expect(() => arange(0, 2 ** 32, 2 ** 31)).toThrow(/do not fit in i32/);
    expect(() => flatten(x, 1, 0)).toThrow(/flatten: startDim 1 comes after endDim 0/);
  });
});

describe('shape ops: memory', () => {
  it('forward and backward through views, copies and unary ops free every temporary', async () => {
    const before = memoryStats();
    const a = t32(randArray(12, 50), [3, 4], true);
    const b = t32(randArray(12, 51), [3, 4], true);
    scope(() => {
      const y = concat([a, slice(b, [0, 1], [3, 3])], 1);
      const z = pad(y, [1, -1, 1, 1], 3);
      const s = stack([select(z, 0, 1), squeeze(unsqueeze(select(z, 0, 2), 0))], 0);
      const w = where(s.gt(0), gelu(s), powT(s.abs(), randn([6], { seed: 1 })));
      backward(w, t32(new Array(w.size).fill(1), w.shape));
    });
    expect(a.grad!.shape).toEqual([3, 4]);
    expect((await read(b.grad!)).every(Number.isFinite)).toBe(true);
    for (const t of [a.grad!, b.grad!, a, b]) t.dispose();
    expect(memoryStats()).toEqual(before);
  });
});
