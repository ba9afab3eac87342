/**
 * Index ops against float64 references: indexSelect, gather, embedding (heavy repetition,
 * padding, multi-pass radix sort for large vocabularies), oneHot; out-of-range indices (never
 * read, recorded, reported). The scatter-add backward is deterministic: it is checked bit for bit
 * against the float32 sum in position order, and against float64 and finite differences.
 */
import { describe, it, expect, beforeAll } from 'vitest';
import { engine, t32, read } from '../helpers/gpu.ts';
import { randArray, asF32, expectClose, finiteDiff, dot } from '../helpers/reference.ts';
import {
  indexSelect, gather, embedding, oneHot, checkIndexErrors, validateIndices, backward, tensor, transpose,
  OpError, memoryStats, scope, sum,
  runtime,
} from '../../src/engine/index.ts';

beforeAll(async () => {
  await engine();
  await checkIndexErrors();
});

function ints(n: number, seed: number, lo: number, hi: number): number[] {
  return Array.from(randArray(n, seed, lo, hi), (v) => Math.floor(v));
}

function strides(shape: readonly number[]): number[] {
  const s: number[] = new Array(shape.length);
  let acc = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    s[i] = acc;
    acc *= shape[i];
  }
  return s;
}

function coords(f: number, shape: readonly number[]): number[] {
  const c: number[] = new Array(shape.length);
  for (let d = shape.length - 1; d >= 0; d--) {
    c[d] = f % shape[d];
    f = Math.floor(f / shape[d]);
  }
  return c;
}

/** Source flat index of every output element of index_select (-1 for an invalid index). */
function selectMap(shape: readonly number[], dim: number, idx: readonly number[]): number[] {
  const outShape = shape.map((s, i) => (i === dim ? idx.length : s));
  const n = outShape.reduce((a, b) => a * b, 1);
  const st = strides(shape);
  return Array.from({ length: n }, (_, f) => {
    const c = coords(f, outShape);
    const v = idx[c[dim]];
    if (v < 0 || v >= shape[dim]) return -1;
    c[dim] = v;
    return c.reduce((a, ci, d) => a + ci * st[d], 0);
  });
}

/** Source flat index of every element of torch.gather's output (-1 when invalid). */
function gatherMap(shape: readonly number[], dim: number, index: readonly number[], idxShape: readonly number[]): number[] {
  const st = strides(shape);
  return index.map((v, f) => {
    if (v < 0 || v >= shape[dim]) return -1;
    const c = coords(f, idxShape);
    c[dim] = v;
    return c.reduce((a, ci, d) => a + ci * st[d], 0);
  });
}

const apply = (x: ArrayLike<number>, map: readonly number[]) => Float64Array.from(map, (s) => (s < 0 ? 0 : x[s]));

/** Gradient of dot(apply(x, map), g): float64, and the float32 sum in output-position order. */
function scatterRef(n: number, map: readonly number[], g: ArrayLike<number>): { f64: Float64Array; f32: Float32Array } {
  const f64 = new Float64Array(n);
  const f32 = new Float32Array(n);
  map.forEach((s, i) => {
    if (s < 0) return;
    f64[s] += g[i];
    f32[s] = Math.fround(f32[s] + g[i]);
  });
  return { f64, f32 };
}

describe('indexSelect', () => {
  const shape = [4, 5, 6];
  for (const dim of [0, 1, 2, -1]) {
    it(`dim ${dim} with repeated indices`, async () => {
      const d = dim < 0 ? dim + 3 : dim;
      const x = asF32(randArray(120, 3 + d, -2, 2));
      const idx = ints(9, 5 + d, 0, shape[d]);
      idx[3] = idx[1]; // a repeat for sure
      const t = t32(x, shape, true);
      const y = indexSelect(t, dim, tensor(Int32Array.from(idx), [9]));
      const map = selectMap(shape, d, idx);
      expect(y.shape).toEqual(shape.map((s, i) => (i === d ? 9 : s)));
      expectClose(await read(y), apply(x, map), { atol: 0 });
      const g = asF32(randArray(map.length, 7, -1, 1));
      backward(y, t32(g, y.shape));
      const ref = scatterRef(120, map, g);
      expectClose(finiteDiff((v) => dot(apply(v, map), g), x), ref.f64, { atol: 1e-8, what: 'fd' });
      const got = await t.grad!.data();
      expect(Array.from(got)).toEqual(Array.from(ref.f32)); // bit-exact: fixed summation order
    });
  }
});

