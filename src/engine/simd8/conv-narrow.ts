/**
 * The weight gradient of a convolution with one narrow side (kernels/simd8/conv2d.wgsl,
 * `wgrad_narrow`): at most 8 output channels (BigGAN's RGB output convolution), or at most 8
 * input channels with a 1x1 kernel (its discriminator's shortcut from RGB). The narrow operand
 * of a group of images is packed into a 64 KiB uniform window; one thread per column of the wide
 * side reduces over the group's positions; groups after the first add to dw (in order:
 * deterministic). Two dispatches per group, no partial sums.
 */
import type { Tensor } from '../tensor.ts';
import { empty } from '../tensor.ts';
import { runtime } from '../runtime.ts';
import type { ConvGeometry } from '../ops/conv-geometry.ts';
import type { Caps } from '../caps.ts';
import { convNarrow } from '../tuning.ts';
import { caps, dispatch, grid1d, kernel, subgroupDefines } from '../ops/launch.ts';
import { WINDOW_FLOATS } from './matmul.ts';



interface NarrowPlan {
  /** 0: few output channels (columns = input taps); 1: few input channels, 1x1 (columns = outputs). */
  mode: 0 | 1;
  /** vec4s of narrow channels per position. */
  nv: number;
  /** images per window. */
  nb: number;
  /** threads: the wide side's columns. */
  cols: number;
}

/** The plan for a geometry, or null when neither side is narrow or one image's packed operand
 * exceeds a window. */
export function narrowWgradPlan(g: ConvGeometry): NarrowPlan | null {
  if (g.groups !== 1) return null;
  let mode: 0 | 1;
  if (g.oc <= 8) mode = 0;
  else if (g.c <= 8 && g.kh === 1 && g.kw === 1) mode = 1;
  else return null;
  const nv = Math.ceil((mode === 0 ? g.oc : g.c) / 4);
  const perImage = g.oh * g.ow * 4 * nv;
  const nb = Math.min(g.n, Math.floor(Math.min(convNarrow.windowFloats, WINDOW_FLOATS) / perImage));
  if (nb < 1) return null;
  return { mode, nv, nb, cols: mode === 0 ? g.c * g.kh * g.kw : g.oc };
}

/** Whether `auto` runs the weight gradient here: a software adapter (the layout is made for
 * llvmpipe's cheap uniform loads; measured there only) and a plan that fits. */
export function narrowWgradAuto(g: ConvGeometry, c: Caps = caps()): boolean {
  return convNarrow.enabled && c.simd8 && narrowWgradPlan(g) !== null;
}

/** dw = the weight gradient into `dw` (contiguous dy, x); false when no plan fits. */
export function convWeightGradNarrow(dw: Tensor, dy: Tensor, x: Tensor, g: ConvGeometry): boolean {
  const plan = narrowWgradPlan(g);
  if (!plan) return false;
  const op = 'conv2d weight gradient';
  const constants = {
    IC: g.c, IH: g.h, IW: g.w, OC: g.oc, OH: g.oh, OW: g.ow, KH: g.kh, KW: g.kw,
    SH: g.sh, SW: g.sw, PH: g.ph, PW: g.pw, DH: g.dh, DW: g.dw, NV: plan.nv, NW_MODE: plan.mode,
  };
  const spec = { defines: subgroupDefines(), constants };
  // broadcast path: workgroups of one subgroup, so at most 7 idle lanes repeat the last column
  const sg = convNarrow.broadcast && plan.nv === 1 && caps().simd8;
  const wg = sg ? 8 : 64;
  // 3-wide kernels at stride and dilation 1 across: a column per (ci, ky), the taps' x loads shared
  const k3 = sg && plan.mode === 0 && g.kw === 3 && g.sw === 1 && g.dw === 1 && convNarrow.taps3;
  const cols = k3 ? g.c * g.kh : plan.cols;
  const mainSpec = { defines: subgroupDefines(), constants: { ...constants, NW_SG: sg ? 1 : 0, NW_K3: k3 ? 1 : 0, WG: wg } };
  const [wide, narrow] = plan.mode === 0 ? [x, dy] : [dy, x];
  const wideImage = plan.mode === 0 ? g.c * g.h * g.w : g.oc * g.oh * g.ow;
  const narrowImage = plan.mode === 0 ? g.oc * g.oh * g.ow : g.c * g.h * g.w;
  const win = empty([WINDOW_FLOATS]);
  try {
    for (let n0 = 0; n0 < g.n; n0 += plan.nb) {
      const nbg = Math.min(plan.nb, g.n - n0);
      const packed = nbg * g.oh * g.ow * 4 * plan.nv;
      const pp = new Uint32Array(12);
      pp[3] = packed;
      pp[4] = win.offset;
      pp[5] = narrow.offset + n0 * narrowImage;
      dispatch(kernel('simd8/conv2d', 'wgrad_narrow_pack', spec), [win.bufferFor(op), narrow.bufferFor(op)], pp, grid1d(packed));
      const mp = new Uint32Array(12);
      mp[3] = cols;
      mp[4] = dw.offset;
      mp[5] = wide.offset + n0 * wideImage;
      mp[9] = nbg;
      mp[10] = n0 > 0 ? 1 : 0;
      const window = { buffer: win.bufferFor(op), offset: win.offset * 4, size: WINDOW_FLOATS * 4 };
      dispatch(kernel('simd8/conv2d', 'wgrad_narrow', mainSpec), [dw.bufferFor(op), wide.bufferFor(op), window], mp, grid1d(cols, wg));
    }
  } finally {
    win.dispose();
  }
  return true;
}
