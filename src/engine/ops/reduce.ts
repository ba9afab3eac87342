/**
 * Reductions over any set of axes. The input is viewed as [kept..., reduced...] (a copy only when
 * the reduced axes are not already innermost and contiguous), then each output row is folded by
 * one workgroup with a tree in workgroup memory (kernels/reduce.wgsl).
 */
import { Tensor, empty, numel } from '../tensor.ts';
import { record } from '../autograd.ts';
import { OpError } from '../errors.ts';
import { dispatch, kernel } from './launch.ts';
import { contiguous, reshape, broadcastTo } from './movement.ts';
import { scaleRaw } from './binary.ts';

export type Axes = number | readonly number[] | undefined;

/** Normalised, sorted, distinct axes (all axes when undefined). */
export function normAxes(op: string, rank: number, axes: Axes): number[] {
  if (axes === undefined) return [...Array(rank).keys()];
  const list = typeof axes === 'number' ? [axes] : [...axes];
  const out = list.map((a) => {
    const d = a < 0 ? a + rank : a;
    if (!Number.isInteger(d) || d < 0 || d >= rank) throw new OpError(op, `axis ${a} out of range for rank ${rank}`);
    return d;
  });
  if (new Set(out).size !== out.length) throw new OpError(op, `repeated axis in [${list.join(', ')}]`);
  return out.sort((x, y) => x - y);
}

/** Output shape of a reduction over `axes`. */
export function reducedShape(shape: readonly number[], axes: readonly number[], keepdim: boolean): number[] {
  const out: number[] = [];
  shape.forEach((d, i) => {
    if (!axes.includes(i)) out.push(d);
    else if (keepdim) out.push(1);
  });
  return out;
}

const OPS = { sum: 0, max: 1, min: 2 } as const;

/**
 * The raw row reduction (no autograd): returns a contiguous tensor of the kept dimensions.
 * `scale` multiplies the result (1/count for a mean).
 */
export function reduceRaw(op: keyof typeof OPS, x: Tensor, axes: readonly number[], keepdim: boolean, scale = 1): Tensor {
  if (x.dtype !== 'f32') throw new OpError(op, `expects an f32 tensor, got ${x.dtype}`);
  const kept = [...Array(x.rank).keys()].filter((d) => !axes.includes(d));
  const permuted = kept.length === x.rank ? x : permuteRaw(x, [...kept, ...axes]);
  const src = contiguous(permuted);
  const rows = numel(kept.map((d) => x.shape[d]));
  const cols = numel(axes.map((d) => x.shape[d]));
  const out = empty(reducedShape(x.shape, axes, keepdim));
  if (cols === 0 && op !== 'sum') throw new OpError(op, `cannot take the ${op} of an empty set of elements (shape [${x.shape.join(', ')}])`);
  const params = new Uint32Array(4);
  params[0] = rows;
  params[1] = cols;
  params[2] = src.offset;
  new Float32Array(params.buffer)[3] = scale;
  if (rows > 0) {
    const gx = Math.min(rows, 32768);
    dispatch(kernel('reduce', 'rows', { constants: { OP: OPS[op] } }), [out.bufferFor(op), src.bufferFor(op)], params, [gx, Math.ceil(rows / gx)]);
  }
  if (src !== x && src !== permuted) src.dispose();
  if (permuted !== x) permuted.dispose();
  return out;
}

/** permute without autograd (a plain view). */
function permuteRaw(x: Tensor, perm: readonly number[]): Tensor {
  return x.view(perm.map((d) => x.shape[d]), perm.map((d) => x.strides[d]), x.offset);
}

export function sum(x: Tensor, axes?: Axes, keepdim = false): Tensor {
  const ax = normAxes('sum', x.rank, axes);
  const out = reduceRaw('sum', x, ax, keepdim);
  const inShape = x.shape;
  return record('sum', out, [x], [], (g) => [expandBack(g, inShape, ax, keepdim)]);
}

export function mean(x: Tensor, axes?: Axes, keepdim = false): Tensor {
  const ax = normAxes('mean', x.rank, axes);
  const count = numel(ax.map((d) => x.shape[d]));
  const out = reduceRaw('sum', x, ax, keepdim, count === 0 ? NaN : 1 / count);
  const inShape = x.shape;
  return record('mean', out, [x], [], (g) => {
    const e = expandBack(g, inShape, ax, keepdim);
    const r = scaleRaw(e, 1 / count);
    e.dispose();
    return [r];
  });
}

/** Broadcasts a reduced gradient back over the reduced axes (a zero-stride view). */
export function expandBack(g: Tensor, inShape: readonly number[], axes: readonly number[], keepdim: boolean): Tensor {
  const withOnes = keepdim ? g : reshape(g, reducedShape(inShape, axes, true));
  const out = broadcastTo(withOnes, inShape);
  if (withOnes !== g) withOnes.dispose();
  return out;
}

/** Sums a broadcast gradient down to `shape` (the backward of every broadcasting op). */
export function sumToShape(g: Tensor, shape: readonly number[]): Tensor {
  if (g.rank === shape.length && g.shape.every((d, i) => d === shape[i])) return g;
  const lead = g.rank - shape.length;
  const axes: number[] = [];
  for (let d = 0; d < g.rank; d++) {
    if (d < lead || (shape[d - lead] === 1 && g.shape[d] !== 1)) axes.push(d);
  }
  const s = sum(g, axes, true);
  if (s.rank === shape.length && s.shape.every((d, i) => d === shape[i])) return s;
  const r = reshape(s, shape);
  s.dispose();
  return r;
}
