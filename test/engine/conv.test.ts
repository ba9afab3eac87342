import { describe, it, expect, beforeAll } from 'vitest';
import { engine, t32, read } from '../helpers/gpu.ts';
import { randArray, expectClose, finiteDiff, dot } from '../helpers/reference.ts';
import {
  conv2d, conv2dForwardRaw, conv2dInputGradRaw, conv2dWeightGradRaw, backward, scope, tensor,
  type ConvVariant, type Conv2dOptions,
} from '../../src/engine/index.ts';
import { convRef, convBackRef, outSize, actRef, actDerivFromPre, geo, optsOf, convData, type Geo, type Act } from './conv-ref.ts';

beforeAll(async () => {
  await engine();
});

// The GEMM kernels are specialised per shape and a pipeline takes seconds to build on a software
// adapter: few GEMM cases, each covering several features at once.
const CASES: [string, Geo, ConvVariant[]][] = [
  ['3x3 s1 p1, 3 channels, 7x9', geo({ n: 2, c: 3, h: 7, w: 9, oc: 5, kh: 3, kw: 3, ph: 1, pw: 1 }), ['direct']],
  ['3x3 stride (2,3) padding 2, odd sizes (input gradient by stride phases)', geo({ n: 2, c: 3, h: 7, w: 9, oc: 6, kh: 3, kw: 3, sh: 2, sw: 3, ph: 2, pw: 2 }), ['gemm']],
  ['1x1 s2 (WRN shortcut), 45 rows (64-row tiles)', geo({ n: 2, c: 9, h: 7, w: 9, oc: 45, kh: 1, kw: 1, sh: 2, sw: 2 }), ['gemm']],
  ['3x2 kernel, stride (2,1), padding (3,1), dilation 2', geo({ n: 2, c: 4, h: 9, w: 7, oc: 11, kh: 3, kw: 2, sh: 2, sw: 1, ph: 3, pw: 1, dh: 2, dw: 2 }), ['gemm', 'direct']],
  ['5x5 p2, groups 2 (25 rows per group: 32-row tiles), several K and column tiles', geo({ n: 3, c: 18, h: 11, w: 13, oc: 50, kh: 5, kw: 5, ph: 2, pw: 2, groups: 2 }), ['gemm']],
  ['depthwise 3x3 s2', geo({ n: 2, c: 5, h: 7, w: 9, oc: 5, kh: 3, kw: 3, sh: 2, sw: 2, ph: 1, pw: 1, groups: 5 }), ['direct']],
  ['depthwise multiplier 2', geo({ n: 1, c: 3, h: 7, w: 9, oc: 6, kh: 3, kw: 3, ph: 1, pw: 1, groups: 3 }), ['direct']],
];

describe('conv2d raw kernels against float64', () => {
  for (const [name, g, variants] of CASES) {
    for (const variant of variants) {
      it(`${name} [${variant}]`, async () => {
        const d = convData(g, 11 + g.oc);
        const [oh, ow] = outSize(g);
        const yRef = convRef(g, d.x, d.w, d.b);
        const { dx, dw } = convBackRef(g, d.x, d.w, d.gy);
        const got = await scope(() => {
          const x = t32(d.x, [g.n, g.c, g.h, g.w]);
          const w = t32(d.w, [g.oc, g.c / g.groups, g.kh, g.kw]);
          const b = t32(d.b, [g.oc]);
          const gy = t32(d.gy, [g.n, g.oc, oh, ow]);
          return {
            y: conv2dForwardRaw(x, w, b, optsOf(g), variant),
            dx: conv2dInputGradRaw(gy, w, x.shape, optsOf(g), variant),
            dw: conv2dWeightGradRaw(gy, x, w.shape, optsOf(g), variant),
          };
        });
        expectClose(await read(got.y), yRef, { atol: 1e-4, rtol: 1e-4, what: 'forward' });
        expectClose(await read(got.dx), dx, { atol: 1e-4, rtol: 1e-4, what: 'input grad' });
        expectClose(await read(got.dw), dw, { atol: 2e-4, rtol: 1e-4, what: 'weight grad' });
        for (const t of Object.values(got)) t.dispose();
      });
    }
  }

  it('weight gradient split over batch and space (partial sums reduced)', async () => {
    // 4*15*17 = 1020 reduction steps: two splits; 70 rows: 128-row tiles
    const g = geo({ n: 4, c: 7, h: 15, w: 17, oc: 70, kh: 3, kw: 3, ph: 1, pw: 1 });
    const d = convData(g, 5);
    const { dw } = convBackRef(g, d.x, d.w, d.gy);
    const got = scope(() => conv2dWeightGradRaw(t32(d.gy, [4, 70, 15, 17]), t32(d.x, [4, 7, 15, 17]), [70, 7, 3, 3], optsOf(g), 'gemm'));
    expectClose(await read(got), dw, { atol: 5e-4, rtol: 1e-4, what: 'weight grad' });
    got.dispose();
  });

  it('accepts views with an offset and non-contiguous inputs', async () => {
    const g = geo({ n: 2, c: 3, h: 5, w: 7, oc: 4, kh: 3, kw: 3, ph: 1, pw: 1 });
    const d = convData(g, 9);
    const yRef = convRef(g, d.x, d.w, null);
    const got = scope(() => {
      // x stored as [N, H, W, C] and permuted to NCHW: a strided view
      const nhwc = new Float64Array(d.x.length);
      for (let n = 0; n < 2; n++) for (let c = 0; c < 3; c++) for (let i = 0; i < 35; i++) nhwc[(n * 35 + i) * 3 + c] = d.x[(n * 3 + c) * 35 + i];
      const xs = t32(nhwc, [2, 5, 7, 3]);
      const x = xs.view([2, 3, 5, 7], [105, 1, 21, 3], 0);
      const wbig = t32([0.5, ...d.w], [1 + d.w.length]);
      const w = wbig.view([4, 3, 3, 3], [27, 9, 3, 1], 1);
      return conv2dForwardRaw(x, w, null, optsOf(g));
    });
    expectClose(await read(got), yRef, { atol: 1e-4, rtol: 1e-4 });
    got.dispose();
  });
});

