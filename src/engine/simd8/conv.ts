/**
 * conv2d on matmul's simd8 product (SIMD-8, src/engine/simd8/matmul.ts) for a software adapter
 * with 8-lane subgroups (lavapipe): kernels/simd8/conv2d.wgsl's `simd_pack_u` / `simd_pack_t` gather
 * the GEMM operands of a pass straight from the NCHW tensors into simd8's layout (U rows in a
 * texture of 16-row panes, T in one of 32-column panels), then `runSimd8` computes the product and
 * writes it NCHW (colSplit). Why the layout pays on lavapipe: kernels/simd8/matmul.wgsl.
 *
 *   forward      rows C_out,  K (ci, ky, kx),  columns (n, oy, ox)  -> y, bias and activation fused
 *   input grad   rows C_in,   K (co, ty, tx),  columns (n, iy, ix)  -> dx
 *   weight grad  rows C_out,  K (n, oy, ox),   columns (ci, ky, kx) -> dw (K in groups of
 *                images: the first group's product writes dw, each later one adds to it)
 *
 * A strided input gradient (dilation 1) runs one product per stride phase (iy mod S_h, ix mod
 * S_w) over only the taps that reach it (a 3x3 stride-2 kernel: 1, 2, 2 and 4 taps instead of 9
 * each), into a scratch [phase][n][C_in][positions of the phase] that `simd_scatter` moves to dx.
 * Columns go in groups of whole images so the panel texture stays within the adapter's layers
 * and `convSimd8.textureBudget`; U (the weights) is packed once for all groups and one texture is
 * reused (recorded work stays ordered). Ungrouped convolutions only: conv.ts runs the others,
 * and whatever `planSimd8` refuses, on its own kernels. Where the im2col pack or simd8's 16-row
 * blocks would dominate (narrow channels), the passes go to simd8/conv-direct.ts's kernels instead.
 */
import type { Tensor } from '../tensor.ts';
import { empty } from '../tensor.ts';
import { runtime } from '../runtime.ts';
import type { Caps } from '../caps.ts';
import type { Kernel } from '../device.ts';
import type { ConvGeometry } from '../ops/conv-geometry.ts';
import { convSimd8 } from '../tuning.ts';
import { caps, dispatch, grid1d, kernel, ringBlock, subgroupDefines } from '../ops/launch.ts';
import { acquireTexture, PACK_U_GROUP_ROWS, panelView, planSimd8, releaseTexture, runSimd8, type Simd8Plan } from './matmul.ts';
import { convForwardNarrow, convInputGradDirect8, convInputGradNarrow, direct8Route } from './conv-direct.ts';

/** Stride phases an input gradient may split into (PackParams' phase table holds 16). */
const MAX_PHASES = 16;
/** Longest source window of simd_pack_t's window path (pk_window). */
const MAX_WINDOW = 16;

/** Shortest reduction `auto` runs here: below it simd8's costs that do not grow with K (the
 * epilogue's 512 outputs per workgroup, the T pack per element) outweigh the product. It was 64
 * while simd8's epilogue stored element by element (1x1 convolutions with 16-32 channels and
 * 3-channel 3x3 ones ran up to 1.9x faster on conv.ts's GEMM); with vec4 stores simd8 won those
 * rows 1.1-1.6x (K = 16-32: wrn-g1/g2-sc-fwd, wrn-stem-fwd, biggan-d-in-fwd, biggan-g-out-dgrad)
 * and tied at K = 3 (bench/NOTES.md, session 3). */
const AUTO_MIN_K = 16;

/**
 * Whether `auto` runs a pass here: a software adapter with 8-lane subgroups and one group; an
 * input gradient with fewer than 8 input channels only as the narrow forward on dy (up to 4
 * channels, stride 1; otherwise conv.ts's direct kernel with uniform weights, 1.2-1.6x faster
 * than simd8 on 3-channel first layers); then simd8/conv-direct.ts's kernels where direct8Route
 * names one; otherwise a simd8 plan that fits the adapter and, for the forward and the input
 * gradient, a reduction of at least AUTO_MIN_K per product. The weight gradient
 * (K = batch x space) ran as fast or faster here on every benchmark shape (bench/NOTES.md,
 * "Convolution on the SIMD-8 product").
 */
