/**
 * 2-D convolution (NCHW) as implicit GEMM (kernels/conv2d.wgsl): forward with a fused bias and
 * activation epilogue, input gradient and weight gradient (split over batch and space, then
 * summed in a fixed order). Depthwise and other narrow-group convolutions use direct kernels.
 * On a software adapter with 8-lane subgroups (lavapipe) ungrouped convolutions run on matmul's
 * v7 product instead (conv-simd.ts), where its plan fits.
 */
import { Tensor, empty } from '../tensor.ts';
import { record } from '../autograd.ts';
import { OpError } from '../errors.ts';
import { caps, dispatch, grid1d, kernel, subgroupDefines } from './launch.ts';
import { contiguous } from './movement.ts';
import { runtime } from '../runtime.ts';
import { subgroupRowsFit } from '../caps.ts';
import { convForwardSimd8, convInputGradSimd8, convSimd8Auto, convWeightGradSimd8 } from './conv-simd.ts';
import { direct8Route } from './conv-direct8.ts';
import { WINDOW_FLOATS } from './matmul-simd.ts';
import { convWeightGradNarrow, narrowWgradAuto } from './conv-narrow.ts';

export { convSimd8 } from './conv-simd.ts';
export { convNarrow } from './conv-narrow.ts';
export { convDirect8 } from './conv-direct8.ts';

export type Pair = number | readonly [number, number];
export type ConvActivation = 'relu' | 'leakyRelu' | 'tanh' | null;

export interface Conv2dOptions {
  stride?: Pair;
  padding?: Pair;
  dilation?: Pair;
  groups?: number;
  /** Activation fused into the epilogue (its gradient is taken from the output). */
  activation?: ConvActivation;
  /** Slope of 'leakyRelu' (default 0.01, PyTorch's). */
  negativeSlope?: number;
}

/** Which kernel family runs: implicit GEMM, direct loops, matmul's v7 product (conv-simd.ts;
 * ungrouped convolutions on adapters with 8-lane subgroups), or chosen from the shape and adapter. */
export type ConvVariant = 'auto' | 'gemm' | 'direct' | 'simd8';

/** Everything a convolution's kernels are specialised on. */
export interface ConvGeometry {
  n: number;
  c: number;
  h: number;
  w: number;
  oc: number;
  kh: number;
  kw: number;
  sh: number;
  sw: number;
  ph: number;
  pw: number;
  dh: number;
  dw: number;
  groups: number;
  oh: number;
  ow: number;
}

const ACT = { none: 0, relu: 1, leakyRelu: 2, tanh: 3 } as const;

function pair(op: string, name: string, v: Pair | undefined, dflt: number, min: number): [number, number] {
  const p: [number, number] = v === undefined ? [dflt, dflt] : typeof v === 'number' ? [v, v] : [v[0], v[1]];
  if (p.length !== 2 || !p.every((d) => Number.isInteger(d) && d >= min)) {
    throw new OpError(op, `${name} must be an integer >= ${min} or a pair of them, got ${JSON.stringify(v)}`);
  }
  return p;
}

const fmt = (s: readonly number[]): string => `[${s.join(', ')}]`;

/** Validates shapes and options and returns the geometry (no kernel runs on bad input). */
export function convGeometry(op: string, xShape: readonly number[], wShape: readonly number[], opts: Conv2dOptions = {}): ConvGeometry {
  if (xShape.length !== 4) throw new OpError(op, `input must be 4-D (N, C, H, W), got shape ${fmt(xShape)}`);
  if (wShape.length !== 4) throw new OpError(op, `weight must be 4-D (C_out, C_in/groups, kH, kW), got shape ${fmt(wShape)}`);
  const [sh, sw] = pair(op, 'stride', opts.stride, 1, 1);
  const [ph, pw] = pair(op, 'padding', opts.padding, 0, 0);
  const [dh, dw] = pair(op, 'dilation', opts.dilation, 1, 1);
  const groups = opts.groups ?? 1;
  const [n, c, h, w] = xShape;
  const [oc, cig, kh, kw] = wShape;
  if (!Number.isInteger(groups) || groups < 1) throw new OpError(op, `groups must be a positive integer, got ${groups}`);
  if (c % groups !== 0 || oc % groups !== 0) {
    throw new OpError(op, `input channels (${c}) and output channels (${oc}) must both be divisible by groups (${groups}); input ${fmt(xShape)}, weight ${fmt(wShape)}`);
  }
  if (cig * groups !== c) {
    throw new OpError(op, `input ${fmt(xShape)} has ${c} channels but weight ${fmt(wShape)} expects ${cig * groups} (${cig} per group x ${groups} groups)`);
  }
  if (kh < 1 || kw < 1 || oc < 1) throw new OpError(op, `weight ${fmt(wShape)} has an empty dimension`);
  const ekh = dh * (kh - 1) + 1;
  const ekw = dw * (kw - 1) + 1;
  if (ekh > h + 2 * ph || ekw > w + 2 * pw) {
    throw new OpError(op, `kernel ${kh}x${kw} (dilation ${dh}x${dw}, effective ${ekh}x${ekw}) is larger than the padded input ${h + 2 * ph}x${w + 2 * pw} (input ${fmt(xShape)}, padding ${ph}x${pw})`);
  }
  const oh = Math.floor((h + 2 * ph - ekh) / sh) + 1;
  const ow = Math.floor((w + 2 * pw - ekw) / sw) + 1;
  return { n, c, h, w, oc, kh, kw, sh, sw, ph, pw, dh, dw, groups, oh, ow };
}

