import { describe, it, expect, beforeAll } from 'vitest';
import { engine, t32, read } from '../helpers/gpu.ts';
import { randArray, asF32, expectClose, finiteDiff, dot } from '../helpers/reference.ts';
import {
  dropout, dropout2d, bernoulli, scaledBernoulli, backward, tensor, sum, mul, scope, manualSeed, getRngState, runtime,
  permute, OpError, type Tensor,
} from '../../src/engine/index.ts';
import { dropoutBits, maskByBits, keepBitsWords, type RandomOptions } from '../../src/engine/ops/random.ts';
import { binaryRaw } from '../../src/engine/ops/binary-raw.ts';
import { grid1d } from '../../src/engine/ops/launch.ts';

beforeAll(async () => {
  await engine();
});

describe('dropout', () => {
  it('elementwise: mask from the seeded generator, scaled by 1/(1-p), gradient through the mask', async () => {
    const n = 2 * 3 * 7 * 9;
    const xv = asF32(randArray(n, 1, 0.5, 2));
    const gv = asF32(randArray(n, 2));
    const p = 0.3;
    const keep = await read(bernoulli([2, 3, 7, 9], 1 - p, { seed: 77 }));
    const x = t32(xv, [2, 3, 7, 9], true);
    const y = dropout(x, p, true, { seed: 77 });
    const scale = Math.fround(1 / (1 - p));
    expectClose(await read(y), xv.map((v, i) => v * keep[i] * scale), { atol: 1e-6, rtol: 1e-6, what: 'forward' });
    const kept = keep.reduce((a, b) => a + b, 0) / n;
    expect(kept).toBeGreaterThan(0.6);
    expect(kept).toBeLessThan(0.8);
    backward(y, t32(gv, [2, 3, 7, 9]));
    expectClose(await read(x.grad!), gv.map((v, i) => v * keep[i] * scale), { atol: 1e-6, rtol: 1e-6, what: 'dx' });
    for (const t of [x, y, x.grad!]) t.dispose();
  });

  it('channel-wise (dropout2d): whole (sample, channel) planes kept or zeroed', async () => {
    const N = 3, C = 5, HW = 7 * 9;
    const xv = asF32(randArray(N * C * HW, 3, 0.5, 2));
    const keep = await read(bernoulli([N, C, 1, 1], 0.5, { seed: 5 }));
    const x = t32(xv, [N, C, 7, 9], true);
    const y = dropout2d(x, 0.5, true, { seed: 5 });
    expectClose(await read(y), xv.map((v, i) => v * keep[Math.floor(i / HW)] * 2), { atol: 1e-6, rtol: 1e-6 });
    backward(y, t32(new Float64Array(N * C * HW).fill(1), [N, C, 7, 9]));
    expectClose(await read(x.grad!), xv.map((_, i) => keep[Math.floor(i / HW)] * 2), { atol: 0, rtol: 0, what: 'dx' });
    expect(keep.some((v) => v === 0) && keep.some((v) => v === 1)).toBe(true);
    for (const t of [x, y, x.grad!]) t.dispose();
  });

  it('is the identity in evaluation and for p = 0; p = 1 zeroes everything', async () => {
    const xv = asF32(randArray(35, 4));
    const x = t32(xv, [1, 1, 5, 7]);
    for (const y of [dropout(x, 0.5, false), dropout2d(x, 0.5, false), dropout(x, 0)]) {
      expectClose(await read(y), xv, { atol: 0, rtol: 0 });
      y.dispose();
    }
    const z = dropout(x, 1);
    expectClose(await read(z), new Float64Array(35), { atol: 0, rtol: 0 });
    z.dispose();
    x.dispose();
  });

  it('gradient = central finite differences of the float64 reference (elementwise and channel-wise)', async () => {
    const [N, C, H, W] = [2, 3, 5, 3];
    const n = N * C * H * W;
    const xv = asF32(randArray(n, 11, -1, 1));
    const wv = asF32(randArray(n, 12, -1, 1));
    for (const [name, p, maskShape, fn] of [
      ['dropout', 0.35, [N, C, H, W], dropout],
      ['dropout2d', 0.6, [N, C, 1, 1], dropout2d],
    ] as const) {
      const keep = await read(bernoulli([...maskShape], 1 - p, { seed: 21 }));
      const per = n / keep.length;
      const scale = Math.fround(1 / (1 - p));
      const ref = (xs: Float64Array) => dot(xs.map((v, i) => v * keep[Math.floor(i / per)] * scale), wv);
      const x = t32(xv, [N, C, H, W], true);
      const w = t32(wv, [N, C, H, W]);
      scope(() => backward(sum(mul(fn(x, p, true, { seed: 21 }), w))));
      expectClose(await read(x.grad!), finiteDiff(ref, xv), { atol: 1e-4, rtol: 1e-4, what: name });
      for (const t of [x, w, x.grad!]) t.dispose();
    }
  });

  it('one dispatch forward, one backward; eval and p = 0 none', () => {
    const dev = runtime().device;
    const x = t32(asF32(randArray(60, 13)), [3, 4, 5], true);
    const g = t32(asF32(randArray(60, 14)), [3, 4, 5]);
    const d0 = dev.stats.dispatches;
    const y = dropout(x, 0.3, true, { seed: 3 });
    const d1 = dev.stats.dispatches;
    backward(y, g);
    const d2 = dev.stats.dispatches;
    expect([d1 - d0, d2 - d1]).toEqual([1, 1]);
    const e = dropout(x, 0.3, false);
    const z = dropout(x, 0);
    expect(dev.stats.dispatches).toBe(d2);
    for (const t of [x, g, y, e, z, x.grad!]) t.dispose();
  });

  it('scaledBernoulli draws what bernoulli draws from the global generator, times the value', async () => {
    manualSeed(9);
    const a = await read(bernoulli([37], 0.4));
    const a2 = await read(bernoulli([5], 0.4));
    const after = getRngState();
    manualSeed(9);
    const b = await read(scaledBernoulli([37], 0.4, 2.5));
    const b2 = await read(scaledBernoulli([5], 0.4, 2.5));
    expect(getRngState()).toEqual(after);
    expect(Array.from(b)).toEqual(Array.from(a, (v) => v * 2.5));
    expect(Array.from(b2)).toEqual(Array.from(a2, (v) => v * 2.5));
    expect(() => scaledBernoulli([2], 0.5, Infinity)).toThrow(/bernoulli: the kept value must be finite/);
  });

  it('rejects bad probabilities and shapes, naming the op', () => {
    const x = tensor(new Float32Array(6).fill(1), [2, 3]);
    expect(() => dropout(x, 1.5)).toThrow(/dropout: dropout probability must be in \[0, 1\], got 1.5/);
    expect(() => dropout2d(x, 0.5)).toThrow(/dropout2d: input must be 4-D \(N, C, H, W\) or 3-D \(C, H, W\), got shape \[2, 3\]/);
    x.dispose();
  });
});

