/**
 * Shape and creation ops beyond movement.ts: slicing views (slice, narrow, select, split, chunk),
 * size-1 dimension views (squeeze, unsqueeze), flatten, concatenation (concat/cat, stack),
 * constant padding, and arange. Views cost no copy; their backward scatters the gradient into a
 * zero tensor of the input's shape through a view of the same region (copyInto). Concatenation
 * copies each input into its slice of the output; its backward hands each input a view of the
 * gradient.
 */
import { Tensor, empty, checkShape, type DType } from '../tensor.ts';
import { record } from '../autograd.ts';
import { OpError } from '../errors.ts';
import { dispatch, grid1d, kernel, defines } from './launch.ts';
import { full, zeros } from './creation.ts';
import { copyInto, reshape } from './movement.ts';

const fmt = (s: readonly number[]) => `[${s.join(', ')}]`;

function normDim(op: string, dim: number, rank: number): number {
  const d = dim < 0 ? dim + rank : dim;
  if (!Number.isInteger(d) || d < 0 || d >= rank) throw new OpError(op, `dimension ${dim} out of range for rank ${rank}`);
  return d;
}

/** One dimension's slice: first element, element count, step. */
interface Range {
  start: number;
  length: number;
  step: number;
}

/** A strided view of `x` taking `ranges[d]` along each dimension d (`drop` dimensions removed;
 * those must have length 1). No autograd. */
function rangeView(x: Tensor, ranges: readonly Range[], drop: readonly number[] = []): Tensor {
  const shape: number[] = [];
  const strides: number[] = [];
  let offset = x.offset;
  ranges.forEach((r, d) => {
    if (r.length > 0) offset += r.start * x.strides[d];
    if (drop.includes(d)) return;
    shape.push(r.length);
    strides.push(x.strides[d] * r.step);
  });
  return x.view(shape, strides, offset);
}

/** The view op pattern: forward is `rangeView(x, ranges, drop)`; backward writes g into that view
 * of zeros(x.shape). */
function sliceOp(op: string, x: Tensor, ranges: readonly Range[], drop: readonly number[] = []): Tensor {
  const out = rangeView(x, ranges, drop);
  const inShape = x.shape;
  const dtype = x.dtype;
  return record(op, out, [x], [], (g) => [scatterInto(inShape, dtype, ranges, drop, g)]);
}

function scatterInto(shape: readonly number[], dtype: DType, ranges: readonly Range[], drop: readonly number[], g: Tensor): Tensor {
  const z = zeros(shape, dtype);
  const region = rangeView(z, ranges, drop);
  copyInto(region, g);
  region.dispose();
  return z;
}

function fullRanges(shape: readonly number[]): Range[] {
  return shape.map((n) => ({ start: 0, length: n, step: 1 }));
}

function clampIndex(i: number, n: number): number {
  const v = i < 0 ? i + n : i;
  return Math.min(Math.max(v, 0), n);
}

/**
 * Python-style basic slicing as a view: along dimension d, elements starts[d], starts[d] +
 * steps[d], ... below ends[d]. Negative indices count from the end, out-of-range ones are clamped
 * (as in Python); `Infinity` as an end means "to the end". Dimensions past the given arrays are
 * kept whole. Steps must be positive integers (PyTorch has no negative steps).
 */
export function slice(t: Tensor, starts: readonly number[], ends: readonly number[], steps?: readonly number[]): Tensor {
  t.storageFor('slice');
  const n = Math.max(starts.length, ends.length, steps?.length ?? 0);
  if (n > t.rank) throw new OpError('slice', `${n} slice bounds for a tensor of shape ${fmt(t.shape)}`);
  const ranges = fullRanges(t.shape);
  for (let d = 0; d < n; d++) {
    const size = t.shape[d];
    const s = starts[d] ?? 0;
    const e = ends[d] ?? Infinity;
    const step = steps?.[d] ?? 1;
    if (!Number.isInteger(step) || step < 1) throw new OpError('slice', `step ${step} along dimension ${d} must be a positive integer (shape ${fmt(t.shape)})`);
    if (!Number.isInteger(s) || !(Number.isInteger(e) || e === Infinity || e === -Infinity)) {
      throw new OpError('slice', `bounds ${s}:${e} along dimension ${d} must be integers (shape ${fmt(t.shape)})`);
    }
    const lo = clampIndex(s, size);
    const hi = e === Infinity ? size : e === -Infinity ? 0 : clampIndex(e, size);
    ranges[d] = { start: lo, length: Math.max(0, Math.ceil((hi - lo) / step)), step };
  }
  return sliceOp('slice', t, ranges);
}

