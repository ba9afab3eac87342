/**
 * Destination passing in backward (BackwardFn's `into`): conv2d's weight and bias gradients and
 * batch norm's per-channel weight and bias gradients are written straight into the parameters'
 * arena gradient slots, with no copy_strided dispatch per parameter. Gradients equal, bit for bit,
 * those of the same model over plain leaf tensors (which take the old path); a parameter used
 * twice in one op or by two ops, accumulation over two backward calls, zeroGrad, a caller's
 * gradient that shares the slots' buffer, and the raw weight gradient into a slot for every kernel
 * family (the neighbouring slots untouched).
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { engine, t32, read } from '../helpers/gpu.ts';
import { randArray, asF32 } from '../helpers/reference.ts';
import {
  Parameter, releaseParameterArena, mul, sum, conv2d, batchNorm2d, scope, backward, zeroGradOf, runtime,
  type Tensor, type Conv2dOptions,
} from '../../src/engine/index.ts';
import { conv2dWeightGradRaw, conv2dBiasGradRaw, type ConvVariant } from '../../src/engine/ops/conv.ts';
import { caps } from '../../src/engine/ops/launch.ts';

beforeAll(async () => {
  await engine();
});
afterAll(() => releaseParameterArena());

/** Runs `fn` and counts its dispatches by entry point. */
function dispatches(fn: () => void): Map<string, number> {
  const dev = runtime().device as unknown as { dispatch: (...a: unknown[]) => void };
  const byEntry = new Map<string, number>();
  const orig = dev.dispatch;
  dev.dispatch = function (this: unknown, ...a: unknown[]) {
    const entry = String((a[0] as { label: string }).label).split(':')[1];
    byEntry.set(entry, (byEntry.get(entry) ?? 0) + 1);
    return orig.apply(this, a);
  };
  try {
    fn();
  } finally {
    dev.dispatch = orig;
  }
  return byEntry;
}

interface Spec {
  values: Float64Array;
  shape: number[];
}

const spec = (shape: number[], seed: number, lo = -0.5, hi = 0.5): Spec => ({ values: asF32(randArray(shape.reduce((a, b) => a * b, 1), seed, lo, hi)), shape });

/** `run` over a plain leaf holding `v`, then over a Parameter holding it: their gradients must be
 * the same bit for bit (the Parameter's through its slot, with or without a copy). */
async function expectSameAsPlainLeaf(v: Spec, run: (q: Tensor) => void): Promise<void> {
  const plain = t32(v.values, v.shape, true);
  run(plain);
  const want = Array.from(await read(plain.grad!));
  plain.grad!.dispose();
  plain.dispose();
  const p = Parameter.empty(v.shape);
  p.upload(Float32Array.from(v.values));
  run(p);
  expect(Array.from(await read(p.grad!))).toEqual(want);
  p.dispose();
}

// conv (bias) -> bn relu -> conv (no bias, stride 2) -> bn -> weighted sum
const SPECS = {
  w1: spec([4, 3, 3, 3], 11),
  b1: spec([4], 12),
  g1: spec([4], 13, 0.5, 1.5),
  be1: spec([4], 14),
  w2: spec([6, 4, 3, 3], 15),
  g2: spec([6], 16, 0.5, 1.5),
  be2: spec([6], 17),
};
type Name = keyof typeof SPECS;
const NAMES = Object.keys(SPECS) as Name[];
const X = spec([2, 3, 8, 8], 18, -1, 1);
const W = spec([2, 6, 4, 4], 19, -1, 1);

function makeParams(): Record<Name, Parameter> {
  const out = {} as Record<Name, Parameter>;
  for (const n of NAMES) {
    const p = Parameter.empty(SPECS[n].shape);
    p.upload(Float32Array.from(SPECS[n].values));
    out[n] = p;
  }
  return out;
}

function makePlain(): Record<Name, Tensor> {
  const out = {} as Record<Name, Tensor>;
  for (const n of NAMES) out[n] = t32(SPECS[n].values, SPECS[n].shape, true);
  return out;
}

function model(p: Record<Name, Tensor>, x: Tensor, w: Tensor): Tensor {
  const h1 = conv2d(x, p.w1, p.b1, { padding: 1 });
  const a1 = batchNorm2d(h1, p.g1, p.be1, { activation: 'relu' });
  const h2 = conv2d(a1, p.w2, null, { padding: 1, stride: 2 });
  const a2 = batchNorm2d(h2, p.g2, p.be2);
  return sum(mul(a2, w));
}

async function grads(p: Record<Name, Tensor>): Promise<Record<Name, number[]>> {
  const out = {} as Record<Name, number[]>;
  for (const n of NAMES) out[n] = Array.from(await read(p[n].grad!));
  return out;
}

