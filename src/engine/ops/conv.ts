/**
 * 2-D convolution (NCHW) as implicit GEMM (kernels/conv2d.wgsl): forward with a fused bias and
 * activation epilogue, input gradient and weight gradient (split over batch and space, then
 * summed in a fixed order). Depthwise and other narrow-group convolutions use direct kernels.
 * On a software adapter with 8-lane subgroups (lavapipe) ungrouped convolutions run on matmul's
 * simd8 product instead (simd8/conv.ts), where its plan fits; `planConv` is the one place the
 * kernel is chosen.
 */
import { Tensor, empty } from '../tensor.ts';
import { record } from '../autograd.ts';
import { OpError } from '../errors.ts';
import { convGeometry, fmt, type Conv2dOptions, type ConvGeometry } from './conv-geometry.ts';
export { convGeometry, type Conv2dOptions, type ConvGeometry, type ConvActivation, type Pair } from './conv-geometry.ts';
import { convSubgroups, convTiles, convDirectUniform } from '../tuning.ts';
import { caps, dispatch, grid1d, kernel, subgroupDefines, f32Bits } from './launch.ts';
import { contiguous } from './movement.ts';
import { subgroupRowsFit, type Caps } from '../caps.ts';
import { ACTIVATION_CODES } from './activation.ts';
import { convForwardSimd8, convInputGradSimd8, convSimd8Auto, convWeightGradSimd8 } from '../simd8/conv.ts';
import { direct8Route } from '../simd8/conv-direct.ts';
import { WINDOW_FLOATS } from '../simd8/matmul.ts';
import { convWeightGradNarrow, narrowWgradAuto } from '../simd8/conv-narrow.ts';


/** Which kernel family runs: implicit GEMM, direct loops, matmul's simd8 product (simd8/conv.ts;
 * ungrouped convolutions on adapters with 8-lane subgroups), or chosen from the shape and adapter. */
export type ConvVariant = 'auto' | 'gemm' | 'direct' | 'simd8';

/** The fused activations' codes (ops/activation.ts). */
const ACT = { none: ACTIVATION_CODES.none, relu: ACTIVATION_CODES.relu, leakyRelu: ACTIVATION_CODES.leaky_relu, tanh: ACTIVATION_CODES.tanh } as const;


/** The template values and SG_ROWS for a GEMM tile TX threads wide (kernels/conv2d.wgsl):
 * rows are declared subgroup-uniform only when no subgroup can span two rows of TX threads. */
function gemmSpec(constants: Record<string, number | boolean>, tx: number): { defines: Record<string, string>; constants: Record<string, number | boolean> } {
  const rows = convSubgroups.enabled && subgroupRowsFit(caps(), tx);
  return { defines: subgroupDefines(), constants: { ...constants, SG_ROWS: rows ? 1 : 0 } };
}

function constants(g: ConvGeometry, extra: Record<string, number | boolean>): Record<string, number | boolean> {
  return {
    IC: g.c, IH: g.h, IW: g.w, OC: g.oc, OH: g.oh, OW: g.ow, KH: g.kh, KW: g.kw,
    SH: g.sh, SW: g.sw, PH: g.ph, PW: g.pw, DH: g.dh, DW: g.dw, GROUPS: g.groups, ...extra,
  };
}

function params(v: { cols?: number; kdim?: number; kps?: number; n?: number; offs?: readonly number[]; alpha?: number; batch?: number; len?: number }): Uint32Array {
  const buf = new Uint32Array(12);
  buf[0] = v.cols ?? 0;
  buf[1] = v.kdim ?? 0;
  buf[2] = v.kps ?? 0;
  buf[3] = v.n ?? 0;
  const offs = v.offs;
  if (offs) for (let i = 0; i < offs.length; i++) buf[4 + i] = offs[i];
  buf[8] = f32Bits(v.alpha ?? 0);
  buf[9] = v.batch ?? 0;
  buf[10] = v.len ?? 0;
  return buf;
}


/** Threads along rows: 2, 4, 8 or 16 (16- to 128-row tiles), the smallest that holds `rows`. */
function tileRows(rows: number): number {
  return Math.min(rows <= 16 ? 2 : rows <= 32 ? 4 : rows <= 64 ? 8 : 16, convTiles.tyMax);
}

