// The weight gradient with one narrow side (src/engine/simd8/conv-narrow.ts, kernels/conv2d.wgsl
// `wgrad_narrow`): at most 8 output channels (any kernel, stride, padding, dilation: the valid
// position ranges per tap) or at most 8 input channels with a 1x1 kernel (padding zeros packed),
// one or two vec4s of narrow channels, the subgroup-broadcast loop (with 3-tap columns and with
// per-tap ones) and the plain one (position counts not multiples of 8: the loops' tails), images over several uniform windows (later windows add to
// dw), and operands at a non-zero offset in their buffers; against the float64 reference, outputs
// poisoned by engine(). `auto` picks it on a software adapter only; the kernel itself runs on any.
import { describe, it, expect, beforeAll, afterEach } from 'vitest';
import { engine, t32, read } from '../helpers/gpu.ts';
import { expectClose } from '../helpers/reference.ts';
import { conv2dWeightGradRaw, conv2dKernelChoice, runtime, scope, empty } from '../../src/engine/index.ts';
import { convNarrow } from '../../src/engine/tuning.ts';
import { convWeightGradNarrow, narrowWgradPlan } from '../../src/engine/simd8/conv-narrow.ts';
import { convGeometry } from '../../src/engine/ops/conv-geometry.ts';
import { convBackRef, outSize, geo, optsOf, convData, type Geo } from './conv-ref.ts';

beforeAll(async () => {
  await engine();
});

const WINDOW = convNarrow.windowFloats;
afterEach(() => {
  convNarrow.windowFloats = WINDOW;
  convNarrow.enabled = true;
  convNarrow.broadcast = true;
  convNarrow.taps3 = true;
});

// [name, geometry, window floats (0: the default)]
const CASES: [string, Geo, number][] = [
  ['3 outputs, 7x9, 3x3 p1 (BigGAN RGB output)', geo({ n: 3, c: 5, h: 7, w: 9, oc: 3, kh: 3, kw: 3, ph: 1, pw: 1 }), 0],
  ['5 outputs (two vec4s), 3x3 stride (2,3) padding 2, odd sizes', geo({ n: 2, c: 4, h: 9, w: 11, oc: 5, kh: 3, kw: 3, sh: 2, sw: 3, ph: 2, pw: 2 }), 0],
  ['2 outputs, 3x3 stride (2,1) padding (1,2) vertical dilation 2, 21 wide (two 8-blocks and a tail)', geo({ n: 2, c: 3, h: 9, w: 21, oc: 2, kh: 3, kw: 3, sh: 2, ph: 1, pw: 2, dh: 2 }), 0],
  ['8 outputs, 3x2 kernel, dilation 2, padding (3,1)', geo({ n: 2, c: 3, h: 9, w: 7, oc: 8, kh: 3, kw: 2, ph: 3, pw: 1, dh: 2, dw: 2 }), 0],
  ['1 output, 5x5 kernel: tap rows that reach no input position', geo({ n: 2, c: 2, h: 3, w: 4, oc: 1, kh: 5, kw: 5, ph: 1, pw: 2 }), 0],
  ['3 inputs, 1x1 (BigGAN D shortcut from RGB), 19 outputs', geo({ n: 3, c: 3, h: 7, w: 9, oc: 19, kh: 1, kw: 1 }), 0],
  ['6 inputs (two vec4s), 1x1 stride 2 padding 1 (zeros in the padding)', geo({ n: 2, c: 6, h: 7, w: 9, oc: 13, kh: 1, kw: 1, sh: 2, sw: 2, ph: 1, pw: 1 }), 0],
  // 63 positions x 4 floats per image: one image per window, 3 windows
  ['3 outputs over three windows of one image (later windows add)', geo({ n: 3, c: 4, h: 7, w: 9, oc: 3, kh: 3, kw: 3, ph: 1, pw: 1 }), 300],
  ['3 inputs, 1x1, 5 images in windows of 2, 2, 1', geo({ n: 5, c: 3, h: 7, w: 9, oc: 11, kh: 1, kw: 1 }), 2 * 63 * 4],
];