export function convSimd8Auto(pass: 'fwd' | 'dgrad' | 'wgrad', g: ConvGeometry, c: Caps = caps()): boolean {
  if (!convSimd8.enabled || g.groups !== 1 || !c.simd8) return false;
  const route = direct8Route(pass, g, c);
  if (pass === 'dgrad' && g.c < 8) return route === 'narrow';
  if (route) return true;
  const parts = passParts(pass, g);
  if (pass !== 'wgrad' && Math.min(...parts.map((p) => p.K)) < AUTO_MIN_K) return false;
  return planPass(pass, g, c) !== null;
}

// ------------------------------------------------------------------------------ planning

/** One product of a pass: U rows x K, T's columns per image, and the packing kernels' overrides. */
interface Part {
  rows: number;
  K: number;
  /** T columns per image. */
  P: number;
  /** PK_MODE: 0 forward, 1 input gradient, 2 weight gradient. */
  mode: number;
  /** Input gradient: the stride phase py * QW + px (0 when unphased). */
  phase: number;
  constants: Record<string, number>;
  /** Its packing kernels, looked up on first use (a part lives in a remembered pass plan): U's,
   * and T's per plan with the texel rows a workgroup covers. */
  packUKernel?: Kernel;
  packTKernels?: Map<Simd8Plan, { k: Kernel; rowsPerGroup: number }>;
}

/** A pass planned: its products, images per group and each product's plan for a full group. */
interface PassPlan {
  parts: Part[];
  nb: number;
  plans: Simd8Plan[];
  /** Input gradient by stride phases (a part per phase, through a scratch and simd_scatter). */
  phased: boolean;
  /** Weight gradient: the images are K (T's columns otherwise). */
  wgrad: boolean;
  /** Each part's plan for a group of `nbg` images (a shorter last group), made on first use. */
  groupPlans: Map<number, Simd8Plan[]>;
}

/** Each part's plan for a group of `nbg` images. */
function plansFor(pp: PassPlan, nbg: number): Simd8Plan[] {
  if (nbg === pp.nb) return pp.plans;
  let plans = pp.groupPlans.get(nbg);
  if (!plans) {
    // the weight gradient's images are its K; the others' are T's columns
    plans = pp.parts.map((part) => (pp.wgrad ? planSimd8(part.rows, part.P, nbg * part.K, 1, caps(), false)! : planSimd8(part.rows, nbg * part.P, part.K, 1, caps(), false)!));
    pp.groupPlans.set(nbg, plans);
  }
  return plans;
}

function baseConstants(g: ConvGeometry, mode: number, q = { qh: 1, qw: 1, nth: 1, ntw: 1 }): Record<string, number> {
  return {
    IC: g.c, IH: g.h, IW: g.w, OC: g.oc, OH: g.oh, OW: g.ow, KH: g.kh, KW: g.kw,
    SH: g.sh, SW: g.sw, PH: g.ph, PW: g.pw, DH: g.dh, DW: g.dw,
    PK_MODE: mode, QH: q.qh, QW: q.qw, NTH: q.nth, NTW: q.ntw, HQ: Math.ceil(g.h / q.qh), WQ: Math.ceil(g.w / q.qw),
  };
}