/** `length` elements of dimension `dim` from `start` (a view; torch.narrow). */
export function narrow(t: Tensor, dim: number, start: number, length: number): Tensor {
  t.storageFor('narrow');
  const d = normDim('narrow', dim, t.rank);
  const size = t.shape[d];
  const s = start < 0 ? start + size : start;
  if (!Number.isInteger(s) || !Number.isInteger(length) || s < 0 || length < 0 || s + length > size) {
    throw new OpError('narrow', `start ${start} and length ${length} out of range for dimension ${dim} of shape ${fmt(t.shape)}`);
  }
  const ranges = fullRanges(t.shape);
  ranges[d] = { start: s, length, step: 1 };
  return sliceOp('narrow', t, ranges);
}

/** Index `index` of dimension `dim`, that dimension removed (a view; torch.select). */
export function select(t: Tensor, dim: number, index: number): Tensor {
  t.storageFor('select');
  const d = normDim('select', dim, t.rank);
  const size = t.shape[d];
  const i = index < 0 ? index + size : index;
  if (!Number.isInteger(i) || i < 0 || i >= size) throw new OpError('select', `index ${index} out of range for dimension ${dim} of shape ${fmt(t.shape)}`);
  const ranges = fullRanges(t.shape);
  ranges[d] = { start: i, length: 1, step: 1 };
  return sliceOp('select', t, ranges, [d]);
}

/** Views of consecutive pieces along `dim`: of `size` elements each (the last may be smaller),
 * or of the given sizes (torch.split). */
export function split(t: Tensor, size: number | readonly number[], dim = 0): Tensor[] {
  t.storageFor('split');
  const d = normDim('split', dim, t.rank);
  const total = t.shape[d];
  let sizes: number[];
  if (typeof size === 'number') {
    if (!Number.isInteger(size) || size < 1) throw new OpError('split', `split size must be a positive integer, got ${size}`);
    sizes = [];
    for (let s = 0; s < total; s += size) sizes.push(Math.min(size, total - s));
    if (sizes.length === 0) sizes.push(0);
  } else {
    sizes = [...size];
    if (sizes.some((s) => !Number.isInteger(s) || s < 0) || sizes.reduce((a, s) => a + s, 0) !== total) {
      throw new OpError('split', `sizes [${sizes.join(', ')}] do not add up to dimension ${dim} (${total}) of shape ${fmt(t.shape)}`);
    }
  }
  const out: Tensor[] = [];
  let start = 0;
  for (const s of sizes) {
    out.push(narrow(t, d, start, s));
    start += s;
  }
  return out;
}

/** `chunks` views along `dim` of ceil(size / chunks) elements each (torch.chunk). */
export function chunk(t: Tensor, chunks: number, dim = 0): Tensor[] {
  if (!Number.isInteger(chunks) || chunks < 1) throw new OpError('chunk', `chunks must be a positive integer, got ${chunks}`);
  const d = normDim('chunk', dim, t.rank);
  return split(t, Math.max(1, Math.ceil(t.shape[d] / chunks)), d);
}

/** A view of `x` as `shape`, which differs from x's shape only by size-1 dimensions. */
function onesView(x: Tensor, shape: readonly number[]): Tensor {
  const srcDims: number[] = [];
  x.shape.forEach((n, d) => {
    if (n !== 1) srcDims.push(d);
  });
  let k = 0;
  const strides = shape.map((n) => (n === 1 ? 1 : x.strides[srcDims[k++]]));
  return x.view(shape, strides, x.offset);
}

function onesOp(op: string, x: Tensor, shape: readonly number[]): Tensor {
  const out = onesView(x, shape);
  const inShape = x.shape;
  return record(op, out, [x], [], (g) => [onesView(g, inShape)]);
}

/** Removes size-1 dimensions: all of them, or those among `dim` (others are left alone, as in
 * PyTorch). A view. */
export function squeeze(t: Tensor, dim?: number | readonly number[]): Tensor {
  t.storageFor('squeeze');
  const dims = dim === undefined ? t.shape.map((_, d) => d) : (typeof dim === 'number' ? [dim] : [...dim]).map((d) => normDim('squeeze', d, t.rank));
  const shape = t.shape.filter((n, d) => !(n === 1 && dims.includes(d)));
  return onesOp('squeeze', t, shape);
}

