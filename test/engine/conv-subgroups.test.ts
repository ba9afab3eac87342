// The conv GEMM kernels with and without the subgroup-uniform A fragment (SG_ROWS): on an adapter
// with subgroups (llvmpipe) test/engine/conv.test.ts runs the subgroup path; this file runs the
// portable path (what an adapter without subgroups, or one whose subgroups span two tile rows,
// gets) against the same float64 reference, outputs poisoned by engine().
import { describe, it, beforeAll, afterEach } from 'vitest';
import { engine, t32, read } from '../helpers/gpu.ts';
import { randArray, asF32, expectClose } from '../helpers/reference.ts';
import { conv2dForwardRaw, conv2dInputGradRaw, conv2dWeightGradRaw, scope } from '../../src/engine/index.ts';
import { convSubgroups } from '../../src/engine/tuning.ts';
import { convRef, convBackRef, outSize, type Geo } from './conv-ref.ts';

beforeAll(async () => {
  await engine();
});

afterEach(() => {
  convSubgroups.enabled = true;
});

function geo(p: Partial<Geo> & Pick<Geo, 'n' | 'c' | 'h' | 'w' | 'oc' | 'kh' | 'kw'>): Geo {
  return { sh: 1, sw: 1, ph: 0, pw: 0, dh: 1, dw: 1, groups: 1, ...p };
}

// fwd 12 rows, dgrad 10 rows, wgrad 90 columns (16-thread-wide tiles: SG_ROWS applies to all three)
const PLAIN = geo({ n: 2, c: 10, h: 5, w: 7, oc: 12, kh: 3, kw: 3, ph: 1, pw: 1 });
// stride 2: input gradient by stride phases; wgrad 81 columns
const STRIDED = geo({ n: 2, c: 9, h: 7, w: 5, oc: 10, kh: 3, kw: 3, sh: 2, sw: 2, ph: 1, pw: 1 });

describe('conv2d GEMM kernels without subgroups (portable path)', () => {
  for (const [name, g] of [['3x3 s1 p1, 10->12 channels, 5x7', PLAIN], ['3x3 s2 p1, 9->10 channels, 7x5 (phased input gradient)', STRIDED]] as const) {
    it(name, async () => {
      const [oh, ow] = outSize(g);
      const x = asF32(randArray(g.n * g.c * g.h * g.w, 31));
      const w = asF32(randArray(g.oc * g.c * g.kh * g.kw, 32, -0.5, 0.5));
      const b = asF32(randArray(g.oc, 33));
      const gy = asF32(randArray(g.n * g.oc * oh * ow, 34));
      const yRef = convRef(g, x, w, b);
      const ref = convBackRef(g, x, w, gy);
      const opts = { stride: [g.sh, g.sw] as const, padding: [g.ph, g.pw] as const };
      convSubgroups.enabled = false;
      const got = scope(() => {
        const xt = t32(x, [g.n, g.c, g.h, g.w]);
        const wt = t32(w, [g.oc, g.c, g.kh, g.kw]);
        const gyt = t32(gy, [g.n, g.oc, oh, ow]);
        return {
          y: conv2dForwardRaw(xt, wt, t32(b, [g.oc]), opts, 'gemm'),
          dx: conv2dInputGradRaw(gyt, wt, xt.shape, opts, 'gemm'),
          dw: conv2dWeightGradRaw(gyt, xt, wt.shape, opts, 'gemm'),
        };
      });
      expectClose(await read(got.y), yRef, { atol: 1e-4, rtol: 1e-4, what: 'forward' });
      expectClose(await read(got.dx), ref.dx, { atol: 1e-4, rtol: 1e-4, what: 'input grad' });
      expectClose(await read(got.dw), ref.dw, { atol: 2e-4, rtol: 1e-4, what: 'weight grad' });
      for (const t of Object.values(got)) t.dispose();
    });
  }
});