/** The products of a pass (before sizing groups). */
function passParts(pass: 'fwd' | 'dgrad' | 'wgrad', g: ConvGeometry): Part[] {
  if (pass === 'fwd') return [{ rows: g.oc, K: g.c * g.kh * g.kw, P: g.oh * g.ow, mode: 0, phase: 0, constants: baseConstants(g, 0) }];
  // the weight gradient's K is (n, oy, ox): P is K per image and its columns are the taps
  if (pass === 'wgrad') return [{ rows: g.oc, K: g.oh * g.ow, P: g.c * g.kh * g.kw, mode: 2, phase: 0, constants: baseConstants(g, 2) }];
  const phased = (g.sh > 1 || g.sw > 1) && g.dh === 1 && g.dw === 1 && g.sh * g.sw <= MAX_PHASES;
  if (!phased) {
    const q = { qh: 1, qw: 1, nth: g.kh, ntw: g.kw };
    return [{ rows: g.c, K: g.oc * g.kh * g.kw, P: g.h * g.w, mode: 1, phase: 0, constants: baseConstants(g, 1, q) }];
  }
  const parts: Part[] = [];
  const P = Math.ceil(g.h / g.sh) * Math.ceil(g.w / g.sw);
  for (let py = 0; py < g.sh; py++) {
    for (let px = 0; px < g.sw; px++) {
      // the phase's taps: ky = (py + PH) mod S_h + S_h t, those inside the kernel
      const nth = Math.ceil((g.kh - ((py + g.ph) % g.sh)) / g.sh);
      const ntw = Math.ceil((g.kw - ((px + g.pw) % g.sw)) / g.sw);
      if (nth <= 0 || ntw <= 0) continue; // no tap reaches it: dx is zero there
      const q = { qh: g.sh, qw: g.sw, nth, ntw };
      parts.push({ rows: g.c, K: g.oc * nth * ntw, P, mode: 1, phase: py * g.sw + px, constants: baseConstants(g, 1, q) });
    }
  }
  return parts;
}

/** Pass plans by caps (one object per device and restriction) and by pass, geometry and the
 * tuning they read: a training step plans the same passes step after step, and planning (parts,
 * simd8 layouts, group sizes) with the kernel lookups of its packs was ~1 ms of a WRN-40-2
 * step's recording in a profile of it (bench/NOTES.md, "Host cost per step, session 9"). */
const passPlans = new WeakMap<Caps, Map<string, PassPlan | null>>();

/** `computePass`, remembered (pure in its arguments and `convSimd8`'s budget and pack rows). */
function planPass(pass: 'fwd' | 'dgrad' | 'wgrad', g: ConvGeometry, c: Caps): PassPlan | null {
  let byKey = passPlans.get(c);
  if (!byKey) passPlans.set(c, (byKey = new Map()));
  const key = `${pass} ${g.n} ${g.c} ${g.h} ${g.w} ${g.oc} ${g.kh} ${g.kw} ${g.sh} ${g.sw} ${g.ph} ${g.pw} ${g.dh} ${g.dw} ${g.groups} ${convSimd8.textureBudget} ${convSimd8.packRows}`;
  let pp = byKey.get(key);
  if (pp === undefined) byKey.set(key, (pp = computePass(pass, g, c)));
  return pp;
}

/** Images per group (the largest count whose panels fit every part's texture under the limits),
 * each part's plan for it, or null when a part does not fit even for one image. */
function computePass(pass: 'fwd' | 'dgrad' | 'wgrad', g: ConvGeometry, c: Caps): PassPlan | null {
  const parts = passParts(pass, g);
  if (pass === 'wgrad') return planWgrad(parts[0], g.n, c);
  let nb = g.n;
  for (const part of parts) {
    const one = planSimd8(part.rows, part.P, part.K, 1, c, false);
    if (!one) return null;
    const maxLayers = Math.min(c.maxTextureArrayLayers, Math.max(Math.floor(convSimd8.textureBudget / (128 * one.kh)), one.layers));
    // >= 1 image: maxLayers >= one.layers
    nb = Math.min(nb, Math.floor((Math.floor(maxLayers / one.nKt) * 32) / part.P));
  }
  nb = Math.ceil(g.n / Math.ceil(g.n / nb)); // equal groups
  const plans: Simd8Plan[] = [];
  for (const part of parts) {
    const plan = planSimd8(part.rows, nb * part.P, part.K, 1, c, false);
    if (!plan) return null;
    plans.push(plan);
  }
  return { parts, nb, plans, phased: pass === 'dgrad' && parts[0].constants.QH * parts[0].constants.QW > 1, wgrad: false, groupPlans: new Map() };
}