/** The gradients of the plain-leaf model (the copy-free adopt path, no slots). */
async function plainGrads(): Promise<Record<Name, number[]>> {
  const p = makePlain();
  const x = t32(X.values, X.shape);
  const w = t32(W.values, W.shape);
  scope(() => backward(model(p, x, w)));
  const g = await grads(p);
  for (const n of NAMES) {
    p[n].grad!.dispose();
    p[n].dispose();
  }
  x.dispose();
  w.dispose();
  return g;
}

describe('parameter gradients written into their slots', () => {
  it('conv2d (with and without bias) and batchNorm2d: no copy dispatch, gradients = the plain-leaf path bit for bit', async () => {
    const ref = await plainGrads();
    const p = makeParams();
    const x = t32(X.values, X.shape);
    const w = t32(W.values, W.shape);
    const byEntry = dispatches(() => scope(() => backward(model(p, x, w))));
    expect(byEntry.get('copy_strided') ?? 0).toBe(0);
    expect(byEntry.get('bn_bwd')).toBe(2);
    const got = await grads(p);
    for (const n of NAMES) {
      expect(got[n], n).toEqual(ref[n]);
      expect(got[n].every(Number.isFinite), n).toBe(true);
      // the gradient is the slot itself
      expect(p[n].grad!.bufferFor('t')).toBe(p[n].arena.grad().bufferFor('t'));
    }
    x.dispose();
    w.dispose();
    for (const n of NAMES) p[n].dispose();
  });

  it('accumulates over two backward calls without zeroGrad; zeroGrad (none, then zero) starts again', async () => {
    const ref = await plainGrads();
    const p = makeParams();
    const x = t32(X.values, X.shape);
    const w = t32(W.values, W.shape);
    const step = () => scope(() => backward(model(p, x, w)));
    step();
    step();
    const twice = await grads(p);
    for (const n of NAMES) expect(twice[n], `${n} twice`).toEqual(ref[n].map((v) => Math.fround(v + v)));
    const params = NAMES.map((n) => p[n]);
    zeroGradOf(params, true);
    for (const q of params) expect(q.grad).toBeNull();
    step();
    const fresh = await grads(p);
    for (const n of NAMES) expect(fresh[n], `${n} after zeroGrad (none)`).toEqual(ref[n]);
    zeroGradOf(params, false);
    step();
    const fromZero = await grads(p);
    for (const n of NAMES) expect(fromZero[n], `${n} after zeroGrad (zero)`).toEqual(ref[n]);
    x.dispose();
    w.dispose();
    for (const q of params) q.dispose();
  });

  it('a parameter used twice in one op (mul(p, p), conv2d(p, p), batchNorm2d(x, p, p)) gets the sum', async () => {
    const v = asF32(randArray(9, 21));
    const p = Parameter.empty([9]);
    p.upload(Float32Array.from(v));
    scope(() => backward(sum(mul(p, p))));
    expect(Array.from(await read(p.grad!))).toEqual(Array.from(v, (a) => Math.fround(2 * a)));
    p.dispose();

    // conv2d(p, p): p is both the input [2, 2, 3, 3] and the weight [2, 2, 3, 3]
    const cv = spec([2, 2, 3, 3], 22);
    const cw = spec([2, 2, 3, 3], 23, -1, 1);
    const run = (q: Tensor) => {
      const wt = t32(cw.values, cw.shape);
      scope(() => backward(sum(mul(conv2d(q, q, null, { padding: 1 }), wt))));
      wt.dispose();
    };
    await expectSameAsPlainLeaf(cv, run);

    // batchNorm2d(x, p, p): the slot takes dweight, dbias is added to it
    const bx = spec([2, 3, 4, 4], 24, -1, 1);
    const bw = spec([2, 3, 4, 4], 25, -1, 1);
    const gv = spec([3], 26, 0.5, 1.5);
    const runBn = (q: Tensor) => {
      const xt = t32(bx.values, bx.shape);
      const wt = t32(bw.values, bw.shape);
      scope(() => backward(sum(mul(batchNorm2d(xt, q, q), wt))));
      xt.dispose();
      wt.dispose();
    };
    await expectSameAsPlainLeaf(gv, runBn);
  });

  it('a parameter used by two ops (one conv weight applied twice): the second adds into the slot', async () => {
    const wv = spec([3, 3, 3, 3], 31);
    const xv = spec([2, 3, 5, 5], 32, -1, 1);
    const run = (q: Tensor): void => {
      const xt = t32(xv.values, xv.shape);
      scope(() => backward(sum(conv2d(conv2d(xt, q, null, { padding: 1 }), q, null, { padding: 1 }))));
      xt.dispose();
    };
    await expectSameAsPlainLeaf(wv, run);
  });

  it("a caller's gradient in the slots' buffer: no slot is offered (no read and write of one buffer)", async () => {
    const wv = spec([4, 3, 3, 3], 41);
    const bv = spec([4], 42);
    const xv = spec([2, 3, 5, 5], 43, -1, 1);
    const gv = spec([2, 4, 5, 5], 44, -1, 1);
    const plainW = t32(wv.values, wv.shape, true);
    const plainB = t32(bv.values, bv.shape, true);
    const xt = t32(xv.values, xv.shape);
    const gt = t32(gv.values, gv.shape);
    scope(() => backward(conv2d(xt, plainW, plainB, { padding: 1 }), gt));
    const wantW = Array.from(await read(plainW.grad!));
    const wantB = Array.from(await read(plainB.grad!));
    // the seed gradient is another parameter's gradient slot, in the same arena buffer
    const seed = Parameter.empty(gv.shape);
    seed.grad = t32(gv.values, gv.shape);
    const p = Parameter.empty(wv.shape);
    p.upload(Float32Array.from(wv.values));
    const b = Parameter.empty(bv.shape);
    b.upload(Float32Array.from(bv.values));
    expect(p.gradSlot().bufferFor('t')).toBe(seed.grad!.bufferFor('t'));
    scope(() => backward(conv2d(xt, p, b, { padding: 1 }), seed.grad!));
    expect(Array.from(await read(p.grad!))).toEqual(wantW);
    expect(Array.from(await read(b.grad!))).toEqual(wantB);
    expect(Array.from(await read(seed.grad!))).toEqual(Array.from(gv.values));
    for (const t of [plainW.grad!, plainB.grad!, plainW, plainB, xt, gt, seed, p, b]) t.dispose();
  });
});