// ------------------------------------------------------------- the keep mask as bits

const bitsOf = (f: Float32Array) => new Uint32Array(f.buffer, f.byteOffset, f.length);
const f32Data = async (t: Tensor) => bitsOf((await t.data()) as Float32Array);

/** A tensor of `len` f32 whose bits are all `word` (a NaN pattern no kernel writes). */
function poisoned(len: number, word: number, dtype: 'f32' | 'u32' = 'f32'): Tensor {
  const w = new Uint32Array(len).fill(word);
  return dtype === 'f32' ? tensor(new Float32Array(w.buffer), [len]) : tensor(w, [len], 'u32');
}

/** dropout before the keep bits: the f32 mask from scaledBernoulli, then x * mask. */
function twoDispatch(x: Tensor, p: number, opts: RandomOptions): { y: Tensor; mask: Tensor } {
  const mask = scaledBernoulli(x.shape, 1 - p, 1 / (1 - p), opts);
  return { y: binaryRaw('mul', x, mask), mask };
}

/** Where two word arrays first differ, or null: a readable failure over a million elements
 * (toEqual's diff of arrays that long takes minutes). */
function firstDiff(got: ArrayLike<number>, want: ArrayLike<number>): string | null {
  if (got.length !== want.length) return `length ${got.length}, want ${want.length}`;
  for (let i = 0; i < got.length; i++) if (got[i] !== want[i]) return `at ${i}: 0x${got[i].toString(16)}, want 0x${want[i].toString(16)}`;
  return null;
}

const POISON_Y = 0x7fbadbad;
const POISON_BITS = 0xdeadbeef;