// ------------------------------------------------------------------------------ recording

/** The weight gradient's plan: K = images x OH x OW in groups of `nb` images whose texture
 * (about 128 bytes x K x panels: im2col's size) stays under the budget, or null. */
function planWgrad(part: Part, n: number, c: Caps): PassPlan | null {
  const texBytes = (p: Simd8Plan) => 128 * p.kh * p.layers;
  let nb = Math.max(1, Math.min(n, Math.floor(convSimd8.textureBudget / (128 * Math.ceil(part.P / 32) * part.K))));
  let plan = planSimd8(part.rows, part.P, nb * part.K, 1, c, false);
  // chunk and layer padding may take it over: fewer images until it fits
  while (plan && nb > 1 && texBytes(plan) > convSimd8.textureBudget) plan = planSimd8(part.rows, part.P, --nb * part.K, 1, c, false);
  if (!plan || texBytes(plan) > convSimd8.textureBudget) return null;
  nb = Math.ceil(n / Math.ceil(n / nb)); // equal groups
  const eq = planSimd8(part.rows, part.P, nb * part.K, 1, c, false);
  return eq ? { parts: [part], nb, plans: [eq], phased: false, wgrad: true, groupPlans: new Map() } : null;
}

/** PackParams (kernels/simd8/conv2d.wgsl), a block of the parameter ring (dispatch it at once). */
function packParams(plan: Simd8Plan, offSrc: number, n0: number, phase: number, slots: readonly number[] = [], offDst = 0): Uint32Array {
  const p = ringBlock(32);
  p.set([plan.rows, plan.cols, plan.K, plan.kc, 0, plan.chunks, plan.kh, plan.nKt, plan.panels, offSrc, n0, phase, offDst, plan.uPer]);
  slots.forEach((ph, z) => (p[16 + ph] = z + 1));
  return p;
}

/** simd_pack_t's overrides for a part and the texel rows one workgroup covers: the window path
 * where the 4 columns of a texel always lie in one source row (row widths multiple of 4) and the
 * window fits, else one gather per element. */
function packTSpec(part: Part, plan: Simd8Plan): { constants: Record<string, number>; rowsPerGroup: number } {
  const c = part.constants;
  const base = { ...c, NKT: plan.nKt, PK_ROWS: convSimd8.packRows };
  let win: { wn: number; wc: number; wt: number } | null = null;
  if (plan.nKt === 1 && part.mode === 0 && c.OW % 4 === 0) win = { wn: c.KW, wc: c.SW, wt: c.DW };
  if (plan.nKt === 1 && part.mode === 1 && c.WQ % 4 === 0) {
    const phased = c.QH * c.QW > 1;
    if (phased || (c.SH === 1 && c.SW === 1)) win = { wn: c.NTW, wc: 1, wt: phased ? 1 : c.DW };
  }
  const len = win ? 3 * win.wc + (win.wn - 1) * win.wt + 1 : 0;
  if (!win || len > MAX_WINDOW) return { constants: { ...base, PK_WIN: 0 }, rowsPerGroup: convSimd8.packRows };
  const groups = Math.max(1, Math.round(convSimd8.packRows / win.wn));
  return { constants: { ...base, PK_WIN: 1, PK_GROUPS: groups, WN: win.wn, WC: win.wc, WT: win.wt, WLEN: len }, rowsPerGroup: groups * win.wn };
}

/** Records the U packing pass of a part (weight gradient: for the images from n0) into `uTex`
 * (kernels/simd8/matmul.wgsl's panes): a thread per texture row. */
function packU(op: string, part: Part, plan: Simd8Plan, src: Tensor, uTex: GPUTexture, n0 = 0): void {
  const k = (part.packUKernel ??= kernel('simd8/conv2d', 'simd_pack_u', { defines: subgroupDefines(), constants: part.constants }));
  dispatch(k, [panelView(uTex), src.bufferFor(op)], packParams(plan, src.offset, n0, part.phase), [1, Math.ceil(plan.uRows / PACK_U_GROUP_ROWS), plan.uLayers]);
}