describe('conv2d autograd', () => {
  const acts: Act[] = [null, 'relu', 'leakyRelu', 'tanh'];
  for (const act of acts) {
    it(`gradients of x, w, bias with fused ${act ?? 'no'} activation, checked by finite differences`, async () => {
      const g = geo({ n: 2, c: 3, h: 7, w: 9, oc: 4, kh: 3, kw: 3, sh: 2, sw: 2, ph: 2, pw: 2 });
      const d = convData(g, 21);
      const [oh, ow] = outSize(g);
      const alpha = 0.2;
      const f = (x: Float64Array, w: Float64Array, b: Float64Array): Float64Array => convRef(g, x, w, b).map((v) => actRef(v, act, alpha));
      // reference gradient: chain the activation derivative, then the conv backward
      const pre = convRef(g, d.x, d.w, d.b);
      const gpre = d.gy.map((v, i) => v * actDerivFromPre(pre[i], act, alpha));
      const ref = convBackRef(g, d.x, d.w, gpre);
      expectClose(ref.dx, finiteDiff((x) => dot(f(x, d.w, d.b), d.gy), d.x), { atol: 1e-6, rtol: 1e-5, what: 'ref dx vs FD' });
      expectClose(ref.dw, finiteDiff((w) => dot(f(d.x, w, d.b), d.gy), d.w), { atol: 1e-6, rtol: 1e-5, what: 'ref dw vs FD' });
      expectClose(ref.db, finiteDiff((b) => dot(f(d.x, d.w, b), d.gy), d.b), { atol: 1e-6, rtol: 1e-5, what: 'ref db vs FD' });

      const x = t32(d.x, [g.n, g.c, g.h, g.w], true);
      const w = t32(d.w, [g.oc, g.c, g.kh, g.kw], true);
      const b = t32(d.b, [g.oc], true);
      const gy = t32(d.gy, [g.n, g.oc, oh, ow]);
      const y = conv2d(x, w, b, { ...optsOf(g), activation: act, negativeSlope: alpha });
      expectClose(await read(y), f(d.x, d.w, d.b), { atol: 1e-4, rtol: 1e-4, what: 'forward' });
      backward(y, gy);
      expectClose(await read(x.grad!), ref.dx, { atol: 1e-4, rtol: 1e-4, what: 'dx' });
      expectClose(await read(w.grad!), ref.dw, { atol: 2e-4, rtol: 1e-4, what: 'dw' });
      expectClose(await read(b.grad!), ref.db, { atol: 2e-4, rtol: 1e-4, what: 'db' });
      for (const t of [x, w, b, gy, y, x.grad!, w.grad!, b.grad!]) t.dispose();
    });
  }

  it('skips the input gradient when the input does not require one', async () => {
    const x = t32(randArray(2 * 3 * 5 * 5, 3), [2, 3, 5, 5]);
    const w = t32(randArray(4 * 3 * 3 * 3, 4), [4, 3, 3, 3], true);
    const y = conv2d(x, w, null, { padding: 1 });
    backward(y, t32(randArray(2 * 4 * 25, 5), [2, 4, 5, 5]));
    expect(x.grad).toBeNull();
    expect(w.grad?.shape).toEqual([4, 3, 3, 3]);
    for (const t of [x, w, y, w.grad!]) t.dispose();
  });
});

describe('conv2d bad input', () => {
  it('names the op and the shapes', () => {
    const x = tensor(new Float32Array(2 * 3 * 7 * 9).fill(1), [2, 3, 7, 9]);
    const w4 = tensor(new Float32Array(5 * 4 * 3 * 3).fill(1), [5, 4, 3, 3]);
    const w3 = tensor(new Float32Array(5 * 3 * 3 * 3).fill(1), [5, 3, 3, 3]);
    const big = tensor(new Float32Array(5 * 3 * 11 * 3).fill(1), [5, 3, 11, 3]);
    const x3 = tensor(new Float32Array(3 * 7 * 9).fill(1), [3, 7, 9]);
    expect(() => conv2d(x, w4)).toThrow(/conv2d: input \[2, 3, 7, 9\] has 3 channels but weight \[5, 4, 3, 3\] expects 4/);
    expect(() => conv2d(x, big, null, { padding: 1 })).toThrow(/conv2d: kernel 11x3 .* larger than the padded input 9x11/);
    expect(() => conv2d(x3, w3)).toThrow(/conv2d: input must be 4-D \(N, C, H, W\), got shape \[3, 7, 9\]/);
    expect(() => conv2d(x, w3, null, { groups: 2 })).toThrow(/conv2d: .*divisible by groups \(2\)/);
    expect(() => conv2d(x, w3, tensor(new Float32Array(4), [4]))).toThrow(/conv2d: bias must have shape \[5\], got \[4\]/);
    expect(() => conv2d(x, w3, null, { stride: 0 })).toThrow(/conv2d: stride must be an integer >= 1/);
    for (const t of [x, w4, w3, big, x3]) t.dispose();
  });
});