/**
 * Whether the GEMM kernels may use subgroups, and the subgroup size bound. Exposed so the benchmark
 * can compare with them off (`convSubgroups.enabled = false`).
 */
export const convSubgroups = { enabled: true };

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
  (v.offs ?? []).forEach((o, i) => (buf[4 + i] = o));
  new Float32Array(buf.buffer)[8] = v.alpha ?? 0;
  buf[9] = v.batch ?? 0;
  buf[10] = v.len ?? 0;
  return buf;
}

/**
 * GEMM tile configuration: TX threads along columns (BN = 4*TX), up to TY_MAX along rows
 * (BM = 4*TY), BK reduction steps per tile. Exposed for the benchmark's tuning sweeps.
 */
export const convTiles = { tx: 16, tyMax: 16, bk: 16 };

/** Threads along rows: 2, 4, 8 or 16 (16- to 128-row tiles), the smallest that holds `rows`. */
function tileRows(rows: number): number {
  return Math.min(rows <= 16 ? 2 : rows <= 32 ? 4 : rows <= 64 ? 8 : 16, convTiles.tyMax);
}

function gemmGrid(op: string, cols: number, rows: number, ty: number, z: number, tx = convTiles.tx): [number, number, number] {
  const gx = Math.ceil(cols / (tx * 8));
  if (gx > 65535) throw new OpError(op, `${cols} GEMM columns exceed the 65535-workgroup grid; split the batch`);
  return [gx, Math.ceil(rows / (ty * 8)), z];
}

function pickVariant(v: ConvVariant, narrow: number): 'gemm' | 'direct' {
  if (v === 'gemm' || v === 'direct') return v;
  return narrow < 8 ? 'direct' : 'gemm';
}

/** Runs the pass on v7 when `variant` asks for it ('simd8': or an error saying why it cannot)
 * or 'auto' picks it; false when the caller runs its own kernels. */