describe('embedding', () => {
  it('heavy repetition: 3001 lookups of 6 ids, padding row without gradient', async () => {
    const V = 37;
    const D = 5;
    const w = asF32(randArray(V * D, 11, -1, 1));
    const ids = ints(3001, 13, 0, 6).map((v) => v * 7); // ids 0, 7, ..., 35: ~500 lookups each
    for (let i = 0; i < 300; i++) ids[i * 10] = 35; // one id hit ~800 times
    const pad = 7;
    const wt = t32(w, [V, D], true);
    const idsT = tensor(Int32Array.from(ids), [3001]);
    const y = embedding(wt, idsT, { paddingIdx: pad });
    expect(y.shape).toEqual([3001, D]);
    const map = ids.flatMap((v) => Array.from({ length: D }, (_, k) => v * D + k));
    expectClose(await read(y), apply(w, map), { atol: 0 });
    const g = asF32(randArray(3001 * D, 17, -1, 1));
    backward(y, t32(g, [3001, D]));
    const gradMap = map.map((s) => (Math.floor(s / D) === pad ? -1 : s));
    const ref = scatterRef(V * D, gradMap, g);
    const got = await wt.grad!.data();
    expect(Array.from(got)).toEqual(Array.from(ref.f32));
    expectClose(got, ref.f64, { atol: 1e-4, rtol: 1e-5, what: 'vs float64' });
    for (let k = 0; k < D; k++) expect(got[pad * D + k]).toBe(0);
    // deterministic: a second run gives the same bits
    const wt2 = t32(w, [V, D], true);
    backward(embedding(wt2, idsT, { paddingIdx: pad }), t32(g, [3001, D]));
    expect(Array.from(await wt2.grad!.data())).toEqual(Array.from(got));
  });

  it('ids of any shape, negative paddingIdx, finite differences', async () => {
    const V = 6;
    const D = 3;
    const w = asF32(randArray(V * D, 21, -1, 1));
    const ids = [5, 0, 2, 2, 5, 1];
    const wt = t32(w, [V, D], true);
    const y = embedding(wt, tensor(Int32Array.from(ids), [2, 3]), { paddingIdx: -1 }); // row 5
    expect(y.shape).toEqual([2, 3, D]);
    const map = ids.flatMap((v) => [0, 1, 2].map((k) => v * D + k));
    expectClose(await read(y), apply(w, map), { atol: 0 });
    const g = asF32(randArray(18, 23));
    backward(y, t32(g, [2, 3, D]));
    const gradMap = map.map((s) => (Math.floor(s / D) === 5 ? -1 : s));
    const fd = finiteDiff((v) => dot(apply(v, gradMap), g), w);
    expectClose(await read(wt.grad!), fd, { atol: 1e-7 });
  });

  it('weight and ids as views with offsets', async () => {
    const w = asF32(randArray(40, 25, -1, 1));
    const big = t32(w, [10, 4]);
    const wt = big.view([7, 4], [4, 1], 12); // rows 3..9, a leaf view
    wt.requiresGrad = true;
    const idsAll = tensor(new Int32Array([9, 9, 6, 0, 6, 2, 9]), [7]);
    const ids = idsAll.view([4], [1], 2); // 6, 0, 6, 2
    const y = embedding(wt, ids);
    const sub = w.slice(12);
    const map = [6, 0, 6, 2].flatMap((v) => [0, 1, 2, 3].map((k) => v * 4 + k));
    expectClose(await read(y), apply(sub, map), { atol: 0 });
    const g = asF32(randArray(16, 27));
    backward(y, t32(g, [4, 4]));
    expect(Array.from(await wt.grad!.data())).toEqual(Array.from(scatterRef(28, map, g).f32));
  });

  it('a large vocabulary (17-bit keys: five radix passes)', async () => {
    const V = 70001;
    const D = 2;
    const w = asF32(randArray(V * D, 31, -1, 1));
    const ids = ints(2500, 33, 0, V);
    for (let i = 0; i < 500; i++) ids[5 * i] = 65536 + (i % 3); // repeats straddling a 16-bit boundary
    const wt = t32(w, [V, D], true);
    const y = embedding(wt, tensor(Int32Array.from(ids), [2500]));
    const map = ids.flatMap((v) => [v * D, v * D + 1]);
    expectClose(await read(y), apply(w, map), { atol: 0 });
    const g = asF32(randArray(5000, 35));
    backward(y, t32(g, [2500, D]));
    const ref = scatterRef(V * D, map, g);
    expect(Array.from(await wt.grad!.data())).toEqual(Array.from(ref.f32));
  });
});

