// conv2d on matmul's simd8 product (src/engine/simd8/conv.ts): the packing gathers of the
// forward, input gradient (whole kernel, and by stride phases with the phases no tap reaches
// left out) and weight gradient against the float64 reference, on odd shapes: 3 channels, 7x9
// images, strides with odd sizes, padding > 1, dilation, K over several chunks, images in several
// groups (a small texture budget; the weight gradient's groups added into dw by their products,
// bit for bit the partial sums added in order), bias and each fused activation. Outputs poisoned
// by engine().
// Needs subgroups of exactly 8 lanes (lavapipe); elsewhere only the fallback choice is checked.
import { describe, it, expect, beforeAll, afterEach } from 'vitest';
import { engine, t32, read } from '../helpers/gpu.ts';
import { randArray, expectClose } from '../helpers/reference.ts';
import { conv2d, conv2dForwardRaw, conv2dInputGradRaw, conv2dWeightGradRaw, conv2dKernelChoice, backward, scope, runtime, type Conv2dOptions } from '../../src/engine/index.ts';
import { planSimd8 } from '../../src/engine/simd8/matmul.ts';
import { convSimd8, convDirect8 } from '../../src/engine/tuning.ts';
import { caps } from '../../src/engine/ops/launch.ts';
import { convRef, convBackRef, outSize, actRef, actDerivFromPre, geo, optsOf, convData, type Geo, type Act } from './conv-ref.ts';

beforeAll(async () => {
  await engine();
});

const BUDGET = convSimd8.textureBudget;
afterEach(() => {
  convSimd8.textureBudget = BUDGET;
  convSimd8.enabled = true;
  convDirect8.dgrad = true;
  convDirect8.narrowForward = true;
});

const SIMD8 = await engine().then(() => caps().simd8);

// [name, geometry, texture budget (bytes) or 0 for the default; 1: one image's panels]
const CASES: [string, Geo, number][] = [
  ['3 channels, 7x9, 3x3 p1, 5 outputs', geo({ n: 2, c: 3, h: 7, w: 9, oc: 5, kh: 3, kw: 3, ph: 1, pw: 1 }), 0],
  ['3x3 stride (2,3) padding 2, odd sizes (6 stride phases)', geo({ n: 3, c: 3, h: 7, w: 9, oc: 6, kh: 3, kw: 3, sh: 2, sw: 3, ph: 2, pw: 2 }), 0],
  ['1x1 stride 2 (3 of 4 phases reached by no tap), 19 outputs', geo({ n: 2, c: 9, h: 7, w: 9, oc: 19, kh: 1, kw: 1, sh: 2, sw: 2 }), 0],
  ['3x2 kernel, stride (2,1), padding (3,1), dilation 2 (unphased strided input gradient)', geo({ n: 2, c: 4, h: 9, w: 7, oc: 11, kh: 3, kw: 2, sh: 2, sw: 1, ph: 3, pw: 1, dh: 2, dw: 2 }), 0],
  ['K = 1125 over two chunks, 37 rows (three 16-row blocks)', geo({ n: 2, c: 45, h: 5, w: 7, oc: 37, kh: 5, kw: 5, ph: 2, pw: 2 }), 0],
  // row widths multiple of 4: the T pack's window path (one source row per texel)
  ['window path: 8 wide, 3x3 p1', geo({ n: 2, c: 3, h: 5, w: 8, oc: 6, kh: 3, kw: 3, ph: 1, pw: 1 }), 0],
  ['window path: 15 wide, 3x3 s2 p1 (phases 8 wide, odd phases past the image in their last column)', geo({ n: 2, c: 4, h: 7, w: 15, oc: 9, kh: 3, kw: 3, sh: 2, sw: 2, ph: 1, pw: 1 }), 0],
  ['window path: 12 wide, 3x3 dilation 2 padding 2', geo({ n: 2, c: 3, h: 6, w: 12, oc: 5, kh: 3, kw: 3, ph: 2, pw: 2, dh: 2, dw: 2 }), 0],
  ['window path: 5x5 stride (1,2) padding 2, 15 wide (phases of 3 and 2 taps per row)', geo({ n: 2, c: 3, h: 6, w: 15, oc: 5, kh: 5, kw: 5, sh: 1, sw: 2, ph: 2, pw: 2 }), 0],
  // 32 columns per image: whole panels
  ['whole panels per image: 4x8, 3x3 p1', geo({ n: 3, c: 5, h: 4, w: 8, oc: 7, kh: 3, kw: 3, ph: 1, pw: 1 }), 0],
  ['whole panels per image: 8x16, 3x3 s2 p1 (4x8 outputs and phases)', geo({ n: 3, c: 4, h: 8, w: 16, oc: 6, kh: 3, kw: 3, sh: 2, sw: 2, ph: 1, pw: 1 }), 0],
  // forward K = 45 (texture rows 48): 2 layers per group -> 2 images per group
  ['5 images in groups of 2, 2, 1 of whole panels: 4x8, 3x3 p1', geo({ n: 5, c: 5, h: 4, w: 8, oc: 7, kh: 3, kw: 3, ph: 1, pw: 1 }), 2 * 128 * 48],
  // 4x3 outputs (and 4x3 positions per phase) per image: 2 images per 32-column panel
  ['5 images in groups of 2, 2, 1 (a 1-panel texture budget), 3x3 s2 p1', geo({ n: 5, c: 5, h: 7, w: 5, oc: 17, kh: 3, kw: 3, sh: 2, sw: 2, ph: 1, pw: 1 }), 1],
];

