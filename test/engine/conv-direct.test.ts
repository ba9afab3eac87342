// The direct input-gradient kernel (narrow groups): one thread per position and block of up to
// 8 input channels of a group. Blocks of 3, 7, 8 + 1 (a partial last block), several groups,
// stride, padding and dilation, against the float64 reference; outputs poisoned by engine().
import { describe, it, beforeAll, expect } from 'vitest';
import { engine, t32, read } from '../helpers/gpu.ts';
import { randArray, asF32, expectClose } from '../helpers/reference.ts';
import { conv2dInputGradRaw, conv2dKernelChoice, scope } from '../../src/engine/index.ts';
import { caps } from '../../src/engine/ops/launch.ts';
import { convBackRef, outSize, geo, type Geo } from './conv-ref.ts';

beforeAll(async () => {
  await engine();
});

const SIMD8 = await engine().then(() => caps().simd8);

const CASES: [string, Geo][] = [
  ['3 channels (a first layer), 3x3 p1, 21 outputs, 7x9', geo({ n: 2, c: 3, h: 7, w: 9, oc: 21, kh: 3, kw: 3, ph: 1, pw: 1 })],
  ['7 channels, 1x1', geo({ n: 3, c: 7, h: 5, w: 3, oc: 10, kh: 1, kw: 1 })],
  ['9 channels per group (8 + 1 blocks), groups 2, 3x2 s(2,1) p(2,1) dilation 2', geo({ n: 2, c: 18, h: 9, w: 7, oc: 6, kh: 3, kw: 2, sh: 2, sw: 1, ph: 2, pw: 1, dh: 2, dw: 2, groups: 2 })],
  ['depthwise 3x3 s2 p1, 5 groups', geo({ n: 2, c: 5, h: 7, w: 9, oc: 10, kh: 3, kw: 3, sh: 2, sw: 2, ph: 1, pw: 1, groups: 5 })],
];

describe('conv2d direct input gradient against float64', () => {
  for (const [name, g] of CASES) {
    it(name, async () => {
      const [oh, ow] = outSize(g);
      const cig = g.c / g.groups;
      const x = asF32(randArray(g.n * g.c * g.h * g.w, 41));
      const w = asF32(randArray(g.oc * cig * g.kh * g.kw, 42, -0.5, 0.5));
      const gy = asF32(randArray(g.n * g.oc * oh * ow, 43));
      const ref = convBackRef(g, x, w, gy);
      const opts = { stride: [g.sh, g.sw] as const, padding: [g.ph, g.pw] as const, dilation: [g.dh, g.dw] as const, groups: g.groups };
      // (on 8-lane subgroups, ungrouped stride-1 ones with <= 4 channels run the narrow forward kernel on dy)
      const narrow = SIMD8 && g.groups === 1 && g.c <= 4 && g.sh === 1 && g.sw === 1;
      if (cig < 8) expect(conv2dKernelChoice('dgrad', [g.n, g.c, g.h, g.w], [g.oc, cig, g.kh, g.kw], opts)).toMatch(narrow ? /^simd8-narrow$/ : /^direct(-uniform)?$/);
      const dx = scope(() => conv2dInputGradRaw(t32(gy, [g.n, g.oc, oh, ow]), t32(w, [g.oc, cig, g.kh, g.kw]), [g.n, g.c, g.h, g.w], opts, 'direct'));
      expectClose(await read(dx), ref.dx, { atol: 1e-4, rtol: 1e-4, what: 'input grad' });
      dx.dispose();
    });
  }
});