describe('gather (torch.gather)', () => {
  const shape = [4, 5, 6];
  for (const dim of [0, 1, 2]) {
    it(`dim ${dim}, an index smaller than the input, repeats`, async () => {
      const idxShape = [3, 5, 4].map((s, i) => (i === dim ? 7 : s));
      const n = idxShape.reduce((a, b) => a * b, 1);
      const x = asF32(randArray(120, 41 + dim, -2, 2));
      const index = ints(n, 43 + dim, 0, shape[dim]);
      const t = t32(x, shape, true);
      const y = gather(t, dim, tensor(Int32Array.from(index), idxShape));
      expect(y.shape).toEqual(idxShape);
      const map = gatherMap(shape, dim, index, idxShape);
      expectClose(await read(y), apply(x, map), { atol: 0 });
      const g = asF32(randArray(n, 47, -1, 1));
      backward(y, t32(g, idxShape));
      const ref = scatterRef(120, map, g);
      expectClose(finiteDiff((v) => dot(apply(v, map), g), x), ref.f64, { atol: 1e-8, what: 'fd' });
      expect(Array.from(await t.grad!.data())).toEqual(Array.from(ref.f32));
    });
  }

  it('reads a strided view in place', async () => {
    const x = asF32(randArray(35, 51));
    const base = t32(x, [5, 7], true);
    const tt = transpose(base); // [7, 5]
    const xt = new Float64Array(35);
    for (let i = 0; i < 7; i++) for (let j = 0; j < 5; j++) xt[i * 5 + j] = x[j * 7 + i];
    const index = ints(14, 53, 0, 5);
    const y = gather(tt, 1, tensor(Int32Array.from(index), [7, 2]));
    const map = gatherMap([7, 5], 1, index, [7, 2]);
    expectClose(await read(y), apply(xt, map), { atol: 0 });
    backward(sum(y));
    const gt = scatterRef(35, map, new Array(14).fill(1)).f64;
    const g = new Float64Array(35);
    for (let i = 0; i < 7; i++) for (let j = 0; j < 5; j++) g[j * 7 + i] = gt[i * 5 + j];
    expectClose(await read(base.grad!), g, { atol: 0 });
  });
});

describe('oneHot', () => {
  it('f32 rows, any id shape', async () => {
    const ids = [2, 0, 4, 4, 1, 3];
    const y = oneHot(tensor(Int32Array.from(ids), [3, 2]), 5);
    expect(y.shape).toEqual([3, 2, 5]);
    expect(y.dtype).toBe('f32');
    const want = ids.flatMap((v) => [0, 1, 2, 3, 4].map((c) => (c === v ? 1 : 0)));
    expect(Array.from(await read(y))).toEqual(want);
  });
});