describe.skipIf(!SIMD8)('conv2d on the simd8 product against float64 (subgroups of 8)', () => {
  for (const [name, g, budget] of CASES) {
    it(name, async () => {
      const d = convData(g, 7 + g.oc);
      const [oh, ow] = outSize(g);
      const yRef = convRef(g, d.x, d.w, d.b);
      const ref = convBackRef(g, d.x, d.w, d.gy);
      const got = scope(() => {
        const x = t32(d.x, [g.n, g.c, g.h, g.w]);
        const w = t32(d.w, [g.oc, g.c, g.kh, g.kw]);
        const gy = t32(d.gy, [g.n, g.oc, oh, ow]);
        // the weight gradient does not group images (it refuses instead): default budget
        if (budget) convSimd8.textureBudget = budget;
        const y = conv2dForwardRaw(x, w, t32(d.b, [g.oc]), optsOf(g), 'simd8');
        const dx = conv2dInputGradRaw(gy, w, x.shape, optsOf(g), 'simd8');
        // and on simd8 where the direct SIMD-8 input gradient would run
        convDirect8.dgrad = false;
        const dxSimd8 = conv2dInputGradRaw(gy, w, x.shape, optsOf(g), 'simd8');
        convDirect8.dgrad = true;
        convSimd8.textureBudget = BUDGET;
        return { y, dx, dxSimd8, dw: conv2dWeightGradRaw(gy, x, w.shape, optsOf(g), 'simd8') };
      });
      expectClose(await read(got.y), yRef, { atol: 1e-4, rtol: 1e-4, what: 'forward' });
      expectClose(await read(got.dx), ref.dx, { atol: 1e-4, rtol: 1e-4, what: 'input grad' });
      expectClose(await read(got.dxSimd8), ref.dx, { atol: 1e-4, rtol: 1e-4, what: 'input grad (simd8)' });
      expectClose(await read(got.dw), ref.dw, { atol: 2e-4, rtol: 1e-4, what: 'weight grad' });
      for (const t of Object.values(got)) t.dispose();
    });
  }

  it('weight gradient with K = N*OH*OW over two chunks (later chunks add to dw), and in groups of one image (later groups add to dw)', async () => {
    const g = geo({ n: 3, c: 3, h: 19, w: 21, oc: 7, kh: 3, kw: 3, ph: 1, pw: 1 });
    const d = convData(g, 3);
    const { dw } = convBackRef(g, d.x, d.w, d.gy);
    // 399 positions per image (K 400 with padding, one 32-column panel): 51200 bytes of texture
    for (const budget of [BUDGET, 128 * 400]) {
      convSimd8.textureBudget = budget;
      const got = scope(() => conv2dWeightGradRaw(t32(d.gy, [3, 7, 19, 21]), t32(d.x, [3, 3, 19, 21]), [7, 3, 3, 3], optsOf(g), 'simd8'));
      expectClose(await read(got), dw, { atol: 5e-4, rtol: 1e-4, what: `weight grad, texture budget ${budget}` });
      got.dispose();
    }
  });

  // The weight gradient's K in groups of images: the first group's product writes dw, each later
  // one adds to it in its epilogue. [name, geometry, images per group before equalising]; dw is a
  // slot at an offset in a buffer of sentinels (4-aligned: interior tiles take the vec4 store
  // where dw's rows are 4-aligned too, c*kh*kw = 36; 3: element-wise stores only).
  const WGRAD_GROUPS: [string, Geo, number][] = [
    ['1 group of 3 images', geo({ n: 3, c: 4, h: 5, w: 7, oc: 19, kh: 3, kw: 3, ph: 1, pw: 1 }), 3],
    ['2 groups of 2 (K = 70 per group)', geo({ n: 4, c: 4, h: 5, w: 7, oc: 19, kh: 3, kw: 3, ph: 1, pw: 1 }), 2],
    ['3 groups of 1 (K = 35 per group)', geo({ n: 3, c: 4, h: 5, w: 7, oc: 19, kh: 3, kw: 3, ph: 1, pw: 1 }), 1],
    ['uneven groups 2, 2, 1', geo({ n: 5, c: 4, h: 5, w: 7, oc: 19, kh: 3, kw: 3, ph: 1, pw: 1 }), 2],
    ['uneven groups 3, 2, the first over two chunks (K = 1197)', geo({ n: 5, c: 3, h: 19, w: 21, oc: 7, kh: 3, kw: 3, ph: 1, pw: 1 }), 3],
  ];
  for (const [name, g, nb] of WGRAD_GROUPS) {
    it(`weight gradient in ${name}: later groups added into dw by their products, as partial sums added in order would`, async () => {
      const [oh, ow] = outSize(g);
      const ws = [g.oc, g.c, g.kh, g.kw];
      const size = g.oc * g.c * g.kh * g.kw;
      const d = convData(g, 61 + g.n);
      const { dw: want } = convBackRef(g, d.x, d.w, d.gy);
      const groups = Math.ceil(g.n / nb);
      const nbEq = Math.ceil(g.n / groups); // planWgrad's equal groups
      // the previous result, partial sums added by conv2d.wgsl's sum_splits: s = 0, s += p_i in
      // group order, each p_i the group's own weight gradient (the same plan: one group each)
      const sums = new Float64Array(size);
      for (let n0 = 0; n0 < g.n; n0 += nbEq) {
        const nbg = Math.min(nbEq, g.n - n0);
        const yn = g.oc * oh * ow;
        const xn = g.c * g.h * g.w;
        const p = scope(() => conv2dWeightGradRaw(t32(d.gy.subarray(n0 * yn, (n0 + nbg) * yn), [nbg, g.oc, oh, ow]), t32(d.x.subarray(n0 * xn, (n0 + nbg) * xn), [nbg, g.c, g.h, g.w]), ws, optsOf(g), 'simd8'));
        const pv = await read(p);
        p.dispose();
        for (let i = 0; i < size; i++) sums[i] = Math.fround(sums[i] + pv[i]);
      }
      // a budget of nb images' texture: 128 bytes x (K padded to the chunks) x panels
      const one = planSimd8(g.oc, g.c * g.kh * g.kw, nb * oh * ow, 1, caps(), false)!;
      for (const off of [8, 3]) {
        const SENTINEL = -777.25;
        const buf = t32(new Float64Array(off + size + 5).fill(SENTINEL), [off + size + 5]);
        const slot = buf.view(ws, [g.c * g.kh * g.kw, g.kh * g.kw, g.kw, 1], off);
        const gy = t32(d.gy, [g.n, g.oc, oh, ow]);
        const x = t32(d.x, [g.n, g.c, g.h, g.w]);
        convSimd8.textureBudget = nb === g.n ? BUDGET : 128 * one.kh * one.layers;
        const dev = runtime().device;
        const before = dev.stats.dispatches;
        conv2dWeightGradRaw(gy, x, ws, optsOf(g), 'simd8', slot);
        const dispatches = dev.stats.dispatches - before;
        convSimd8.textureBudget = BUDGET;
        const got = await read(buf);
        const dw = got.subarray(off, off + size);
        expectClose(dw, want, { atol: 5e-4, rtol: 1e-4, what: `weight grad, dw at ${off}` });
        expect(Array.from(dw)).toEqual(Array.from(sums));
        expect([...got.subarray(0, off), ...got.subarray(off + size)]).toEqual(new Array(off + 5).fill(SENTINEL));
        // per group: U's pack, T's pack and the product; nothing to add the groups
        expect(dispatches).toBe(3 * groups);
        for (const t of [buf, slot, gy, x]) t.dispose();
      }
    });
  }

  const acts: Act[] = [null, 'relu', 'leakyRelu', 'tanh'];
  for (const act of acts) {
    it(`autograd through the auto path with fused ${act ?? 'no'} activation and bias`, async () => {
      // K = 72 both ways and 8 rows: auto picks simd8 for the forward and the input gradient
      const g = geo({ n: 2, c: 8, h: 7, w: 9, oc: 8, kh: 3, kw: 3, ph: 2, pw: 2, dh: 2, dw: 2 });
      expect(conv2dKernelChoice('fwd', [g.n, g.c, g.h, g.w], [g.oc, g.c, g.kh, g.kw], optsOf(g))).toBe('simd8');
      expect(conv2dKernelChoice('dgrad', [g.n, g.c, g.h, g.w], [g.oc, g.c, g.kh, g.kw], optsOf(g))).toBe('simd8');
      const d = convData(g, 21);
      const [oh, ow] = outSize(g);
      const alpha = 0.2;
      const pre = convRef(g, d.x, d.w, d.b);
      const gpre = d.gy.map((v, i) => v * actDerivFromPre(pre[i], act, alpha));
      const ref = convBackRef(g, d.x, d.w, gpre);
      const x = t32(d.x, [g.n, g.c, g.h, g.w], true);
      const w = t32(d.w, [g.oc, g.c, g.kh, g.kw], true);
      const b = t32(d.b, [g.oc], true);
      const gy = t32(d.gy, [g.n, g.oc, oh, ow]);
      const y = conv2d(x, w, b, { ...optsOf(g), activation: act, negativeSlope: alpha });
      expectClose(await read(y), pre.map((v) => actRef(v, act, alpha)), { atol: 1e-4, rtol: 1e-4, what: 'forward' });
      backward(y, gy);
      expectClose(await read(x.grad!), ref.dx, { atol: 1e-4, rtol: 1e-4, what: 'dx' });
      expectClose(await read(w.grad!), ref.dw, { atol: 2e-4, rtol: 1e-4, what: 'dw' });
      expectClose(await read(b.grad!), ref.db, { atol: 2e-4, rtol: 1e-4, what: 'db' });
      for (const t of [x, w, b, gy, y, x.grad!, w.grad!, b.grad!]) t.dispose();
    });
  }

  it('auto keeps its own kernels for grouped, narrow and short-K convolutions and where the plan does not fit', () => {
    // K = 3 and 8 (1x1 with 3 and 8 channels) stay below AUTO_MIN_K; K = 16 and 27 (3-channel
    // 3x3) reach it
    expect(conv2dKernelChoice('fwd', [2, 3, 7, 9], [64, 3, 1, 1])).toBe('gemm');
    expect(conv2dKernelChoice('fwd', [2, 8, 7, 9], [64, 8, 1, 1])).toBe('gemm');
    expect(conv2dKernelChoice('fwd', [2, 16, 7, 9], [64, 16, 1, 1])).toBe('simd8');
    expect(conv2dKernelChoice('fwd', [2, 3, 7, 9], [64, 3, 3, 3], { padding: 1 })).toBe('simd8');
    // 3 input channels: the narrow forward kernel on dy; 6: conv.ts's direct kernel
    expect(conv2dKernelChoice('dgrad', [2, 3, 7, 9], [64, 3, 3, 3], { padding: 1 })).toBe('simd8-narrow');
    expect(conv2dKernelChoice('dgrad', [2, 6, 7, 9], [64, 6, 3, 3], { padding: 1 })).toBe('direct-uniform');
    expect(conv2dKernelChoice('fwd', [2, 64, 7, 9], [64, 64, 1, 1])).toBe('simd8');
    // 3 output channels with K = 576: fwd_narrow_simd8 (simd8 pads 3 rows to 16)
    expect(conv2dKernelChoice('fwd', [2, 64, 7, 9], [3, 64, 3, 3], { padding: 1 })).toBe('simd8-narrow');
    // the weight gradient's K is batch x space: simd8 whatever the channels
    expect(conv2dKernelChoice('wgrad', [2, 3, 7, 9], [64, 3, 3, 3], { padding: 1 })).toBe('simd8');
    // a strided 1x1 input gradient: one phase, K = 128
    expect(conv2dKernelChoice('dgrad', [2, 64, 8, 8], [128, 64, 1, 1], { stride: 2 })).toBe('simd8');
    expect(conv2dKernelChoice('fwd', [2, 16, 9, 9], [16, 8, 3, 3], { groups: 2 })).toBe('gemm');
    expect(conv2dKernelChoice('dgrad', [2, 6, 9, 9], [6, 1, 3, 3], { groups: 6 })).toBe('direct');
    // 70000 x 16384 weights: 4375 blocks of U rows in panes of 4096 texel rows, 4 a layer pair,
    // 2188 layers (the adapter has 2048); 8208 x 4096 weights fit (66 layers)
    expect(conv2dKernelChoice('fwd', [1, 16384, 3, 3], [70000, 16384, 1, 1])).toBe('gemm');
    expect(conv2dKernelChoice('fwd', [1, 4096, 3, 3], [8208, 4096, 1, 1])).toBe('simd8');
    convSimd8.enabled = false;
    expect(conv2dKernelChoice('fwd', [2, 64, 7, 9], [64, 64, 1, 1])).toBe('gemm');
  });
});

