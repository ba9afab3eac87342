// conv2d through `auto` on 40 seeded random geometries (1-33 input and 1-16 output channels,
// 3-16 x 3-22 images, kernels 1x1 to 5x3, strides up to 3, padding up to 2, dilation up to 2):
// the forward with bias and tanh, the input gradient and the weight gradient against the float64
// reference, whichever kernel auto picks: on lavapipe seed 7's cases reach every (pass, kernel)
// pair auto has for ungrouped convolutions (simd8, the direct SIMD-8 and narrow kernels, conv.ts's
// GEMM, phased GEMM and direct kernels; 1-10 cases each). A net for the routing rules; each
// family's own tests pin its edge cases. Outputs poisoned by engine().
import { describe, it, beforeAll } from 'vitest';
import { engine, t32, read } from '../helpers/gpu.ts';
import { expectClose } from '../helpers/reference.ts';
import { conv2dForwardRaw, conv2dInputGradRaw, conv2dWeightGradRaw, conv2dKernelChoice, scope } from '../../src/engine/index.ts';
import { convRef, convBackRef, outSize, geo, optsOf, convData, type Geo } from './conv-ref.ts';

beforeAll(async () => {
  await engine();
});

/** `count` valid geometries from a seeded LCG (the same ones every run). */
function randomGeometries(count: number, seed: number): Geo[] {
  let s = seed;
  const pick = <T>(xs: readonly T[]): T => {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    return xs[s % xs.length];
  };
  const upTo = (n: number) => pick([...Array(n).keys()]);
  const out: Geo[] = [];
  while (out.length < count) {
    const g = geo({
      n: 1 + upTo(3), c: pick([1, 3, 4, 5, 8, 16, 17, 32, 33]), h: 3 + upTo(14), w: 3 + upTo(20), oc: pick([1, 2, 3, 4, 5, 8, 13, 16]),
      kh: pick([1, 3, 3, 5, 2]), kw: pick([1, 3, 3, 1, 2]), sh: pick([1, 1, 2]), sw: pick([1, 1, 2, 3]),
      ph: upTo(3), pw: upTo(3), dh: pick([1, 1, 2]), dw: pick([1, 1, 1, 2]),
    });
    // the dilated kernel must fit the padded input (convGeometry refuses it otherwise)
    if (g.dh * (g.kh - 1) + 1 <= g.h + 2 * g.ph && g.dw * (g.kw - 1) + 1 <= g.w + 2 * g.pw) out.push(g);
  }
  return out;
}

describe('conv2d auto on random geometries against float64', () => {
  for (const g of randomGeometries(40, 7)) {
    it(JSON.stringify(g), async () => {
      const d = convData(g, 7);
      const [oh, ow] = outSize(g);
      const picks = (['fwd', 'dgrad', 'wgrad'] as const).map((p) => conv2dKernelChoice(p, [g.n, g.c, g.h, g.w], [g.oc, g.c, g.kh, g.kw], optsOf(g)));
      const got = scope(() => {
        const x = t32(d.x, [g.n, g.c, g.h, g.w]);
        const w = t32(d.w, [g.oc, g.c, g.kh, g.kw]);
        const gy = t32(d.gy, [g.n, g.oc, oh, ow]);
        return { y: conv2dForwardRaw(x, w, t32(d.b, [g.oc]), { ...optsOf(g), activation: 'tanh' }), dx: conv2dInputGradRaw(gy, w, x.shape, optsOf(g)), dw: conv2dWeightGradRaw(gy, x, w.shape, optsOf(g)) };
      });
      const ref = convBackRef(g, d.x, d.w, d.gy);
      expectClose(await read(got.y), convRef(g, d.x, d.w, d.b).map(Math.tanh), { atol: 1e-4, rtol: 1e-4, what: `fwd ${picks[0]}` });
      expectClose(await read(got.dx), ref.dx, { atol: 1e-4, rtol: 1e-4, what: `dgrad ${picks[1]}` });
      expectClose(await read(got.dw), ref.dw, { atol: 3e-4, rtol: 1e-4, what: `wgrad ${picks[2]}` });
    }, 60000);
  }
});