/** Records the T packing pass of a part for the group of images from n0 into `tex`. */
function packT(op: string, part: Part, plan: Simd8Plan, src: Tensor, n0: number, tex: GPUTexture): void {
  const kernels = (part.packTKernels ??= new Map());
  let t = kernels.get(plan);
  if (!t) {
    const ts = packTSpec(part, plan);
    t = { k: kernel('simd8/conv2d', 'simd_pack_t', { defines: subgroupDefines(), constants: ts.constants }), rowsPerGroup: ts.rowsPerGroup };
    kernels.set(plan, t);
  }
  dispatch(t.k, [panelView(tex), src.bufferFor(op)], packParams(plan, src.offset, n0, part.phase), [1, Math.ceil(plan.kh / t.rowsPerGroup), plan.layers]);
}

/** A view of `t` from element `offset` on (runSimd8 writes at its output's offset). */
function at(t: Tensor, offset: number): Tensor {
  return t.view([t.size - offset], [1], t.offset + offset);
}

/**
 * Packs each part's U from `uSrc` once, then per group of images (first image n0, nbg images)
 * packs T from `tSrc` and calls `product(part index, plan, U panes, T panels, n0, nbg)`, and
 * `after(n0, nbg)` once the group's products are recorded.
 */
function runPass(
  op: string, pp: PassPlan, n: number, uSrc: Tensor, tSrc: Tensor,
  product: (i: number, plan: Simd8Plan, uTex: GPUTexture, tex: GPUTexture, n0: number, nbg: number) => void,
  after: (n0: number, nbg: number, plans: Simd8Plan[]) => void = () => {},
): void {
  const dev = runtime().device;
  const kh = Math.max(...pp.plans.map((p) => p.kh));
  const layers = Math.max(...pp.plans.map((p) => p.layers));
  const uTex = pp.plans.map((p) => acquireTexture(dev, p.uRows, p.uLayers));
  // one texture for every part and group: a part reads layers (panel * n_kt + kt) < its plan's
  const tex = acquireTexture(dev, kh, layers);
  try {
    pp.parts.forEach((part, i) => packU(op, part, pp.plans[i], uSrc, uTex[i]));
    for (let n0 = 0; n0 < n; n0 += pp.nb) {
      const nbg = Math.min(pp.nb, n - n0);
      const plans = plansFor(pp, nbg);
      pp.parts.forEach((part, i) => {
        packT(op, part, plans[i], tSrc, n0, tex);
        product(i, plans[i], uTex[i], tex, n0, nbg);
      });
      after(n0, nbg, plans);
    }
  } finally {
    releaseTexture(dev, tex);
    for (const u of uTex) releaseTexture(dev, u);
  }
}

/** y = act(conv(x, w) + bias) into `out` (contiguous x, w, bias); false when the plan does not fit. */
export function convForwardSimd8(out: Tensor, x: Tensor, w: Tensor, bias: Tensor | null, g: ConvGeometry, act: number, alpha: number): boolean {
  if (direct8Route('fwd', g) === 'narrow') {
    convForwardNarrow(out, x, w, bias, g, act, alpha);
    return true;
  }
  const pp = planPass('fwd', g, caps());
  if (!pp) return false;
  const P = g.oh * g.ow;
  runPass('conv2d', pp, g.n, w, x, (_i, plan, uTex, tex, n0) => {
    const view = at(out, n0 * g.oc * P);
    runSimd8(plan, uTex, tex, view, { bias, biasCode: bias ? 2 : 0, act, alpha, accumulate: false, colSplit: P, spare: w, defines: subgroupDefines() });
    view.dispose();
  });
  return true;
}