// The direct SIMD-8 input gradient (kernels/conv2d.wgsl dgrad_simd8): stride 1, kernels 3 wide
// (dilation 1 across, any height and vertical dilation) or 1 wide, blocks of 16 input channels
// (the last one partial), rows of 32 positions (widths not a multiple of 4, several blocks per
// row) or 32 positions of the image plane (widths multiple of 4), padding, dy at an offset.
const DIRECT: [string, Geo][] = [
  ['3x3 p1, 7x9 (row blocks), 17 input channels (a partial second block), 5 outputs', geo({ n: 2, c: 17, h: 7, w: 9, oc: 5, kh: 3, kw: 3, ph: 1, pw: 1 })],
  ['3x3 padding (2,1), vertical dilation 2, 16x12 (plane blocks), 20 input channels', geo({ n: 2, c: 20, h: 16, w: 12, oc: 6, kh: 3, kw: 3, ph: 2, pw: 1, dh: 2 })],
  ['5x3 padding (2,0), 37 wide (two blocks per row, the second partial), 8 input channels', geo({ n: 1, c: 8, h: 5, w: 37, oc: 4, kh: 5, kw: 3, ph: 2 })],
  ['1x1, 12 wide (plane blocks), 16 input channels, 9 outputs', geo({ n: 3, c: 16, h: 5, w: 12, oc: 9, kh: 1, kw: 1 })],
  ['1x1 padding 1, 7x9 (row blocks), 32 input channels (two blocks)', geo({ n: 2, c: 32, h: 7, w: 9, oc: 7, kh: 1, kw: 1, ph: 1, pw: 1 })],
  ['3x1 padding (1,0), 5x8, 11 input channels', geo({ n: 2, c: 11, h: 5, w: 8, oc: 13, kh: 3, kw: 1, ph: 1 })],
];

