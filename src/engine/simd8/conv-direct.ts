/**
 * SIMD-8 direct convolutions (kernels/simd8/conv2d.wgsl `dgrad_simd8`, `fwd_narrow_simd8`) for
 * a software adapter with 8-lane subgroups (lavapipe): no im2col pack. A workgroup of 8 lanes
 * covers 32 positions, a lane 4 consecutive ones; the weights stream through a 64 KiB uniform
 * window, 8 lanes gathering different vec4s that subgroupBroadcast shares. conv-simd.ts sends
 * a pass here where simd8's pack of dy or x (9 texels per value for 3x3) or its 16-row blocks would
 * dominate:
 *   - input gradients of stride-1 convolutions, kernels 3 wide or 1 wide, 8-32 input channels
 *     (dgrad_simd8: 16 input channels per block in 16 vec4 accumulators per lane);
 *   - forwards with at most 4 output channels (fwd_narrow_simd8: a vec4 of outputs per position);
 *   - input gradients with at most 4 input channels, as that forward on dy with the weight
 *     transposed and flipped.
 */
import type { Tensor } from '../tensor.ts';
import { empty } from '../tensor.ts';
import type { ConvGeometry } from '../ops/conv-geometry.ts';
import type { Caps } from '../caps.ts';
import { convDirect8 } from '../tuning.ts';
import { caps, dispatch, grid1d, kernel, subgroupDefines } from '../ops/launch.ts';
import { WINDOW_FLOATS } from './matmul.ts';


/** Which of this file's kernels runs a pass that is on the SIMD-8 path, or null for the simd8
 * product: the one place the order is decided (simd8/conv.ts runs it, planConv reports it).
 * The narrow forward first (<= 4 channels on the narrow side), then dgrad_simd8. */
export function direct8Route(pass: 'fwd' | 'dgrad' | 'wgrad', g: ConvGeometry, c: Caps = caps()): 'narrow' | 'direct' | null {
  if (pass === 'fwd') return fwdNarrowApplies(g, c) ? 'narrow' : null;
  if (pass === 'dgrad') return dgradNarrowApplies(g, c) ? 'narrow' : dgradDirectPicked(g, c) ? 'direct' : null;
  return null;
}

// ------------------------------------------------------------------------------ input gradient, 8-32 channels


/** Whether simd8/conv2d.wgsl's dgrad_simd8 applies: 8-lane subgroups, one group, stride 1, a kernel
 * 3 wide with horizontal dilation 1 or 1 wide (any height and vertical dilation), and a block's
 * weights (C_out x KH x KW x 16 floats) within one uniform window. */
export function dgradDirectApplies(g: ConvGeometry, c: Caps = caps()): boolean {
  const grid = g.n <= 65535 && g.h * Math.ceil(g.w / 32) <= 65535;
  return grid && g.groups === 1 && g.sh === 1 && g.sw === 1 && (g.kw === 1 || (g.kw === 3 && g.dw === 1)) && g.oc * g.kh * g.kw * 16 <= WINDOW_FLOATS && c.simd8;
}

/** Input channels up to which the direct SIMD-8 input gradient runs instead of the simd8 product
 * (lavapipe, batch 128, 3x3 stride 1: 16 channels 1.7-1.9x faster, 32 channels 1.3-1.6x, 64 at
 * 16x16 0.95-1.15x: the 9-texel im2col pack of dy weighs less as the rows grow). */
const DIRECT_MAX_CHANNELS = 32;

/** Whether the input gradient on the SIMD-8 path runs dgrad_simd8 rather than the simd8 product. */
export function dgradDirectPicked(g: ConvGeometry, c: Caps = caps()): boolean {
  return convDirect8.dgrad && g.c <= DIRECT_MAX_CHANNELS && dgradDirectApplies(g, c);
}

/** dx = conv_transpose(dy, w) by dgrad_simd8 (contiguous dy, w; dgradDirectApplies(g)): per block
 * of 16 input channels, a weight pack into its uniform window, then one workgroup per image, row
 * and 32 positions. */
export function convInputGradDirect8(dx: Tensor, dy: Tensor, w: Tensor, g: ConvGeometry): void {
  const op = 'conv2d input gradient';
  const blocks = Math.ceil(g.c / 16);
  const perBlock = g.oc * g.kh * g.kw * 16;
  const stride = Math.ceil(perBlock / 64) * 64; // 256-byte aligned windows
  const packed = empty([(blocks - 1) * stride + WINDOW_FLOATS]);
  if (packed.offset % 64 !== 0) throw new Error(`${op}: a fresh tensor at offset ${packed.offset} cannot hold 256-byte aligned uniform windows`);
  const spec = { defines: subgroupDefines(), constants: {
    IC: g.c, IH: g.h, IW: g.w, OC: g.oc, OH: g.oh, OW: g.ow, KH: g.kh, KW: g.kw, PH: g.ph, PW: g.pw, DH: g.dh,
  } };
  try {
    for (let b = 0; b < blocks; b++) {
      const pp = new Uint32Array(12);
      pp[3] = perBlock;
      pp[4] = packed.offset + b * stride;
      pp[5] = w.offset;
      pp[9] = b * 16;
      dispatch(kernel('simd8/conv2d', 'dgrad_w16', spec), [packed.bufferFor(op), w.bufferFor(op)], pp, grid1d(perBlock));
    }
    const xblocks = Math.ceil(g.w / 32);
    const flat = g.w % 4 === 0;
    const mainSpec = { defines: spec.defines, constants: { ...spec.constants, DG_FLAT: flat ? 1 : 0 } };
    for (let b = 0; b < blocks; b++) {
      const window = { buffer: packed.bufferFor(op), offset: (packed.offset + b * stride) * 4, size: WINDOW_FLOATS * 4 };
      const mp = new Uint32Array(12);
      mp[4] = dx.offset;
      mp[5] = dy.offset;
      mp[9] = b * 16;
      dispatch(kernel('simd8/conv2d', 'dgrad_simd8', mainSpec), [dx.bufferFor(op), dy.bufferFor(op), window], mp, [flat ? Math.ceil((g.h * g.w) / 32) : g.h * xblocks, g.n, 1]);
    }
  } finally {
    packed.dispose();
  }
}