function gemmGrid(op: string, cols: number, rows: number, ty: number, z: number, tx = convTiles.tx): [number, number, number] {
  const gx = Math.ceil(cols / (tx * 8));
  if (gx > 65535) throw new OpError(op, `${cols} GEMM columns exceed the 65535-workgroup grid; split the batch`);
  return [gx, Math.ceil(rows / (ty * 8)), z];
}

/** A SIMD-8 plan that its runner found not to fit: planConv and the runner disagree (a bug), or a
 * forced 'simd8' exceeds the adapter's texture or binding limits. */
function simd8Misfit(op: string, g: ConvGeometry): OpError {
  return new OpError(op, `the SIMD-8 kernels' packed operands of input ${fmt([g.n, g.c, g.h, g.w])}, weight ${fmt([g.oc, g.c / g.groups, g.kh, g.kw])} exceed this adapter's texture or binding limits`);
}

function checkTensor(op: string, t: Tensor, what: string): void {
  t.storageFor(op);
  if (t.dtype !== 'f32') throw new OpError(op, `${what} must be f32, got ${t.dtype} (shape ${fmt(t.shape)})`);
}

/** Weight-gradient GEMM columns are weight taps: few of them (27 for a 3-channel 3x3) take
 * narrower tiles. */
function wgradTileCols(ncols: number): number {
  return Math.min(convTiles.tx, ncols <= 32 ? 4 : ncols <= 64 ? 8 : 16);
}

export type ConvPass = 'fwd' | 'dgrad' | 'wgrad';

/** The kernel a pass runs, by what it is: 'gemm' (implicit GEMM tiles), 'gemm-phased' (a strided
 * input gradient per stride phase), 'direct' (direct loops), 'direct-uniform' (the input
 * gradient of <= 8 channels with its weights in a uniform window); on the software adapter
 * (simd8/): 'simd8' (matmul's SIMD-8 product), 'simd8-direct', 'simd8-narrow', 'narrow'. */
export type ConvKind = 'narrow' | 'simd8' | 'simd8-direct' | 'simd8-narrow' | 'gemm' | 'gemm-phased' | 'direct' | 'direct-uniform';

/** What runs for one pass of one geometry (`planConv`); benchmarks report `kind`. */
export interface ConvPlan {
  readonly pass: ConvPass;
  readonly kind: ConvKind;
}

/**
 * The plan for a pass (pure: geometry, caps and the tuning knobs in; no device access), the one
 * place the kernel is chosen: the *Raw functions run what it says and the benchmarks print it.
 * `auto`: for a weight gradient with one side of at most 8 channels on the SIMD-8 adapter
 * 'narrow' (simd8/conv-narrow.ts); 'simd8' (matmul's simd8 product, simd8/conv.ts) there where its
 * plan fits ('simd8-direct' / 'simd8-narrow' for the input gradients of narrow 3-wide stride-1
 * convolutions: no im2col pack); else 'direct' for narrow groups (fewer than 8 rows; for the
 * weight gradient, when GEMM tiles would be over 95% padding: direct runs ~0.1-1 GFLOP per
 * CPU-second on lavapipe against ~2.3 for the GEMM), else 'gemm' ('gemm-phased' for a strided
 * input gradient). A forced variant ('gemm', 'direct', 'simd8') picks within its family, and
 * 'simd8' on an adapter without it is an error saying why.
 */
export function planConv(pass: ConvPass, g: ConvGeometry, c: Caps = caps(), variant: ConvVariant = 'auto'): ConvPlan {
  const plan = (kind: ConvKind): ConvPlan => ({ pass, kind });
  const simd8Kind = (): ConvKind => {
    const route = direct8Route(pass, g, c);
    return route === 'narrow' ? 'simd8-narrow' : route === 'direct' ? 'simd8-direct' : 'simd8';
  };
  if (variant === 'simd8') {
    if (g.groups !== 1 || !c.simd8) throw new OpError('conv2d', `variant 'simd8' needs groups = 1 (got ${g.groups}) and an adapter whose subgroups are exactly 8 lanes`);
    return plan(simd8Kind());
  }
  if (variant === 'auto') {
    if (pass === 'wgrad' && g.n * g.oh * g.ow > 0 && narrowWgradAuto(g, c)) return plan('narrow');
    if ((pass !== 'wgrad' || g.n * g.oh * g.ow > 0) && convSimd8Auto(pass, g, c)) return plan(simd8Kind());
  }
  const own = ownKernelChoice(pass, g, variant);
  return plan(own === 'direct' && pass === 'dgrad' && directDgradUniform(g) ? 'direct-uniform' : own);
}