describe('conv2d weight gradient with a narrow side against float64', () => {
  for (const [name, g, window] of CASES) {
    it(name, async () => {
      const d = convData(g, 11 + g.oc);
      const [oh, ow] = outSize(g);
      const { dw } = convBackRef(g, d.x, d.w, d.gy);
      if (window) convNarrow.windowFloats = window;
      const cg = convGeometry('test', [g.n, g.c, g.h, g.w], [g.oc, g.c, g.kh, g.kw], optsOf(g));
      const plan = narrowWgradPlan(cg)!;
      expect(plan).not.toBeNull();
      if (window) expect(plan.nb).toBeLessThan(g.n);
      // the subgroup-broadcast loop (8-lane subgroups, one vec4) with 3-tap columns where they
      // apply (3 wide, stride and dilation 1 across) and with per-tap ones, and the plain loop
      for (const [broadcast, taps3] of [[true, true], [true, false], [false, false]]) {
        convNarrow.broadcast = broadcast;
        convNarrow.taps3 = taps3;
        const got = scope(() => {
          // operands at an offset in their buffers: views into larger tensors
          const xs = t32([...new Array(7).fill(9), ...d.x], [7 + d.x.length]);
          const gys = t32([...new Array(5).fill(9), ...d.gy], [5 + d.gy.length]);
          const x = xs.view([g.n, g.c, g.h, g.w], [g.c * g.h * g.w, g.h * g.w, g.w, 1], 7);
          const gy = gys.view([g.n, g.oc, oh, ow], [g.oc * oh * ow, oh * ow, ow, 1], 5);
          const out = empty([g.oc, g.c, g.kh, g.kw]);
          expect(convWeightGradNarrow(out, gy, x, cg)).toBe(true);
          return out;
        });
        expectClose(await read(got), dw, { atol: 2e-4, rtol: 1e-4, what: `weight grad (broadcast ${broadcast}, 3-tap columns ${taps3})` });
        got.dispose();
      }
    });
  }

  it('auto runs it on a software adapter where one side is narrow, and not otherwise', async () => {
    const software = runtime().device.caps.simd8;
    const pick = (x: number[], w: number[], o = {}) => conv2dKernelChoice('wgrad', x, w, o);
    expect(pick([4, 256, 32, 32], [3, 256, 3, 3], { padding: 1 })).toBe(software ? 'narrow' : pick([4, 256, 32, 32], [3, 256, 3, 3], { padding: 1 }));
    if (software) {
      expect(pick([4, 3, 16, 16], [256, 3, 1, 1])).toBe('narrow');
      // 3 inputs but 3x3: the taps' positions differ per column (simd8 runs it)
      expect(pick([4, 3, 16, 16], [256, 3, 3, 3], { padding: 1 })).not.toBe('narrow');
      expect(pick([4, 16, 16, 16], [16, 16, 3, 3], { padding: 1 })).not.toBe('narrow');
      // one image's 3 x 70 x 70 positions exceed a window
      expect(pick([1, 8, 70, 70], [3, 8, 1, 1])).not.toBe('narrow');
      convNarrow.enabled = false;
      expect(pick([4, 3, 16, 16], [256, 3, 1, 1])).not.toBe('narrow');
    }
    // and through the public entry point, whatever runs
    const g = CASES[0][1];
    const d = convData(g, 5);
    const [oh, ow] = outSize(g);
    const got = scope(() => conv2dWeightGradRaw(t32(d.gy, [g.n, g.oc, oh, ow]), t32(d.x, [g.n, g.c, g.h, g.w]), [g.oc, g.c, g.kh, g.kw], optsOf(g)));
    expectClose(await read(got), convBackRef(g, d.x, d.w, d.gy).dw, { atol: 2e-4, rtol: 1e-4, what: 'weight grad (auto)' });
    got.dispose();
  });

  it('has no plan for grouped convolutions or two wide sides', () => {
    const plan = (x: number[], w: number[], o = {}) => narrowWgradPlan(convGeometry('test', x, w, o));
    expect(plan([2, 4, 8, 8], [4, 1, 3, 3], { groups: 4, padding: 1 })).toBeNull();
    expect(plan([2, 16, 8, 8], [16, 16, 1, 1])).toBeNull();
    expect(plan([2, 16, 8, 8], [3, 16, 3, 3], { padding: 1 })).toMatchObject({ mode: 0, nv: 1, nb: 2, cols: 144 });
    expect(plan([2, 5, 8, 8], [32, 5, 1, 1])).toMatchObject({ mode: 1, nv: 2, nb: 2, cols: 32 });
  });
});