/** Inserts a size-1 dimension at `dim` (in [-rank-1, rank]). A view. */
export function unsqueeze(t: Tensor, dim: number): Tensor {
  t.storageFor('unsqueeze');
  const d = normDim('unsqueeze', dim, t.rank + 1);
  const shape = [...t.shape];
  shape.splice(d, 0, 1);
  return onesOp('unsqueeze', t, shape);
}

/** Merges dimensions startDim..endDim into one (a view of row-major tensors, else a copy). */
export function flatten(t: Tensor, startDim = 0, endDim = -1): Tensor {
  t.storageFor('flatten');
  if (t.rank === 0) return reshape(t, [1]);
  const s = normDim('flatten', startDim, t.rank);
  const e = normDim('flatten', endDim, t.rank);
  if (s > e) throw new OpError('flatten', `startDim ${startDim} comes after endDim ${endDim} (shape ${fmt(t.shape)})`);
  const merged = t.shape.slice(s, e + 1).reduce((a, n) => a * n, 1);
  return reshape(t, [...t.shape.slice(0, s), merged, ...t.shape.slice(e + 1)]);
}

/** Joins tensors along an existing dimension `dim` (torch.cat). */
export function concat(tensors: readonly Tensor[], dim = 0): Tensor {
  if (tensors.length === 0) throw new OpError('concat', 'needs at least one tensor');
  for (const x of tensors) x.storageFor('concat');
  const first = tensors[0];
  const d = normDim('concat', dim, first.rank);
  for (const x of tensors) {
    if (x.dtype !== first.dtype) throw new OpError('concat', `dtype mismatch: ${first.dtype} and ${x.dtype}`);
    if (x.rank !== first.rank || x.shape.some((n, k) => k !== d && n !== first.shape[k])) {
      throw new OpError('concat', `shapes ${tensors.map((y) => fmt(y.shape)).join(', ')} differ outside dimension ${dim}`);
    }
  }
  const shape = [...first.shape];
  shape[d] = tensors.reduce((a, x) => a + x.shape[d], 0);
  const out = empty(shape, first.dtype);
  const ranges = fullRanges(shape);
  const pieces: Range[][] = [];
  let start = 0;
  for (const x of tensors) {
    const r = ranges.map((q) => ({ ...q }));
    r[d] = { start, length: x.shape[d], step: 1 };
    pieces.push(r);
    start += x.shape[d];
    if (x.size > 0) {
      const region = rangeView(out, r);
      copyInto(region, x);
      region.dispose();
    }
  }
  return record('concat', out, tensors, [], (g) => pieces.map((r) => rangeView(g, r)));
}

/** Alias of `concat` (PyTorch's name). */
export const cat = concat;

/** Joins same-shaped tensors along a new dimension `dim` (torch.stack). */
export function stack(tensors: readonly Tensor[], dim = 0): Tensor {
  if (tensors.length === 0) throw new OpError('stack', 'needs at least one tensor');
  for (const x of tensors) x.storageFor('stack');
  const first = tensors[0];
  const d = normDim('stack', dim, first.rank + 1);
  for (const x of tensors) {
    if (x.dtype !== first.dtype) throw new OpError('stack', `dtype mismatch: ${first.dtype} and ${x.dtype}`);
    if (x.rank !== first.rank || x.shape.some((n, k) => n !== first.shape[k])) {
      throw new OpError('stack', `all tensors must have the same shape, got ${tensors.map((y) => fmt(y.shape)).join(', ')}`);
    }
  }
  const shape = [...first.shape];
  shape.splice(d, 0, tensors.length);
  const out = empty(shape, first.dtype);
  const pieces: Range[][] = tensors.map((_, i) => {
    const r = fullRanges(shape);
    r[d] = { start: i, length: 1, step: 1 };
    return r;
  });
  tensors.forEach((x, i) => {
    if (x.size === 0) return;
    const region = rangeView(out, pieces[i], [d]);
    copyInto(region, x);
    region.dispose();
  });
  return record('stack', out, tensors, [], (g) => pieces.map((r) => rangeView(g, r, [d])));
}