/** One line for logs and benchmark notes. */
export function describeConvPlan(p: ConvPlan, g: ConvGeometry): string {
  return `conv2d ${p.pass} ${p.kind} [${g.n}, ${g.c}, ${g.h}, ${g.w}] * [${g.oc}, ${g.c / g.groups}, ${g.kh}, ${g.kw}] stride ${g.sh}x${g.sw} groups ${g.groups}`;
}

/** planConv's kind for shapes and options (the benchmark's notes). */
export function conv2dKernelChoice(pass: ConvPass, xShape: readonly number[], wShape: readonly number[], opts: Conv2dOptions = {}): ConvKind {
  return planConv(pass, convGeometry('conv2d', xShape, wShape, opts)).kind;
}

/** The generic kernels' choice: a forced 'gemm' or 'direct', else by channels and tile fill. */
function ownKernelChoice(pass: ConvPass, g: ConvGeometry, variant: ConvVariant = 'auto'): 'gemm' | 'gemm-phased' | 'direct' {
  const cog = g.oc / g.groups;
  const cig = g.c / g.groups;
  const phased = (g.sh > 1 || g.sw > 1) && g.dh === 1 && g.dw === 1;
  if (variant === 'direct') return 'direct';
  if (variant === 'gemm') return pass === 'dgrad' && phased ? 'gemm-phased' : 'gemm';
  if (pass === 'fwd') return cog < 8 ? 'direct' : 'gemm';
  if (pass === 'dgrad') {
    if (cig < 8) return 'direct';
    return phased ? 'gemm-phased' : 'gemm';
  }
  if (g.n * g.oh * g.ow === 0) return 'direct';
  const ncols = cig * g.kh * g.kw;
  const tx = wgradTileCols(ncols);
  const ty = tileRows(cog);
  const fill = (cog * ncols) / (Math.ceil(cog / (ty * 8)) * ty * 8 * Math.ceil(ncols / (tx * 8)) * tx * 8);
  return fill < 0.05 ? 'direct' : 'gemm';
}

/** Forward without autograd: y = act(conv(x, w) + bias). */
export function conv2dForwardRaw(x: Tensor, w: Tensor, bias: Tensor | null, opts: Conv2dOptions = {}, variant: ConvVariant = 'auto'): Tensor {
  const op = 'conv2d';
  checkTensor(op, x, 'input');
  checkTensor(op, w, 'weight');
  const g = convGeometry(op, x.shape, w.shape, opts);
  if (bias) {
    checkTensor(op, bias, 'bias');
    if (bias.rank !== 1 || bias.shape[0] !== g.oc) throw new OpError(op, `bias must have shape [${g.oc}], got ${fmt(bias.shape)}`);
  }
  const act = ACT[opts.activation ?? 'none'];
  const out = empty([g.n, g.oc, g.oh, g.ow]);
  if (out.size === 0) return out;
  const xc = contiguous(x);
  const wc = contiguous(w);
  const bc = bias ? contiguous(bias) : null;
  const cog = g.oc / g.groups;
  const extra = { ACT: act, HAS_BIAS: bc !== null ? 1 : 0 };
  const buffers = [out.bufferFor(op), xc.bufferFor(op), wc.bufferFor(op), (bc ?? wc).bufferFor(op)];
  const offs = [out.offset, xc.offset, wc.offset, (bc ?? wc).offset];
  const alpha = opts.negativeSlope ?? 0.01;
  const plan = planConv('fwd', g, caps(), variant);
  if (plan.kind.startsWith('simd8')) {
    if (!convForwardSimd8(out, xc, wc, bc, g, act, alpha)) throw simd8Misfit(op, g);
  } else if (plan.kind === 'direct') {
    dispatch(kernel('conv2d', 'direct_fwd', { defines: subgroupDefines(), constants: constants(g, extra) }), buffers, params({ n: out.size, offs, alpha }), grid1d(out.size));
  } else {
    const ty = tileRows(cog);
    const cols = g.n * g.oh * g.ow;
    dispatch(
      kernel('conv2d', 'conv_fwd', gemmSpec(constants(g, { ...extra, TX: convTiles.tx, TY: ty, BK: convTiles.bk }), convTiles.tx)),
      buffers,
      params({ cols, offs, alpha }),
      gemmGrid(op, cols, cog, ty, g.groups),
    );
  }
  if (xc !== x) xc.dispose();
  if (wc !== w) wc.dispose();
  if (bc && bc !== bias) bc.dispose();
  return out;
}