/** The input gradient through auto, which must pick `choice`, with dy 3 floats into its buffer,
 * against the float64 reference. */
async function autoInputGrad(g: Geo, choice: string, seed: number): Promise<void> {
  expect(conv2dKernelChoice('dgrad', [g.n, g.c, g.h, g.w], [g.oc, g.c, g.kh, g.kw], optsOf(g))).toBe(choice);
  const d = convData(g, seed);
  const [oh, ow] = outSize(g);
  const ref = convBackRef(g, d.x, d.w, d.gy);
  const dx = scope(() => {
    const gys = t32([9, 9, 9, ...d.gy], [3 + d.gy.length]);
    const gy = gys.view([g.n, g.oc, oh, ow], [g.oc * oh * ow, oh * ow, ow, 1], 3);
    return conv2dInputGradRaw(gy, t32(d.w, [g.oc, g.c, g.kh, g.kw]), [g.n, g.c, g.h, g.w], optsOf(g));
  });
  expectClose(await read(dx), ref.dx, { atol: 1e-4, rtol: 1e-4, what: `input grad (${choice})` });
  dx.dispose();
}

describe.skipIf(!SIMD8)('direct SIMD-8 input gradient against float64 (subgroups of 8)', () => {
  for (const [name, g] of DIRECT) it(name, () => autoInputGrad(g, 'simd8-direct', 31 + g.c));

  it('is not picked for strides, dilation across, 5-wide kernels, wide inputs or weights past a window', () => {
    const pick = (x: number[], w: number[], o = {}) => conv2dKernelChoice('dgrad', x, w, o);
    expect(pick([2, 16, 8, 8], [32, 16, 3, 3], { padding: 1, stride: 2 })).not.toBe('simd8-direct');
    expect(pick([2, 16, 8, 8], [32, 16, 3, 3], { padding: 2, dilation: 2 })).not.toBe('simd8-direct');
    expect(pick([2, 16, 8, 8], [32, 16, 5, 5], { padding: 2 })).not.toBe('simd8-direct');
    expect(pick([2, 64, 8, 8], [64, 64, 3, 3], { padding: 1 })).not.toBe('simd8-direct');
    // 128 x 3 x 3 x 16 floats of weights per block: over 16384
    expect(pick([2, 16, 8, 8], [128, 16, 3, 3], { padding: 1 })).not.toBe('simd8-direct');
    expect(pick([2, 3, 8, 8], [32, 3, 3, 3], { padding: 1 })).toBe('simd8-narrow');
    expect(pick([2, 5, 8, 8], [32, 5, 3, 3], { padding: 1 })).toBe('direct-uniform');
    convDirect8.dgrad = false;
    expect(pick([2, 16, 8, 8], [32, 16, 3, 3], { padding: 1 })).toBe('simd8');
  });
});

