/**
 * Pooling and upsampling over NCHW feature maps (kernels/pool.wgsl): average, sum and max pools
 * with their backward passes, global average pooling, and nearest-neighbour upsampling by an
 * integer factor (BigGAN's generator blocks use x2).
 */
import { Tensor, empty } from '../tensor.ts';
import { record } from '../autograd.ts';
import { OpError } from '../errors.ts';
import { dispatch, grid1d, kernel } from './launch.ts';
import { contiguous } from './movement.ts';
import { mean } from './reduce.ts';
import type { Pair } from './conv.ts';

export interface Pool2dOptions {
  /** Default: the kernel size (PyTorch's default). */
  stride?: Pair;
  padding?: Pair;
  /** Average pool: divide by the window including the padding (PyTorch's default true). */
  countIncludePad?: boolean;
}

const fmt = (s: readonly number[]): string => `[${s.join(', ')}]`;

function pair(op: string, name: string, v: Pair | undefined, min: number): [number, number] {
  const p: [number, number] = typeof v === 'number' ? [v, v] : [v![0], v![1]];
  if (!p.every((d) => Number.isInteger(d) && d >= min)) throw new OpError(op, `${name} must be an integer >= ${min} or a pair of them, got ${JSON.stringify(v)}`);
  return p;
}

interface PoolGeo {
  n: number; c: number; h: number; w: number; kh: number; kw: number; sh: number; sw: number; ph: number; pw: number; oh: number; ow: number;
}

function poolGeometry(op: string, x: Tensor, kernelSize: Pair, opts: Pool2dOptions): PoolGeo {
  x.storageFor(op);
  if (x.rank !== 4) throw new OpError(op, `input must be 4-D (N, C, H, W), got shape ${fmt(x.shape)}`);
  if (x.dtype !== 'f32') throw new OpError(op, `input must be f32, got ${x.dtype}`);
  const [kh, kw] = pair(op, 'kernel size', kernelSize, 1);
  const [sh, sw] = pair(op, 'stride', opts.stride ?? kernelSize, 1);
  const [ph, pw] = pair(op, 'padding', opts.padding ?? 0, 0);
  const [n, c, h, w] = x.shape;
  if (2 * ph > kh || 2 * pw > kw) throw new OpError(op, `padding ${ph}x${pw} must be at most half the kernel ${kh}x${kw}`);
  if (kh > h + 2 * ph || kw > w + 2 * pw) {
    throw new OpError(op, `kernel ${kh}x${kw} is larger than the padded input ${h + 2 * ph}x${w + 2 * pw} (input ${fmt(x.shape)})`);
  }
  const oh = Math.floor((h + 2 * ph - kh) / sh) + 1;
  const ow = Math.floor((w + 2 * pw - kw) / sw) + 1;
  return { n, c, h, w, kh, kw, sh, sw, ph, pw, oh, ow };
}

function constants(g: PoolGeo, extra: Record<string, number>): Record<string, number> {
  return { IH: g.h, IW: g.w, OH: g.oh, OW: g.ow, KH: g.kh, KW: g.kw, SH: g.sh, SW: g.sw, PH: g.ph, PW: g.pw, ...extra };
}

function params(n: number, offIn: number): Uint32Array {
  return Uint32Array.of(n, offIn, 0, 0);
}

function windowPool(op: string, kind: 0 | 1, x: Tensor, kernelSize: Pair, opts: Pool2dOptions): Tensor {
  const g = poolGeometry(op, x, kernelSize, opts);
  const spec = { constants: constants(g, { OP: kind, COUNT_PAD: (opts.countIncludePad ?? true) ? 1 : 0 }) };
  const out = empty([g.n, g.c, g.oh, g.ow]);
  if (out.size > 0) {
    const xc = contiguous(x);
    dispatch(kernel('pool', 'pool_fwd', spec), [out.bufferFor(op), xc.bufferFor(op)], params(out.size, xc.offset), grid1d(out.size));
    if (xc !== x) xc.dispose();
  }
  const inShape = x.shape;
  return record(op, out, [x], [], (gr) => {
    const gc = contiguous(gr);
    const dx = empty(inShape);
    dispatch(kernel('pool', 'pool_bwd', spec), [dx.bufferFor(op), gc.bufferFor(op)], params(dx.size, gc.offset), grid1d(dx.size));
    if (gc !== gr) gc.dispose();
    return [dx];
  });
}