/** Whether direct_dgrad_u applies: one group of at most 8 input channels whose rearranged
 * weights fit a uniform binding (3-channel first layers: wrn-stem, BigGAN's D input). */
function directDgradUniform(g: ConvGeometry): boolean {
  return convDirectUniform.enabled && g.groups === 1 && g.c <= 8 && g.oc * g.kh * g.kw * 4 * Math.ceil(g.c / 4) <= WINDOW_FLOATS;
}

/** Input gradient without autograd: dx = conv_transpose(dy, w) for the geometry of x. */
export function conv2dInputGradRaw(dy: Tensor, w: Tensor, xShape: readonly number[], opts: Conv2dOptions = {}, variant: ConvVariant = 'auto'): Tensor {
  const op = 'conv2d input gradient';
  checkTensor(op, dy, 'output gradient');
  checkTensor(op, w, 'weight');
  const g = convGeometry(op, xShape, w.shape, opts);
  checkGradShape(op, dy, g);
  const dx = empty([g.n, g.c, g.h, g.w]);
  if (dx.size === 0) return dx;
  const dyc = contiguous(dy);
  const wc = contiguous(w);
  const cig = g.c / g.groups;
  const buffers = [dx.bufferFor(op), dyc.bufferFor(op), wc.bufferFor(op)];
  const offs = [dx.offset, dyc.offset, wc.offset];
  const plan = planConv('dgrad', g, caps(), variant);
  if (plan.kind.startsWith('simd8')) {
    if (!convInputGradSimd8(dx, dyc, wc, g)) throw simd8Misfit(op, g);
  } else if (plan.kind === 'direct-uniform') {
    // one thread per input position, all (<= 8) channels, weights in a uniform buffer
    const wv = Math.ceil(g.c / 4);
    const wr = empty([WINDOW_FLOATS]);
    const len = g.oc * g.kh * g.kw * 4 * wv;
    const spec = { defines: subgroupDefines(), constants: constants(g, { WV: wv }) };
    dispatch(kernel('conv2d', 'dgrad_wpack', spec), [wr.bufferFor(op), wc.bufferFor(op)], params({ n: len, offs: [0, wc.offset] }), grid1d(len));
    const threads = g.n * g.h * g.w;
    dispatch(kernel('conv2d', 'direct_dgrad_u', spec), [dx.bufferFor(op), dyc.bufferFor(op), { buffer: wr.bufferFor(op), offset: 0, size: WINDOW_FLOATS * 4 }], params({ n: threads, offs }), grid1d(threads));
    wr.dispose();
  } else if (plan.kind === 'direct') {
    // one thread per input position and block of up to 8 channels of a group
    const cib = Math.min(cig, 8);
    const threads = g.n * g.groups * Math.ceil(cig / cib) * g.h * g.w;
    dispatch(kernel('conv2d', 'direct_dgrad', { defines: subgroupDefines(), constants: constants(g, { CIB: cib }) }), buffers, params({ n: threads, offs }), grid1d(threads));
  } else {
    const ty = tileRows(cig);
    if (plan.kind === 'gemm-phased') {
      // stride phases: each (ih mod sh, iw mod sw) class with only the taps that reach it
      const cols = g.n * Math.ceil(g.h / g.sh) * Math.ceil(g.w / g.sw);
      const nth = Math.ceil(g.kh / g.sh);
      const ntw = Math.ceil(g.kw / g.sw);
      dispatch(
        kernel('conv2d', 'conv_dgrad_phased', gemmSpec(constants(g, { TX: convTiles.tx, TY: ty, BK: convTiles.bk, NTH: nth, NTW: ntw }), convTiles.tx)),
        buffers,
        params({ cols, offs }),
        gemmGrid(op, cols, cig, ty, g.groups * g.sh * g.sw),
      );
    } else {
      const cols = g.n * g.h * g.w;
      dispatch(
        kernel('conv2d', 'conv_dgrad', gemmSpec(constants(g, { TX: convTiles.tx, TY: ty, BK: convTiles.bk }), convTiles.tx)),
        buffers,
        params({ cols, offs }),
        gemmGrid(op, cols, cig, ty, g.groups),
      );
    }
  }
  if (dyc !== dy) dyc.dispose();
  if (wc !== w) wc.dispose();
  return dx;
}