/**
 * Constant padding in torch.nn.functional.pad's order: pads = [left of the last dimension, right
 * of the last dimension, left of the one before, ...]. Negative pads crop. The backward takes the
 * gradient of the copied region (a view when nothing was cropped).
 */
export function pad(t: Tensor, pads: readonly number[], value = 0): Tensor {
  t.storageFor('pad');
  if (pads.length % 2 !== 0 || pads.length > 2 * t.rank) {
    throw new OpError('pad', `pads [${pads.join(', ')}] must have an even length of at most 2 * rank = ${2 * t.rank} (shape ${fmt(t.shape)})`);
  }
  if (pads.some((p) => !Number.isInteger(p))) throw new OpError('pad', `pads [${pads.join(', ')}] must be integers`);
  const shape = [...t.shape];
  const src = fullRanges(t.shape);
  const dst = fullRanges(t.shape);
  let cropped = false;
  for (let k = 0; k < pads.length / 2; k++) {
    const d = t.rank - 1 - k;
    const left = pads[2 * k];
    const right = pads[2 * k + 1];
    shape[d] = t.shape[d] + left + right;
    if (shape[d] < 0) throw new OpError('pad', `pads [${pads.join(', ')}] leave dimension ${d} of shape ${fmt(t.shape)} with negative size ${shape[d]}`);
    const from = Math.max(0, -left);
    const length = Math.max(0, t.shape[d] - from - Math.max(0, -right));
    src[d] = { start: from, length, step: 1 };
    dst[d] = { start: Math.max(0, left), length, step: 1 };
    if (left < 0 || right < 0) cropped = true;
  }
  const out = full(shape, value, t.dtype);
  const region = rangeView(out, dst);
  const source = rangeView(t, src);
  if (region.size > 0) copyInto(region, source);
  region.dispose();
  source.dispose();
  const inShape = t.shape;
  const dtype = t.dtype;
  return record('pad', out, [t], [], (g) => {
    const piece = rangeView(g, dst);
    if (!cropped) return [piece];
    const z = scatterInto(inShape, dtype, src, [], piece);
    piece.dispose();
    return [z];
  });
}

/**
 * start, start + step, ... below end (torch.arange); `arange(n)` is 0..n-1. The length is
 * ceil((end - start) / step). The dtype defaults to i32 when start, end and step are integers,
 * else f32 (PyTorch's inference, with i32 for int64).
 */
export function arange(start: number, end?: number, step = 1, dtype?: DType): Tensor {
  const [lo, hi] = end === undefined ? [0, start] : [start, end];
  if (![lo, hi, step].every(Number.isFinite)) throw new OpError('arange', `start ${lo}, end ${hi} and step ${step} must be finite`);
  if (step === 0) throw new OpError('arange', 'step must be non-zero');
  const n = Math.ceil((hi - lo) / step);
  if (n < 0) throw new OpError('arange', `the bounds [${lo}, ${hi}) are inconsistent with the sign of step ${step}`);
  const type: DType = dtype ?? ([lo, hi, step].every(Number.isInteger) ? 'i32' : 'f32');
  if (type !== 'f32' && !(Number.isInteger(lo) && Number.isInteger(step))) {
    throw new OpError('arange', `an ${type} arange needs integer start and step, got ${lo} and ${step}`);
  }
  const last = lo + (n - 1) * step;
  if (type === 'i32' && n > 0 && (Math.max(lo, last) > 2 ** 31 - 1 || Math.min(lo, last) < -(2 ** 31))) throw new OpError('arange', `values [${lo}, ${last}] do not fit in i32`);
  if (type === 'u32' && n > 0 && (Math.min(lo, last) < 0 || Math.max(lo, last) > 2 ** 32 - 1)) throw new OpError('arange', `values [${lo}, ${last}] do not fit in u32`);
  checkShape('arange', [n]);
  const out = empty([n], type);
  if (n === 0) return out;
  const params = new Uint32Array(4);
  params[0] = n;
  params[1] = out.offset;
  if (type === 'f32') {
    const f = new Float32Array(params.buffer);
    f[2] = lo;
    f[3] = step;
  } else {
    // two's complement words: a negative u32 step wraps like the kernel's u32 arithmetic
    const s = new Int32Array(params.buffer);
    s[2] = lo;
    s[3] = step;
  }
  dispatch(kernel('fill', 'arange', { defines: defines(type) }), [out.bufferFor('arange')], params, grid1d(n));
  return out;
}