describe('out-of-range indices', () => {
  it('read as zeros, give no gradient, and are reported once per op', async () => {
    await checkIndexErrors();
    const V = 5;
    const w = asF32(randArray(10, 61));
    const wt = t32(w, [V, 2], true);
    const ids = [1, 5, -1, 1];
    const y = embedding(wt, tensor(Int32Array.from(ids), [4]));
    expectClose(await read(y), [w[2], w[3], 0, 0, 0, 0, w[2], w[3]], { atol: 0 });
    backward(y, t32([1, 2, 3, 4, 5, 6, 7, 8], [4, 2]));
    expectClose(await read(wt.grad!), [0, 0, 8, 10, 0, 0, 0, 0, 0, 0], { atol: 0 });
    await expect(checkIndexErrors()).rejects.toThrow(/embedding: 2 index value\(s\) out of range \(bad values between -1 and 5, first at position 1\)/);
    const t = t32(w, [2, 5]);
    indexSelect(t, 1, tensor(new Int32Array([0, 9]), [2]));
    gather(t, 0, tensor(new Int32Array([0, 1, 2, 0, 1]), [1, 5])); // 2 is out of range for dim 0 of size 2
    oneHot(tensor(new Int32Array([3, -4]), [2]), 3);
    await expect(checkIndexErrors()).rejects.toThrow(/gather, indexSelect, oneHot: 4 index value\(s\) out of range \(bad values between -4 and 9/);
    await checkIndexErrors();
  });

  it('an op queued while a check waits is reported by the next check', async () => {
    await checkIndexErrors();
    oneHot(tensor(new Int32Array([7]), [1]), 3);
    const first = checkIndexErrors(); // snapshot taken now, in stream order
    oneHot(tensor(new Int32Array([-2, 9]), [2]), 3);
    await expect(first).rejects.toThrow(/oneHot: 1 index value\(s\) out of range \(bad values between 7 and 7/);
    await expect(checkIndexErrors()).rejects.toThrow(/oneHot: 2 index value\(s\) out of range \(bad values between -2 and 9/);
    await checkIndexErrors();
  });

  it('validateIndices reports at once', async () => {
    await validateIndices('myOp', tensor(new Int32Array([0, 3, 2]), [3]), 4);
    await expect(validateIndices('myOp', tensor(new Int32Array([0, 4, 2, 7]), [2, 2]), 4)).rejects.toThrow(
      /myOp: 2 of 4 indices of shape \[2, 2\] are outside \[0, 4\): values between 4 and 7, first at flat position 1/,
    );
  });
});

describe('memory and bad input', () => {
  it('frees everything it allocates in a scope', async () => {
    const w = t32(randArray(12, 71), [4, 3], true);
    const before = memoryStats();
    scope(() => {
      const ids = tensor(new Int32Array([0, 3, 3, 1]), [4]);
      backward(sum(embedding(w, ids, { paddingIdx: 0 })));
      backward(sum(indexSelect(w, 1, tensor(new Int32Array([2, 2]), [2]))));
      backward(sum(gather(w, 0, tensor(new Int32Array([1, 1, 3]), [1, 3]))));
      oneHot(ids, 4);
    });
    w.grad?.dispose();
    w.grad = null;
    expect(memoryStats()).toEqual(before);
  });

  it('raises OpError naming op and shapes', () => {
    const dispatches = runtime().device.stats.dispatches;
    const w = tensor(new Float32Array(12), [4, 3]);
    const ids = tensor(new Int32Array([0, 1]), [2]);
    expect(() => embedding(w, tensor(new Float32Array(2), [2]))).toThrow(/embedding: ids must be i32, got f32 of shape \[2\]/);
    expect(() => embedding(tensor(new Float32Array(4), [4]), ids)).toThrow(/embedding: weight must be f32 \[V, D\], got f32 of shape \[4\]/);
    expect(() => embedding(w, ids, { paddingIdx: 4 })).toThrow(/paddingIdx 4 out of range for 4 embeddings/);
    expect(() => indexSelect(w, 2, ids)).toThrow(/indexSelect: dimension 2 out of range for shape \[4, 3\]/);
    expect(() => indexSelect(w, 0, tensor(new Int32Array(4), [2, 2]))).toThrow(/indices must be 1-D, got shape \[2, 2\]/);
    expect(() => gather(w, 0, ids)).toThrow(/gather: index \[2\] must have the rank of the input \[4, 3\]/);
    expect(() => gather(w, 0, tensor(new Int32Array(8), [2, 4]))).toThrow(/index \[2, 4\] is larger than the input \[4, 3\] in dimension 1/);
    expect(() => oneHot(ids, 0)).toThrow(OpError);
    expect(runtime().device.stats.dispatches).toBe(dispatches); // no kernel ran
  });
});