describe('dropout with its keep mask as bits (dropoutBits, maskByBits)', () => {
  it('y, the bits and dx bit for bit the f32-mask result: odd sizes, views at offsets, poisoned outputs, NaN and infinite x', async () => {
    const p = 0.3;
    const kept = 1 / (1 - p);
    // offsets near 2^32 make the 128-bit counter carry inside a dispatch
    for (const [n, offset] of [[1, 0], [3, 5], [31, 0], [32, 1], [33, 2 ** 32 - 3], [1000, 7], [4099, 0], [1_000_003, 11]]) {
      const opts = { seed: 1000 + n, offset };
      const xv = asF32(randArray(n, n, -2, 2));
      if (n >= 10) [xv[2], xv[7], xv[n - 1]] = [NaN, Infinity, -Infinity];
      const xBase = t32([0, 0, 0, 0, 0, ...xv], [n + 5]);
      const x = xBase.view([n], [1], 5);
      const old = twoDispatch(x, p, opts);
      const want = await f32Data(old.y);
      const maskv = await old.mask.data();

      const yBase = poisoned(n + 7 + 4, POISON_Y);
      const bBase = poisoned(keepBitsWords(n) + 3 + 2, POISON_BITS, 'u32');
      const into = { y: yBase.view([n], [1], 7), bits: bBase.view([keepBitsWords(n)], [1], 3) };
      dropoutBits(x, 1 - p, kept, opts, into);
      const yAll = await f32Data(yBase);
      expect(firstDiff(yAll.subarray(7, 7 + n), want)).toBeNull();
      expect([...yAll.subarray(0, 7), ...yAll.subarray(7 + n)]).toEqual(new Array(11).fill(POISON_Y));

      const bAll = (await bBase.data()) as Uint32Array;
      const words = keepBitsWords(n);
      const wantBits = new Uint32Array(words);
      // element i = 4 (w + k words) + j is bit 4k + j of word w (random.wgsl's dropout_fwd)
      for (let i = 0; i < n; i++) if (maskv[i] !== 0) wantBits[(i >> 2) % words] |= 1 << (4 * Math.floor((i >> 2) / words) + (i & 3));
      expect(firstDiff(bAll.subarray(3, 3 + words), wantBits)).toBeNull();
      expect([...bAll.subarray(0, 3), ...bAll.subarray(3 + words)]).toEqual(new Array(5).fill(POISON_BITS));

      // the gradient from the bits equals g * mask, with g and dx views at offsets too
      const gv = asF32(randArray(n, n + 1, -3, 3));
      const gBase = t32([0, 0, ...gv], [n + 2]);
      const g = gBase.view([n], [1], 2);
      const wantDx = await f32Data(binaryRaw('mul', g, old.mask));
      const dxBase = poisoned(n + 9, POISON_Y);
      maskByBits(g, into.bits, kept, dxBase.view([n], [1], 9));
      const dxAll = await f32Data(dxBase);
      expect(firstDiff(dxAll.subarray(9), wantDx)).toBeNull();
      expect(Array.from(dxAll.subarray(0, 9))).toEqual(new Array(9).fill(POISON_Y));
      for (const t of [xBase, x, old.y, old.mask, yBase, bBase, into.y, into.bits, gBase, g, dxBase]) t.dispose();
    }
  });

  it('dropout(): y and dx bit for bit the f32-mask result (strided x too); the generator advances ceil(n/4) blocks as before', async () => {
    const cases: [number[], number[] | null][] = [[[1], null], [[3, 37], null], [[5, 7, 9], [2, 0, 1]]];
    for (const [shape, perm] of cases) {
      const n = shape.reduce((a, b) => a * b, 1);
      const base = t32(asF32(randArray(n, n + 3, -1, 1)), shape, true);
      const x = perm ? permute(base, perm) : base;
      manualSeed(41);
      const old = twoDispatch(x, 0.45, {});
      const oldState = getRngState();
      const want = await f32Data(old.y);
      manualSeed(41);
      const y = dropout(x, 0.45);
      expect(getRngState()).toEqual(oldState);
      expect(oldState.offset).toBe(Math.ceil(n / 4));
      expect(firstDiff(await f32Data(y), want)).toBeNull();
      // a second call continues from the advanced offset, as the two-dispatch path did
      const old2 = twoDispatch(x, 0.45, { seed: getRngState().seed, offset: getRngState().offset });
      const y2 = dropout(x, 0.45);
      expect(getRngState().offset).toBe(2 * Math.ceil(n / 4));
      expect(firstDiff(await f32Data(y2), await f32Data(old2.y))).toBeNull();

      const g = t32(asF32(randArray(n, n + 4, -1, 1)), [...y.shape]);
      backward(y, g);
      const wantDx = binaryRaw('mul', g, old.mask);
      const wantGrad = perm ? permute(wantDx, perm.map((_, i) => perm.indexOf(i))) : wantDx;
      expect(firstDiff(await f32Data(base.grad!), await f32Data(wantGrad))).toBeNull();
      for (const t of new Set([base, x, old.y, old.mask, y, old2.y, old2.mask, y2, g, wantDx, wantGrad, base.grad!])) t.dispose();
    }
  });

  it('keeps each element with probability 1 - p (popcount of the bits over 1e6 draws)', async () => {
    const n = 1_000_003;
    const x = t32(new Float64Array(n).fill(1), [n]);
    for (const p of [0.1, 0.3, 0.5, 0.9]) {
      const { y, bits } = dropoutBits(x, 1 - p, 1 / (1 - p), { seed: 2026 });
      let count = 0;
      for (let w of (await bits.data()) as Uint32Array) for (; w !== 0; w &= w - 1) count++;
      // standard error sqrt(p (1 - p) / n) <= 5e-4: bound at about 5 of them
      expect(Math.abs(count / n - (1 - p))).toBeLessThan(0.0025);
      y.dispose();
      bits.dispose();
    }
    x.dispose();
  });

  it('thread index past the first grid row: one-invocation workgroups, 2 rows of the grid', async () => {
    const rt = runtime();
    const n = 32 * 40_000 - 5;
    const words = keepBitsWords(n);
    const grid = grid1d(words, 1);
    expect(grid[1]).toBe(2);
    const x = t32(asF32(randArray(n, 77, -1, 1)), [n]);
    const g = t32(asF32(randArray(n, 78, -1, 1)), [n]);
    const ref = dropoutBits(x, 0.6, 1 / 0.6, { seed: 8, offset: 3 });
    const refDx = maskByBits(g, ref.bits, 1 / 0.6);
    // Params as kernels/random.wgsl lays it out: n, off_out, key, counter, alpha, beta, off_src, off_keep
    const params = new Uint32Array(12);
    const f = new Float32Array(params.buffer);
    [params[0], params[2], params[4]] = [n, 8, 3];
    [f[8], f[9]] = [0.6, 1 / 0.6];
    const y = poisoned(n, POISON_Y);
    const bits = poisoned(words, POISON_BITS, 'u32');
    const fwd = rt.kernels.get('random', 'dropout_fwd', { constants: { WG: 1 } });
    rt.device.dispatch(fwd, [y.bufferFor('test'), x.bufferFor('test'), bits.bufferFor('test')], params, grid);
    const dx = poisoned(n, POISON_Y);
    const bwd = rt.kernels.get('random', 'dropout_bwd', { constants: { WG: 1 } });
    rt.device.dispatch(bwd, [dx.bufferFor('test'), g.bufferFor('test'), bits.bufferFor('test')], params, grid);
    expect(firstDiff(await f32Data(y), await f32Data(ref.y))).toBeNull();
    expect(firstDiff(await bits.data(), await ref.bits.data())).toBeNull();
    expect(firstDiff(await f32Data(dx), await f32Data(refDx))).toBeNull();
    for (const t of [x, g, ref.y, ref.bits, refDx, y, bits, dx]) t.dispose();
  });

  it('needs no subgroups: the same bits under the minimal caps', async () => {
    const dev = runtime().device;
    const x = t32(asF32(randArray(1001, 90, -1, 1)), [7, 11, 13]);
    const a = dropoutBits(x, 0.5, 2, { seed: 4 });
    dev.restrictCaps({ subgroups: false, simd8: false, maxInvocations: 256 });
    try {
      const b = dropoutBits(x, 0.5, 2, { seed: 4 });
      expect(firstDiff(await f32Data(b.y), await f32Data(a.y))).toBeNull();
      expect(firstDiff(await b.bits.data(), await a.bits.data())).toBeNull();
      b.y.dispose();
      b.bits.dispose();
    } finally {
      dev.restrictCaps(null);
    }
    for (const t of [x, a.y, a.bits]) t.dispose();
  });

  it('rejects strided, mistyped, mis-sized and aliased operands, naming dropout', () => {
    const x = t32(asF32(randArray(12, 5)), [3, 4]);
    const bits = dropoutBits(x, 0.5, 2, { seed: 1 }).bits;
    expect(() => dropoutBits(permute(x, [1, 0]), 0.5, 2)).toThrow(/dropout: x must be row-major/);
    expect(() => dropoutBits(tensor(new Uint32Array(4), [4], 'u32'), 0.5, 2)).toThrow(/dropout: x must be f32, got u32/);
    expect(() => dropoutBits(x, 1.5, 2)).toThrow(/dropout: p must be in \[0, 1\]/);
    expect(() => maskByBits(t32(new Float64Array(40), [40]), bits, 2)).toThrow(/dropout: the keep bits must hold 2 elements/);
    expect(() => dropoutBits(x, 0.5, 2, { seed: 1 }, { y: x, bits })).toThrow(/dropout: the input and the outputs must lie in distinct buffers/);
    expect(() => dropoutBits(x, 0.5, 2, { seed: 1 }, { y: x, bits })).toThrow(OpError);
    for (const t of [x, bits]) t.dispose();
  });
});