/** A caller's destination for a gradient (autograd's `into`: a parameter's gradient slot): f32,
 * contiguous, of `shape`; the kernels write it at its offset and touch nothing else. */
function checkOut(op: string, out: Tensor, shape: readonly number[]): void {
  checkTensor(op, out, 'destination');
  if (!out.isContiguous || out.rank !== shape.length || out.shape.some((d, i) => d !== shape[i])) {
    throw new OpError(op, `destination must be a contiguous f32 tensor of shape ${fmt(shape)}, got ${fmt(out.shape)}${out.isContiguous ? '' : ' (strided)'}`);
  }
}

/** Weight gradient without autograd: dw[co, ci, kh, kw] = sum over batch and space, into `out`
 * when given (every path writes dw at its offset: narrow, simd8, direct, conv_wgrad, sum_splits). */
export function conv2dWeightGradRaw(dy: Tensor, x: Tensor, wShape: readonly number[], opts: Conv2dOptions = {}, variant: ConvVariant = 'auto', out?: Tensor): Tensor {
  const op = 'conv2d weight gradient';
  checkTensor(op, dy, 'output gradient');
  checkTensor(op, x, 'input');
  const g = convGeometry(op, x.shape, wShape, opts);
  checkGradShape(op, dy, g);
  if (out) checkOut(op, out, wShape);
  const dw = out ?? empty(wShape);
  const dyc = contiguous(dy);
  const xc = contiguous(x);
  const cog = g.oc / g.groups;
  const cig = g.c / g.groups;
  const ncols = cig * g.kh * g.kw;
  const kdim = g.n * g.oh * g.ow;
  const tx = wgradTileCols(ncols);
  const plan = planConv('wgrad', g, caps(), variant);
  if (plan.kind === 'narrow') {
    if (!convWeightGradNarrow(dw, dyc, xc, g)) throw simd8Misfit(op, g);
  } else if (plan.kind.startsWith('simd8') && kdim > 0) {
    if (!convWeightGradSimd8(dw, dyc, xc, g)) throw simd8Misfit(op, g);
  } else if (plan.kind === 'direct' || kdim === 0) {
    dispatch(
      kernel('conv2d', 'direct_wgrad', { defines: subgroupDefines(), constants: constants(g, {}) }),
      [dw.bufferFor(op), dyc.bufferFor(op), xc.bufferFor(op)],
      params({ n: dw.size, kdim, offs: [dw.offset, dyc.offset, xc.offset] }),
      grid1d(dw.size, 1),
    );
  } else {
    const ty = tileRows(cog);
    const tiles = Math.ceil(ncols / (tx * 8)) * Math.ceil(cog / (ty * 8)) * g.groups;
    // Split the batch-and-space reduction so that enough workgroups run at once; each split keeps
    // at least 512 reduction steps so the partial sums stay few.
    const splits = Math.max(1, Math.min(Math.ceil(512 / tiles), Math.ceil(kdim / 512), Math.floor(65535 / g.groups)));
    const kps = Math.ceil(kdim / splits / convTiles.bk) * convTiles.bk;
    const used = Math.ceil(kdim / kps);
    const spec = gemmSpec(constants(g, { TX: tx, TY: ty, BK: convTiles.bk, SPLITS: used }), tx);
    const grid = gemmGrid(op, ncols, cog, ty, g.groups * used, tx);
    if (used === 1) {
      dispatch(kernel('conv2d', 'conv_wgrad', spec), [dw.bufferFor(op), dyc.bufferFor(op), xc.bufferFor(op)], params({ kdim, kps, offs: [dw.offset, dyc.offset, xc.offset] }), grid);
    } else {
      const part = empty([used, dw.size]);
      dispatch(kernel('conv2d', 'conv_wgrad', spec), [part.bufferFor(op), dyc.bufferFor(op), xc.bufferFor(op)], params({ kdim, kps, offs: [0, dyc.offset, xc.offset] }), grid);
      dispatch(kernel('conv2d', 'sum_splits', { defines: subgroupDefines() }), [dw.bufferFor(op), part.bufferFor(op)], params({ n: used, len: dw.size, offs: [dw.offset, 0] }), grid1d(dw.size));
      part.dispose();
    }
  }
  if (dyc !== dy) dyc.dispose();
  if (xc !== x) xc.dispose();
  return dw;
}