describe('conv2dWeightGradRaw / conv2dBiasGradRaw into a destination', () => {
  const cases: [string, number[], number[], Conv2dOptions][] = [
    ['3-channel stem', [2, 3, 8, 8], [8, 3, 3, 3], { padding: 1 }],
    ['16 -> 16, split reduction', [2, 16, 20, 20], [16, 16, 3, 3], { padding: 1 }],
    ['strided 1x1', [2, 8, 9, 9], [12, 8, 1, 1], { stride: 2 }],
    ['depthwise', [2, 8, 6, 6], [8, 1, 3, 3], { padding: 1, groups: 8 }],
  ];
  const variants: ConvVariant[] = ['auto', 'gemm', 'direct', 'simd8'];
  for (const [name, xs, ws, opts] of cases) {
    it(`${name}: every variant writes the slot, equal to its own output, neighbours untouched`, async () => {
      const oh = Math.floor((xs[2] + 2 * ((opts.padding as number) ?? 0) - ws[2]) / ((opts.stride as number) ?? 1)) + 1;
      const ow = Math.floor((xs[3] + 2 * ((opts.padding as number) ?? 0) - ws[3]) / ((opts.stride as number) ?? 1)) + 1;
      const dyShape = [xs[0], ws[0], oh, ow];
      const x = t32(randArray(xs.reduce((a, b) => a * b), 51), xs);
      const dy = t32(randArray(dyShape.reduce((a, b) => a * b), 52), dyShape);
      // three neighbouring parameters: the middle one's slot is the destination
      const before = Parameter.empty(ws);
      const p = Parameter.empty(ws);
      const bias = Parameter.empty([ws[0]]);
      const after = Parameter.empty(ws);
      const mark = (q: Parameter, v: number) => {
        q.grad = t32(new Array(q.size).fill(v), q.shape);
      };
      for (const v of variants) {
        if (v === 'simd8' && (!caps().simd8 || (opts.groups ?? 1) !== 1)) continue;
        mark(before, 7);
        mark(after, 9);
        p.grad = null;
        const own = conv2dWeightGradRaw(dy, x, ws, opts, v);
        const into = conv2dWeightGradRaw(dy, x, ws, opts, v, p.gradSlot());
        expect(into, v).toBe(p.gradSlot());
        expect(Array.from(await read(into)), v).toEqual(Array.from(await read(own)));
        own.dispose();
        expect((await read(before.grad!)).every((a) => a === 7), `${v}: slot before`).toBe(true);
        expect((await read(after.grad!)).every((a) => a === 9), `${v}: slot after`).toBe(true);
      }
      const ownB = conv2dBiasGradRaw(dy);
      expect(conv2dBiasGradRaw(dy, bias.gradSlot())).toBe(bias.gradSlot());
      expect(Array.from(await read(bias.gradSlot()))).toEqual(Array.from(await read(ownB)));
      ownB.dispose();
      expect(() => conv2dWeightGradRaw(dy, x, ws, opts, 'auto', bias.gradSlot())).toThrow(/destination/);
      for (const t of [x, dy, before, p, bias, after]) t.dispose();
    });
  }
});