// The forward with at most 4 output channels (kernels/conv2d.wgsl fwd_narrow_simd8): kernels 3
// wide (dilation 1 across, any height and vertical dilation) or 1 wide, rows of 32 positions or
// 32 positions of the output plane, padding, bias and each fused activation, x at an offset; and
// the input gradient with at most 4 input channels through it (dy at an offset).
const NARROW_FWD: [string, Geo, Act][] = [
  ['3 outputs, 3x3 p1, 7x9 (row blocks), 5 input channels, tanh', geo({ n: 2, c: 5, h: 7, w: 9, oc: 3, kh: 3, kw: 3, ph: 1, pw: 1 }), 'tanh'],
  ['1 output, 3x3 padding (2,1) vertical dilation 2, 16x12 (plane blocks), relu', geo({ n: 2, c: 6, h: 16, w: 12, oc: 1, kh: 3, kw: 3, ph: 2, pw: 1, dh: 2 }), 'relu'],
  ['4 outputs, 5x3 padding (2,0), 37 wide (two blocks per row), leaky relu', geo({ n: 1, c: 4, h: 5, w: 37, oc: 4, kh: 5, kw: 3, ph: 2 }), 'leakyRelu'],
  ['2 outputs, 1x1 padding 1, 7x9, no activation', geo({ n: 3, c: 7, h: 7, w: 9, oc: 2, kh: 1, kw: 1, ph: 1, pw: 1 }), null],
];