/** Bias gradient without autograd: the sum of dy over batch and space, per channel (into `out`
 * when given). */
export function conv2dBiasGradRaw(dy: Tensor, out?: Tensor): Tensor {
  const op = 'conv2d bias gradient';
  checkTensor(op, dy, 'output gradient');
  if (dy.rank !== 4) throw new OpError(op, `output gradient must be 4-D, got ${fmt(dy.shape)}`);
  const [n, oc, oh, ow] = dy.shape;
  if (out) checkOut(op, out, [oc]);
  const db = out ?? empty([oc]);
  if (oc === 0) return db;
  const dyc = contiguous(dy);
  dispatch(
    kernel('conv2d', 'bias_grad', { defines: subgroupDefines(), constants: { OC: oc, OH: oh, OW: ow } }),
    [db.bufferFor(op), dyc.bufferFor(op)],
    params({ len: n, offs: [db.offset, dyc.offset] }),
    [oc, 1, 1],
  );
  if (dyc !== dy) dyc.dispose();
  return db;
}

/** g * act'(y) for the fused activation, from the activated output y. */
function actGradRaw(g: Tensor, y: Tensor, act: number, alpha: number): Tensor {
  const op = 'conv2d activation gradient';
  const gc = contiguous(g);
  const out = empty(y.shape);
  dispatch(
    kernel('conv2d', 'act_grad', { defines: subgroupDefines(), constants: { ACT: act } }),
    [out.bufferFor(op), gc.bufferFor(op), y.bufferFor(op)],
    params({ n: y.size, offs: [out.offset, gc.offset, y.offset], alpha }),
    grid1d(y.size),
  );
  if (gc !== g) gc.dispose();
  return out;
}

function checkGradShape(op: string, dy: Tensor, g: ConvGeometry): void {
  const want = [g.n, g.oc, g.oh, g.ow];
  if (dy.rank !== 4 || dy.shape.some((d, i) => d !== want[i])) {
    throw new OpError(op, `output gradient has shape ${fmt(dy.shape)}, expected ${fmt(want)}`);
  }
}

/**
 * y = act(conv2d(x, w) + bias), NCHW, weight [C_out, C_in/groups, kH, kW] (PyTorch's layout).
 * Differentiable in x, w and bias; the input gradient is computed only when x requires one.
 */
export function conv2d(x: Tensor, w: Tensor, bias: Tensor | null = null, opts: Conv2dOptions = {}): Tensor {
  const out = conv2dForwardRaw(x, w, bias, opts);
  const act = ACT[opts.activation ?? 'none'];
  const alpha = opts.negativeSlope ?? 0.01;
  const xShape = x.shape;
  const wShape = w.shape;
  const needX = x.requiresGrad;
  const needW = w.requiresGrad;
  const needB = bias?.requiresGrad ?? false;
  const inputs = bias ? [x, w, bias] : [x, w];
  const saved = act !== 0 ? [x, w, out] : [x, w];
  // the weight and bias gradients go straight into parameters' gradient slots when autograd
  // offers them (BackwardFn's `into`: no copy dispatch per parameter)
  return record('conv2d', out, inputs, saved, (g, s, _needs, into) => {
    const gp = act !== 0 ? actGradRaw(g, s[2], act, alpha) : g;
    const dx = needX ? conv2dInputGradRaw(gp, s[1], xShape, opts) : null;
    const dw = needW ? conv2dWeightGradRaw(gp, s[0], wShape, opts, 'auto', into[1] ?? undefined) : null;
    const db = needB ? conv2dBiasGradRaw(gp, into[2] ?? undefined) : null;
    if (gp !== g) gp.dispose();
    return bias ? [dx, dw, db] : [dx, dw];
  });
}