function simd8Pass(op: string, pass: 'fwd' | 'dgrad' | 'wgrad', variant: ConvVariant, g: ConvGeometry, run: () => boolean): boolean {
  if (variant === 'simd8') {
    if (g.groups !== 1 || !caps().simd8) throw new OpError(op, `variant 'simd8' needs groups = 1 (got ${g.groups}) and an adapter whose subgroups are exactly 8 lanes`);
    if (!run()) throw new OpError(op, `variant 'simd8': the packed operands of input ${fmt([g.n, g.c, g.h, g.w])}, weight ${fmt([g.oc, g.c, g.kh, g.kw])} exceed this adapter's texture or binding limits`);
    return true;
  }
  return variant === 'auto' && convSimd8Auto(pass, g) && run();
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

/**
 * The kernel family `auto` runs for a pass: for a weight gradient with one side of at most 8
 * channels on a software adapter 'narrow' (conv-narrow.ts); 'simd8' (matmul's v7 product,
 * conv-simd.ts) on a software adapter with 8-lane subgroups where its plan fits ('simd8-direct' for
 * the input gradients of narrow 3-wide stride-1 convolutions there: no im2col pack); else 'direct' for narrow groups
 * (fewer than 8 rows; for the weight gradient, when GEMM tiles would be over 95% padding: direct
 * runs ~0.1-1 GFLOP per CPU-second on lavapipe against ~2.3 for the GEMM), else 'gemm'
 * ('gemm-phased' for a strided input gradient). Exported for the benchmark's notes.
 */
export function conv2dKernelChoice(pass: 'fwd' | 'dgrad' | 'wgrad', xShape: readonly number[], wShape: readonly number[], opts: Conv2dOptions = {}): 'narrow' | 'simd8' | 'simd8-direct' | 'simd8-narrow' | 'gemm' | 'gemm-phased' | 'direct' {
  const g = convGeometry('conv2d', xShape, wShape, opts);
  if (pass === 'wgrad' && g.n * g.oh * g.ow > 0 && narrowWgradAuto(g)) return 'narrow';
  if (convSimd8Auto(pass, g)) {
    const route = direct8Route(pass, g);
    return route === 'narrow' ? 'simd8-narrow' : route === 'direct' ? 'simd8-direct' : 'simd8';
  }
  return ownKernelChoice(pass, g);
}

/** conv2dKernelChoice among this file's own kernels. */
function ownKernelChoice(pass: 'fwd' | 'dgrad' | 'wgrad', g: ConvGeometry): 'gemm' | 'gemm-phased' | 'direct' {
  const cog = g.oc / g.groups;
  const cig = g.c / g.groups;
  if (pass === 'fwd') return cog < 8 ? 'direct' : 'gemm';
  if (pass === 'dgrad') {
    if (cig < 8) return 'direct';
    return (g.sh > 1 || g.sw > 1) && g.dh === 1 && g.dw === 1 ? 'gemm-phased' : 'gemm';
  }
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
  const pick = pickVariant(variant, cog);
  if (simd8Pass(op, 'fwd', variant, g, () => convForwardSimd8(out, xc, wc, bc, g, act, alpha))) {
    // done on v7
  } else if (pick === 'direct') {
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


/** Off pins the direct input gradient without uniform weights (the benchmark's `--baseline`). */
export const convDirectUniform = { enabled: true };

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
  const pick = pickVariant(variant, cig);
  if (simd8Pass(op, 'dgrad', variant, g, () => convInputGradSimd8(dx, dyc, wc, g))) {
    // done on v7
  } else if (pick === 'direct' && directDgradUniform(g)) {
    // one thread per input position, all (<= 8) channels, weights in a uniform buffer
    const wv = Math.ceil(g.c / 4);
    const wr = empty([WINDOW_FLOATS]);
    const len = g.oc * g.kh * g.kw * 4 * wv;
    const spec = { defines: subgroupDefines(), constants: constants(g, { WV: wv }) };
    dispatch(kernel('conv2d', 'dgrad_wpack', spec), [wr.bufferFor(op), wc.bufferFor(op)], params({ n: len, offs: [0, wc.offset] }), grid1d(len));
    const threads = g.n * g.h * g.w;
    dispatch(kernel('conv2d', 'direct_dgrad_u', spec), [dx.bufferFor(op), dyc.bufferFor(op), { buffer: wr.bufferFor(op), offset: 0, size: WINDOW_FLOATS * 4 }], params({ n: threads, offs }), grid1d(threads));
    wr.dispose();
  } else if (pick === 'direct') {
    // one thread per input position and block of up to 8 channels of a group
    const cib = Math.min(cig, 8);
    const threads = g.n * g.groups * Math.ceil(cig / cib) * g.h * g.w;
    dispatch(kernel('conv2d', 'direct_dgrad', { defines: subgroupDefines(), constants: constants(g, { CIB: cib }) }), buffers, params({ n: threads, offs }), grid1d(threads));
  } else {
    const ty = tileRows(cig);
    if ((g.sh > 1 || g.sw > 1) && g.dh === 1 && g.dw === 1) {
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

/** Weight gradient without autograd: dw[co, ci, kh, kw] = sum over batch and space. */
export function conv2dWeightGradRaw(dy: Tensor, x: Tensor, wShape: readonly number[], opts: Conv2dOptions = {}, variant: ConvVariant = 'auto'): Tensor {
  const op = 'conv2d weight gradient';
  checkTensor(op, dy, 'output gradient');
  checkTensor(op, x, 'input');
  const g = convGeometry(op, x.shape, wShape, opts);
  checkGradShape(op, dy, g);
  const dw = empty(wShape);
  const dyc = contiguous(dy);
  const xc = contiguous(x);
  const cog = g.oc / g.groups;
  const cig = g.c / g.groups;
  const ncols = cig * g.kh * g.kw;
  const kdim = g.n * g.oh * g.ow;
  const tx = wgradTileCols(ncols);
  const useDirect = (variant === 'auto' ? ownKernelChoice('wgrad', g) : variant) === 'direct';
  if (kdim > 0 && variant === 'auto' && narrowWgradAuto(g) && convWeightGradNarrow(dw, dyc, xc, g)) {
    // one narrow side: conv-narrow.ts
  } else if (kdim > 0 && simd8Pass(op, 'wgrad', variant, g, () => convWeightGradSimd8(dw, dyc, xc, g))) {
    // done on v7
  } else if (useDirect || kdim === 0) {
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

/** Bias gradient without autograd: the sum of dy over batch and space, per channel. */
export function conv2dBiasGradRaw(dy: Tensor): Tensor {
  const op = 'conv2d bias gradient';
  checkTensor(op, dy, 'output gradient');
  if (dy.rank !== 4) throw new OpError(op, `output gradient must be 4-D, got ${fmt(dy.shape)}`);
  const [n, oc, oh, ow] = dy.shape;
  const db = empty([oc]);
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
  return record('conv2d', out, inputs, saved, (g, s) => {
    const gp = act !== 0 ? actGradRaw(g, s[2], act, alpha) : g;
    const dx = needX ? conv2dInputGradRaw(gp, s[1], xShape, opts) : null;
    const dw = needW ? conv2dWeightGradRaw(gp, s[0], wShape, opts) : null;
    const db = needB ? conv2dBiasGradRaw(gp) : null;
    if (gp !== g) gp.dispose();
    return bias ? [dx, dw, db] : [dx, dw];
  });
}