/** Average pooling (PyTorch's avg_pool2d, ceil_mode off). */
export function avgPool2d(x: Tensor, kernelSize: Pair, opts: Pool2dOptions = {}): Tensor {
  return windowPool('avgPool2d', 0, x, kernelSize, opts);
}

/** Sum over each window (an average pool without the division). */
export function sumPool2d(x: Tensor, kernelSize: Pair, opts: Pool2dOptions = {}): Tensor {
  return windowPool('sumPool2d', 1, x, kernelSize, opts);
}

/** Max pooling; the gradient goes to the first maximum of each window (PyTorch's rule). */
export function maxPool2d(x: Tensor, kernelSize: Pair, opts: Pool2dOptions = {}): Tensor {
  const op = 'maxPool2d';
  const g = poolGeometry(op, x, kernelSize, opts);
  const spec = { constants: constants(g, {}) };
  const out = empty([g.n, g.c, g.oh, g.ow]);
  const arg = empty([g.n, g.c, g.oh, g.ow], 'i32');
  if (out.size > 0) {
    const xc = contiguous(x);
    dispatch(kernel('pool', 'max_fwd', spec), [out.bufferFor(op), arg.bufferFor(op), xc.bufferFor(op)], params(out.size, xc.offset), grid1d(out.size));
    if (xc !== x) xc.dispose();
  }
  const inShape = x.shape;
  const result = record(op, out, [x], [arg], (gr, [a]) => {
    const gc = contiguous(gr);
    const dx = empty(inShape);
    dispatch(kernel('pool', 'max_bwd', spec), [dx.bufferFor(op), gc.bufferFor(op), a.bufferFor(op)], params(dx.size, gc.offset), grid1d(dx.size));
    if (gc !== gr) gc.dispose();
    return [dx];
  });
  arg.dispose();
  return result;
}

/** Mean over H and W: [N, C, H, W] -> [N, C, 1, 1] (keepdim) or [N, C]. */
export function globalAvgPool2d(x: Tensor, keepdim = true): Tensor {
  const op = 'globalAvgPool2d';
  x.storageFor(op);
  if (x.rank !== 4) throw new OpError(op, `input must be 4-D (N, C, H, W), got shape ${fmt(x.shape)}`);
  if (x.shape[2] * x.shape[3] === 0) throw new OpError(op, `input ${fmt(x.shape)} has an empty spatial size`);
  return mean(x, [2, 3], keepdim);
}

/** Nearest-neighbour upsampling by an integer factor: out[.., i, j] = x[.., i / s, j / s]. */
export function upsampleNearest2d(x: Tensor, scale = 2): Tensor {
  const op = 'upsampleNearest2d';
  x.storageFor(op);
  if (x.rank !== 4) throw new OpError(op, `input must be 4-D (N, C, H, W), got shape ${fmt(x.shape)}`);
  if (!Number.isInteger(scale) || scale < 1) throw new OpError(op, `scale must be a positive integer, got ${scale}`);
  const [n, c, h, w] = x.shape;
  const spec = { constants: { IH: h, IW: w, SCALE: scale } };
  const out = empty([n, c, h * scale, w * scale]);
  if (out.size > 0) {
    const xc = contiguous(x);
    dispatch(kernel('pool', 'up_fwd', spec), [out.bufferFor(op), xc.bufferFor(op)], params(out.size, xc.offset), grid1d(out.size));
    if (xc !== x) xc.dispose();
  }
  const inShape = x.shape;
  return record(op, out, [x], [], (gr) => {
    const gc = contiguous(gr);
    const dx = empty(inShape);
    dispatch(kernel('pool', 'up_bwd', spec), [dx.bufferFor(op), gc.bufferFor(op)], params(dx.size, gc.offset), grid1d(dx.size));
    if (gc !== gr) gc.dispose();
    return [dx];
  });
}