// ------------------------------------------------------------------------------ narrow forward

/** Whether simd8/conv2d.wgsl's fwd_narrow_simd8 applies (and `auto` takes it on the SIMD-8 path): at
 * most 4 output channels, stride 1, a kernel 3 wide with horizontal dilation 1 or 1 wide, one
 * group, the weights (C_in x KH x KW vec4s) within one uniform window. Measured on BigGAN's
 * 256 -> 3 output convolution (bench/NOTES.md). */
export function fwdNarrowApplies(g: ConvGeometry, c: Caps = caps()): boolean {
  const grid = g.n <= 65535 && g.oh * Math.ceil(g.ow / 32) <= 65535;
  return grid && convDirect8.narrowForward && g.groups === 1 && g.oc <= 4 && g.sh === 1 && g.sw === 1 && (g.kw === 1 || (g.kw === 3 && g.dw === 1)) && g.c * g.kh * g.kw * 4 <= WINDOW_FLOATS && c.simd8;
}

/** The input gradient of a stride-1 convolution as the forward convolution fwd_narrow_simd8 runs:
 * dy as the input, dx as the output, the weight transposed and flipped (NF_FLIP), padding
 * (KH - 1) DH - PH (null when negative). */
function dgradAsForward(g: ConvGeometry): ConvGeometry | null {
  const ph = (g.kh - 1) * g.dh - g.ph;
  const pw = (g.kw - 1) * g.dw - g.pw;
  if (g.sh !== 1 || g.sw !== 1 || ph < 0 || pw < 0) return null;
  return { ...g, c: g.oc, h: g.oh, w: g.ow, oc: g.c, ph, pw, oh: g.h, ow: g.w };
}

/** Whether the input gradient runs as a narrow forward (at most 4 input channels, stride 1;
 * fwdNarrowApplies for dgradAsForward's geometry). */
export function dgradNarrowApplies(g: ConvGeometry, c: Caps = caps()): boolean {
  const fg = dgradAsForward(g);
  return fg !== null && fwdNarrowApplies(fg, c);
}

/** y = act(conv(x, w) + bias) by fwd_narrow_simd8 (contiguous x, w, bias; fwdNarrowApplies(g)). */
export function convForwardNarrow(out: Tensor, x: Tensor, w: Tensor, bias: Tensor | null, g: ConvGeometry, act: number, alpha: number): void {
  runNarrow(out, x, w, bias, g, act, alpha, false);
}

/** dx = conv_transpose(dy, w) by fwd_narrow_simd8 (contiguous dy, w; dgradNarrowApplies(g)). */
export function convInputGradNarrow(dx: Tensor, dy: Tensor, w: Tensor, g: ConvGeometry): void {
  runNarrow(dx, dy, w, null, dgradAsForward(g)!, 0, 0, true);
}

/** The weight pack and fwd_narrow_simd8 for forward geometry `g` (flip: w is the original
 * convolution's weight, to be transposed and flipped). */
function runNarrow(out: Tensor, x: Tensor, w: Tensor, bias: Tensor | null, g: ConvGeometry, act: number, alpha: number, flip: boolean): void {
  const op = flip ? 'conv2d input gradient' : 'conv2d';
  const len = g.c * g.kh * g.kw * 4;
  const packed = empty([WINDOW_FLOATS]);
  const flat = g.ow % 4 === 0;
  const constants = {
    IC: g.c, IH: g.h, IW: g.w, OC: g.oc, OH: g.oh, OW: g.ow, KH: g.kh, KW: g.kw, PH: g.ph, PW: g.pw, DH: g.dh,
    ACT: act, HAS_BIAS: bias ? 1 : 0, DG_FLAT: flat ? 1 : 0, NF_FLIP: flip ? 1 : 0,
  };
  const spec = { defines: subgroupDefines(), constants };
  try {
    const pp = new Uint32Array(12);
    pp[3] = len;
    pp[4] = packed.offset;
    pp[5] = w.offset;
    dispatch(kernel('simd8/conv2d', 'fwd_narrow_w', spec), [packed.bufferFor(op), w.bufferFor(op)], pp, grid1d(len));
    const mp = new Uint32Array(12);
    mp[4] = out.offset;
    mp[5] = x.offset;
    mp[7] = bias ? bias.offset : 0;
    new Float32Array(mp.buffer)[8] = alpha;
    const window = { buffer: packed.bufferFor(op), offset: packed.offset * 4, size: WINDOW_FLOATS * 4 };
    const blocks = flat ? Math.ceil((g.oh * g.ow) / 32) : g.oh * Math.ceil(g.ow / 32);
    dispatch(kernel('simd8/conv2d', 'fwd_narrow_simd8', spec), [out.bufferFor(op), x.bufferFor(op), window, (bias ?? x).bufferFor(op)], mp, [blocks, g.n, 1]);
  } finally {
    packed.dispose();
  }
}