/** dx = conv_transpose(dy, w) into `dx` (contiguous dy, w); false when the plan does not fit. */
export function convInputGradSimd8(dx: Tensor, dy: Tensor, w: Tensor, g: ConvGeometry): boolean {
  const op = 'conv2d input gradient';
  const route = direct8Route('dgrad', g);
  if (route === 'narrow') convInputGradNarrow(dx, dy, w, g);
  if (route === 'direct') convInputGradDirect8(dx, dy, w, g);
  if (route) return true;
  const pp = planPass('dgrad', g, caps());
  if (!pp) return false;
  const epi = { bias: null, biasCode: 0, act: 0, alpha: 0, accumulate: false, spare: w, defines: subgroupDefines() };
  const P = pp.parts[0].P;
  if (!pp.phased) {
    runPass(op, pp, g.n, w, dy, (_i, plan, uTex, tex, n0) => {
      const view = at(dx, n0 * g.c * g.h * g.w);
      runSimd8(plan, uTex, tex, view, { ...epi, colSplit: P });
      view.dispose();
    });
    return true;
  }
  // the phases' products of one group, [slot][n][C_in][P], moved into dx by simd_scatter
  const slots = pp.parts.map((part) => part.phase);
  const scratch = empty([slots.length * pp.nb * g.c * P]);
  try {
    runPass(op, pp, g.n, w, dy, (i, plan, uTex, tex, _n0, nbg) => {
      const view = at(scratch, i * nbg * g.c * P);
      runSimd8(plan, uTex, tex, view, { ...epi, colSplit: P });
      view.dispose();
    }, (n0, nbg, plans) => {
      // 4 positions per thread (one vec4 store) where rows and dx are 4-aligned
      const vec4 = g.w % 4 === 0 && dx.offset % 4 === 0;
      const k = kernel('simd8/conv2d', vec4 ? 'simd_scatter4' : 'simd_scatter', { defines: subgroupDefines(), constants: pp.parts[0].constants });
      dispatch(k, [dx.bufferFor(op), scratch.bufferFor(op)], packParams(plans[0], scratch.offset, n0, 0, slots, dx.offset), grid1d((nbg * g.c * g.h * g.w) / (vec4 ? 4 : 1)));
    });
  } finally {
    scratch.dispose();
  }
  return true;
}

/** dw = sum over batch and space of dy x im2col(x) into `dw` (contiguous dy, x); false when the
 * plan does not fit. K runs in groups of images: the first group's product writes dw and each
 * later group's product adds to it (the epilogue's `accumulate`): dw = ((p0 + p1) + p2)..., the
 * order conv2d.wgsl's sum_splits adds partial products in, so the result is theirs bit for bit
 * (test/engine/conv-simd.test.ts) with no scratch and no summing dispatch. dw may be a slot
 * between other tensors (autograd's `into`): the products read and write only its elements. */
export function convWeightGradSimd8(dw: Tensor, dy: Tensor, x: Tensor, g: ConvGeometry): boolean {
  const op = 'conv2d weight gradient';
  const dev = runtime().device;
  const pp = planPass('wgrad', g, caps());
  if (!pp) return false;
  const part = pp.parts[0];
  const tex = acquireTexture(dev, pp.plans[0].kh, pp.plans[0].layers);
  try {
    for (let n0 = 0; n0 < g.n; n0 += pp.nb) {
      const nbg = Math.min(pp.nb, g.n - n0);
      const plan = plansFor(pp, nbg)[0];
      // U's panes for this group's plan (a shorter last group may lay them out otherwise);
      // released at once: a later group's pack is recorded after this product
      const uTex = acquireTexture(dev, plan.uRows, plan.uLayers);
      packU(op, part, plan, dy, uTex, n0);
      packT(op, part, plan, x, n0, tex);
      runSimd8(plan, uTex, tex, dw, { bias: null, biasCode: 0, act: 0, alpha: 0, accumulate: n0 > 0, colSplit: 0, spare: x, defines: subgroupDefines() });
      releaseTexture(dev, uTex);
    }
  } finally {
    releaseTexture(dev, tex);
  }
  return true;
}