describe.skipIf(!SIMD8)('narrow SIMD-8 forward and input gradient against float64 (subgroups of 8)', () => {
  for (const [name, g, act] of NARROW_FWD) {
    it(name, async () => {
      expect(conv2dKernelChoice('fwd', [g.n, g.c, g.h, g.w], [g.oc, g.c, g.kh, g.kw], optsOf(g))).toBe('simd8-narrow');
      const d = convData(g, 41 + g.c);
      const alpha = 0.2;
      const want = convRef(g, d.x, d.w, d.b).map((v) => actRef(v, act, alpha));
      const y = scope(() => {
        const xs = t32([9, 9, 9, 9, 9, ...d.x], [5 + d.x.length]);
        const x = xs.view([g.n, g.c, g.h, g.w], [g.c * g.h * g.w, g.h * g.w, g.w, 1], 5);
        return conv2dForwardRaw(x, t32(d.w, [g.oc, g.c, g.kh, g.kw]), t32(d.b, [g.oc]), { ...optsOf(g), activation: act, negativeSlope: alpha });
      });
      expectClose(await read(y), want, { atol: 1e-4, rtol: 1e-4, what: 'forward' });
      y.dispose();
    });
  }

  // the input gradient of a stride-1 convolution with at most 4 input channels: the same kernel
  // on dy with the weight transposed and flipped
  const NARROW_DGRAD: [string, Geo][] = [
    ['input gradient, 3 input channels, 3x3 p1, 7x9 (row blocks), 19 outputs', geo({ n: 2, c: 3, h: 7, w: 9, oc: 19, kh: 3, kw: 3, ph: 1, pw: 1 })],
    ['input gradient, 1 input channel, 3x3 padding (2,1) vertical dilation 2, 16x12', geo({ n: 2, c: 1, h: 16, w: 12, oc: 6, kh: 3, kw: 3, ph: 2, pw: 1, dh: 2 })],
    ['input gradient, 4 input channels, 5x3 padding (2,0), 37 wide', geo({ n: 1, c: 4, h: 5, w: 37, oc: 5, kh: 5, kw: 3, ph: 2 })],
    ['input gradient, 3 input channels, 1x1, 7x9', geo({ n: 3, c: 3, h: 7, w: 9, oc: 11, kh: 1, kw: 1 })],
  ];
  for (const [name, g] of NARROW_DGRAD) it(name, () => autoInputGrad(g, 'simd8-narrow', 51 + g.oc));

  it('is not picked for 5 outputs, strides or 5-wide kernels; off, simd8 runs the forward', async () => {
    const pick = (x: number[], w: number[], o = {}) => conv2dKernelChoice('fwd', x, w, o);
    expect(pick([2, 64, 8, 8], [5, 64, 3, 3], { padding: 1 })).not.toBe('simd8-narrow');
    expect(pick([2, 64, 8, 8], [3, 64, 3, 3], { padding: 1, stride: 2 })).not.toBe('simd8-narrow');
    expect(pick([2, 64, 8, 8], [3, 64, 5, 5], { padding: 2 })).not.toBe('simd8-narrow');
    // an input gradient whose equivalent forward would need negative padding (1x1, padding 1)
    expect(conv2dKernelChoice('dgrad', [2, 3, 8, 8], [16, 3, 1, 1], { padding: 1 })).toBe('direct-uniform');
    expect(conv2dKernelChoice('dgrad', [2, 3, 8, 8], [16, 3, 3, 3], { padding: 1, stride: 2 })).toBe('direct-uniform');
    const g = NARROW_FWD[0][1];
    const d = convData(g, 3);
    convDirect8.narrowForward = false;
    expect(pick([g.n, g.c, g.h, g.w], [g.oc, g.c, g.kh, g.kw], optsOf(g))).not.toBe('simd8-narrow');
    const y = scope(() => conv2dForwardRaw(t32(d.x, [g.n, g.c, g.h, g.w]), t32(d.w, [g.oc, g.c, g.kh, g.kw]), t32(d.b, [g.oc]), optsOf(g), 'simd8'));
    expectClose(await read(y), convRef(g, d.x, d.w, d.b), { atol: 1e-4, rtol: 1e-4, what: 'forward on simd8' });
    y.dispose();
  });
});

describe.skipIf(SIMD8)('conv2d without 8-lane subgroups', () => {
  it('auto runs its own kernels and an explicit simd8 variant is an error naming why', () => {
    expect(conv2dKernelChoice('fwd', [2, 3, 7, 9], [9, 3, 3, 3], { padding: 1 })).toBe('gemm');
    const x = t32(randArray(2 * 3 * 7 * 9, 1), [2, 3, 7, 9]);
    const w = t32(randArray(5 * 3 * 9, 2), [5, 3, 3, 3]);
    expect(() => conv2dForwardRaw(x, w, null, { padding: 1 }, 'simd8')).toThrow(/8 lanes/);
    x.dispose();
    w.dispose();
  });
});
