/**
 * Reductions over any set of axes (kernels/reduce.wgsl), each with its backward beside it.
 *
 * A reduction folds an [outer, R, inner] view of its input, chosen by `layoutOf`:
 *  - reduced axes forming one block of a row-major tensor are folded in place: by rows
 *    (inner = 1: one workgroup per row, a tree in workgroup memory) or by columns (inner > 1:
 *    one thread per output, coalesced across threads, as for a bias gradient [N, C] -> [C]);
 *  - any other axis set is moved innermost by one copy, then folded by rows.
 * Few long rows (1 x 10M) take a two-pass path (`partial` folds chunks into [rows, chunks], then
 * `rows` folds those), and long columns with few outputs are chunked the same way, so a huge
 * reduction spreads over thousands of workgroups instead of one. Rows shorter than 32 go one
 * thread per row.
 *
 * Arg-reductions (argmax, argmin, max/min with indices) work along one dimension of an
 * [outer, D, inner] view without any permute.
 */
import { Tensor, empty, numel } from '../tensor.ts';
import { record } from '../autograd.ts';
import { OpError } from '../errors.ts';
import { dispatch, grid1d, kernel, WG, f32Bits } from './launch.ts';
import { contiguous, reshape, copyInto, expandView } from './movement.ts';
import { binaryRaw, compareRaw, scaleRaw } from './binary-raw.ts';

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

// Row-reduction kernel selectors (see kernels/reduce.wgsl).
const OPS = { sum: 0, max: 1, min: 2 } as const;
const OP_SQDEV = 3;
const OP_EXPDEV = 4;
const FIN_SCALE = 0;
const FIN_LOGPLUS = 1;
const FIN_SQRT = 2;
const INF_BITS = 0x7f800000;

/**
 * Two-pass crossover. One workgroup per row keeps a GPU busy only with enough rows (an H100 runs
 * 132 SMs x several workgroups each): below TWO_PASS_MAX_ROWS rows, a row longer than
 * TWO_PASS_MIN_COLS is split into chunks of at least CHUNK elements (16 per thread), so a
 * 1 x 10M sum runs as ~2400 workgroups, then one small pass over the partials.
 */
const CHUNK = WG * 16;
const TWO_PASS_MIN_COLS = 2 * CHUNK;
const TWO_PASS_MAX_ROWS = 1024;

/** Whether a [rows, cols] reduction takes the two-pass path (exported for tests and benches). */
export function usesTwoPass(rows: number, cols: number): boolean {
  return cols >= TWO_PASS_MIN_COLS && rows < TWO_PASS_MAX_ROWS;
}

function chunking(cols: number): { chunk: number; chunks: number } {
  // at most ~64K partials per row, so the second pass stays one short workgroup per row
  const chunk = Math.max(CHUNK, Math.ceil(cols / 65536 / WG) * WG);
  return { chunk, chunks: Math.ceil(cols / chunk) };
}

function groups2d(groups: number): [number, number] {
  const gx = Math.min(groups, 32768);
  return [gx, Math.ceil(groups / gx)];
}

/** The [outer, R, inner] view a reduction folds: `src` row-major from src.offset. */
interface Layout {
  src: Tensor;
  /** Whether `src` is a copy made for the reduction (the caller disposes it). */
  owned: boolean;
  outer: number;
  R: number;
  inner: number;
  /** The dimension order of `src` relative to the input (identity unless copied). */
  perm: number[];
}

/** Below this inner size a column reduction reads too few contiguous elements per row: the
 * reduced axes are moved innermost (one copy) instead. */
const COLS_MIN_INNER = 4;
/** Column path: enough threads to fill a large GPU before R is split into chunks... */
const COLS_TARGET_THREADS = 65536;
/** ...of at least this many rows each. */
const COLS_MIN_CHUNK = 64;

function params(rows: number, cols: number, offIn: number, scale: number, center: Tensor | null, inner = 1, chunk = 0, chunks = 0): Uint32Array {
  const p = new Uint32Array(12);
  p[0] = rows;
  p[1] = cols;
  p[2] = offIn;
  p[3] = f32Bits(scale);
  p[4] = chunk;
  p[5] = chunks;
  p[6] = center ? center.offset : 0;
  p[7] = INF_BITS;
  p[8] = inner;
  return p;
}

/**
 * Folds `lay` into `out` (contiguous, outer * inner elements, any shape). `center` (one value per
 * output) feeds OP_SQDEV/OP_EXPDEV and FIN_LOGPLUS.
 */
function reduceInto(out: Tensor, lay: Layout, op: number, fin: number, scale: number, center: Tensor | null): void {
  if (lay.inner === 1 && lay.R >= SHORT_ROW) rowReduce(out, lay.src, lay.outer, lay.R, op, fin, scale, center);
  else colReduce(out, lay.src, lay.outer, lay.R, lay.inner, op, fin, scale, center);
}

/** Rows shorter than this would leave most of a 256-thread workgroup idle (and pay its barrier
 * tree): one thread folds each such row instead (the `cols` kernel with inner = 1). */
const SHORT_ROW = 32;

/** The row layout: one workgroup per row, or the two-pass path for few long rows. */
function rowReduce(out: Tensor, src: Tensor, rows: number, cols: number, op: number, fin: number, scale: number, center: Tensor | null): void {
  if (rows === 0) return;
  const bufs = (o: Tensor, x: Tensor) => [o.bufferFor('reduce'), x.bufferFor('reduce'), (center ?? x).bufferFor('reduce')];
  if (!usesTwoPass(rows, cols)) {
    dispatch(kernel('reduce', 'rows', { constants: { OP: op, FIN: fin } }), bufs(out, src), params(rows, cols, src.offset, scale, center), groups2d(rows));
    return;
  }
  const { chunk, chunks } = chunking(cols);
  const parts = empty([rows, chunks]);
  dispatch(kernel('reduce', 'partial', { constants: { OP: op, FIN: 0 } }), bufs(parts, src), params(rows, cols, src.offset, scale, center, 1, chunk, chunks), groups2d(rows * chunks));
  const op2 = op >= OP_SQDEV ? OPS.sum : op;
  dispatch(kernel('reduce', 'rows', { constants: { OP: op2, FIN: fin } }), bufs(out, parts), params(rows, chunks, 0, scale, center), groups2d(rows));
  parts.dispose();
}

/** How many chunks a column reduction of nOut outputs over R rows is split into. */
export function columnChunks(nOut: number, R: number): number {
  if (nOut >= COLS_TARGET_THREADS || R <= COLS_MIN_CHUNK) return 1;
  return Math.min(Math.ceil(R / COLS_MIN_CHUNK), Math.ceil(COLS_TARGET_THREADS / nOut));
}

/** The column layout: a thread per output, R split into chunks (recursively) when outputs are few. */
function colReduce(out: Tensor, src: Tensor, outer: number, R: number, inner: number, op: number, fin: number, scale: number, center: Tensor | null): void {
  const nOut = outer * inner;
  if (nOut === 0) return;
  const bufs = (o: Tensor, x: Tensor) => [o.bufferFor('reduce'), x.bufferFor('reduce'), (center ?? x).bufferFor('reduce')];
  const chunks = columnChunks(nOut, R);
  if (chunks === 1) {
    dispatch(kernel('reduce', 'cols', { constants: { OP: op, FIN: fin } }), bufs(out, src), params(outer, R, src.offset, scale, center, inner, Math.max(R, 1), 1), grid1d(nOut));
    return;
  }
  const chunk = Math.ceil(R / chunks);
  const parts = empty([chunks, nOut]);
  dispatch(kernel('reduce', 'cols', { constants: { OP: op, FIN: 0 } }), bufs(parts, src), params(outer, R, src.offset, scale, center, inner, chunk, chunks), grid1d(nOut * chunks));
  colReduce(out, parts, 1, chunks, nOut, op >= OP_SQDEV ? OPS.sum : op, fin, scale, center);
  parts.dispose();
}

/** The cheapest layout for reducing `axes` of x: in place when they form one block of a
 * row-major tensor, else moved innermost by one copy. */
function layoutOf(op: string, x: Tensor, axes: readonly number[]): Layout {
  x.storageFor(op);
  if (x.dtype !== 'f32') throw new OpError(op, `expects an f32 tensor, got ${x.dtype} of shape [${x.shape.join(', ')}]`);
  const identity = [...Array(x.rank).keys()];
  const block = axes.length > 0 && axes.every((d, i) => d === axes[0] + i);
  if (x.isContiguous && block) {
    const a = axes[0];
    const b = axes[axes.length - 1] + 1;
    const inner = numel(x.shape.slice(b));
    if (inner === 1 || inner >= COLS_MIN_INNER) {
      return { src: x, owned: false, outer: numel(x.shape.slice(0, a)), R: numel(x.shape.slice(a, b)), inner, perm: identity };
    }
  }
  const kept = identity.filter((d) => !axes.includes(d));
  const perm = [...kept, ...axes];
  const permuted = perm.every((d, i) => d === i) ? x : permuteRaw(x, perm);
  const src = contiguous(permuted);
  if (permuted !== x && src !== permuted) permuted.dispose();
  const outer = numel(kept.map((d) => x.shape[d]));
  const R = numel(axes.map((d) => x.shape[d]));
  return { src, owned: src !== x, outer, R, inner: 1, perm };
}

/**
 * The raw row reduction (no autograd): returns a contiguous tensor of the kept dimensions.
 * `scale` multiplies the result (1/count for a mean).
 */
export function reduceRaw(op: keyof typeof OPS, x: Tensor, axes: readonly number[], keepdim: boolean, scale = 1): Tensor {
  const cols = numel(axes.map((d) => x.shape[d]));
  if (cols === 0 && op !== 'sum') throw new OpError(op, `cannot take the ${op} of an empty set of elements (shape [${x.shape.join(', ')}])`);
  const lay = layoutOf(op, x, axes);
  const out = empty(reducedShape(x.shape, axes, keepdim));
  reduceInto(out, lay, OPS[op], FIN_SCALE, scale, null);
  if (lay.owned) lay.src.dispose();
  return out;
}

/** permute without autograd (a plain view). */
function permuteRaw(x: Tensor, perm: readonly number[]): Tensor {
  return x.view(perm.map((d) => x.shape[d]), perm.map((d) => x.strides[d]), x.offset);
}

/** A contiguous [kept..., reduced...] tensor viewed back in the input's dimension order. */
function unpermute(t: Tensor, perm: readonly number[]): Tensor {
  if (perm.every((d, i) => d === i)) return t;
  const inv = new Array<number>(perm.length);
  perm.forEach((d, i) => (inv[d] = i));
  const v = permuteRaw(t, inv);
  t.dispose();
  return v;
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

/** Largest value over `axes` (torch.amax). The gradient goes to every position holding the
 * maximum, split evenly between ties. NaN propagates. */
export function max(x: Tensor, axes?: Axes, keepdim = false): Tensor {
  return extremum('max', x, axes, keepdim);
}

/** Smallest value over `axes` (torch.amin); gradient as `max`. */
export function min(x: Tensor, axes?: Axes, keepdim = false): Tensor {
  return extremum('min', x, axes, keepdim);
}

export const amax = max;
export const amin = min;

function extremum(op: 'max' | 'min', x: Tensor, axes: Axes, keepdim: boolean): Tensor {
  const ax = normAxes(op, x.rank, axes);
  const out = reduceRaw(op, x, ax, keepdim);
  const inShape = x.shape;
  return record(op, out, [x], [x, out], (g, [xs, outs]) => {
    const ob = expandBack(outs, inShape, ax, keepdim);
    const mask = compareRaw('eq', xs, ob);
    ob.dispose();
    const count = reduceRaw('sum', mask, ax, keepdim);
    const share = binaryRaw('div', g, count);
    count.dispose();
    const sb = expandBack(share, inShape, ax, keepdim);
    const r = binaryRaw('mul', mask, sb);
    for (const t of [mask, share, sb]) t.dispose();
    return [r];
  });
}

/** log(sum(exp(x))) over `axes`, computed around the maximum (no overflow); its gradient is the
 * softmax over the same axes. */
export function logsumexp(x: Tensor, axes?: Axes, keepdim = false): Tensor {
  const ax = normAxes('logsumexp', x.rank, axes);
  const cols = numel(ax.map((d) => x.shape[d]));
  if (cols === 0) throw new OpError('logsumexp', `cannot reduce an empty set of elements (shape [${x.shape.join(', ')}] over axes [${ax.join(', ')}])`);
  const lay = layoutOf('logsumexp', x, ax);
  const m = empty([lay.outer * lay.inner]);
  reduceInto(m, lay, OPS.max, FIN_SCALE, 1, null);
  const out = empty(reducedShape(x.shape, ax, keepdim));
  reduceInto(out, lay, OP_EXPDEV, FIN_LOGPLUS, 1, m);
  m.dispose();
  const { R, inner, perm } = lay;
  const res = record('logsumexp', out, [x], [lay.src, out], (g, [xs, lse]) => [centredBackward(0, xs, lse, g, null, 1, R, inner, perm)]);
  if (lay.owned) lay.src.dispose();
  return res;
}

export interface VarianceOptions {
  /** Subtracted from the count in the divisor (torch.var's correction; default 1, unbiased). */
  correction?: number;
  /** Shorthand: true is correction 1, false correction 0. */
  unbiased?: boolean;
  keepdim?: boolean;
}

function correctionOf(opts: VarianceOptions): number {
  if (opts.correction !== undefined) return opts.correction;
  if (opts.unbiased !== undefined) return opts.unbiased ? 1 : 0;
  return 1;
}

/** Variance over `axes` (torch.var; default correction 1). Computed around the mean (two passes
 * over the data, no catastrophic cancellation). A divisor n - correction <= 0 gives inf/NaN as
 * in PyTorch. */
export function variance(x: Tensor, axes?: Axes, opts: VarianceOptions = {}): Tensor {
  return spread('variance', x, axes, opts, false);
}

/** Standard deviation over `axes` (torch.std; default correction 1). */
export function std(x: Tensor, axes?: Axes, opts: VarianceOptions = {}): Tensor {
  return spread('std', x, axes, opts, true);
}

function spread(op: string, x: Tensor, axes: Axes, opts: VarianceOptions, isStd: boolean): Tensor {
  const ax = normAxes(op, x.rank, axes);
  const keepdim = opts.keepdim ?? false;
  const corr = correctionOf(opts);
  const cols = numel(ax.map((d) => x.shape[d]));
  const lay = layoutOf(op, x, ax);
  const mu = empty([lay.outer * lay.inner]);
  reduceInto(mu, lay, OPS.sum, FIN_SCALE, 1 / cols, null);
  const divisor = Math.max(0, cols - corr);
  const out = empty(reducedShape(x.shape, ax, keepdim));
  reduceInto(out, lay, OP_SQDEV, isStd ? FIN_SQRT : FIN_SCALE, 1 / divisor, mu);
  const saved = isStd ? [lay.src, mu, out] : [lay.src, mu];
  const { R, inner, perm } = lay;
  const res = record(op, out, [x], saved, (g, [xs, mus, sd]) =>
    isStd ? [centredBackward(2, xs, mus, g, sd, 1 / divisor, R, inner, perm)] : [centredBackward(1, xs, mus, g, null, 2 / divisor, R, inner, perm)],
  );
  mu.dispose();
  if (lay.owned) lay.src.dispose();
  return res;
}

/** g[r] * f(x[e] - c[r]) on the forward's [outer, R, inner] layout, viewed back in the input's
 * order. */
function centredBackward(mode: number, xs: Tensor, c: Tensor, g: Tensor, s: Tensor | null, scale: number, R: number, inner: number, perm: readonly number[]): Tensor {
  const gc = dense(g);
  const out = empty(xs.shape);
  const n = xs.size;
  if (n > 0) {
    const p = new Uint32Array(8);
    p[0] = n;
    p[1] = R;
    p[2] = xs.offset;
    p[3] = f32Bits(scale);
    p[4] = inner;
    const cc = dense(c);
    const sc = s ? dense(s) : cc;
    dispatch(kernel('reduce', 'rows_bwd', { constants: { MODE: mode } }), [out.bufferFor('reduce'), xs.bufferFor('reduce'), cc.bufferFor('reduce'), gc.bufferFor('reduce'), sc.bufferFor('reduce')], p, grid1d(n));
    if (cc !== c) cc.dispose();
    if (s && sc !== s) sc.dispose();
  }
  if (gc !== g) gc.dispose();
  return unpermute(out, perm);
}

/** `t` itself when row-major from offset 0 (what kernels indexing from 0 need), else a copy. */
export function dense(t: Tensor): Tensor {
  if (t.isContiguous && t.offset === 0) return t;
  const c = empty(t.shape, t.dtype);
  copyInto(c, t);
  return c;
}

// ------------------------------------------------------------------------------ arg-reductions

function dimOf(op: string, x: Tensor, dim: number): number {
  const d = dim < 0 ? dim + x.rank : dim;
  if (!Number.isInteger(d) || d < 0 || d >= x.rank) throw new OpError(op, `dimension ${dim} out of range for shape [${x.shape.join(', ')}]`);
  return d;
}

/** Values and first indices of the extremum along `d` (raw, no autograd). */
function argRaw(op: string, x: Tensor, d: number, argmin: boolean, keepdim: boolean): { values: Tensor; indices: Tensor } {
  x.storageFor(op);
  if (x.dtype !== 'f32') throw new OpError(op, `expects an f32 tensor, got ${x.dtype} of shape [${x.shape.join(', ')}]`);
  const D = x.shape[d];
  if (D === 0) throw new OpError(op, `cannot reduce the empty dimension ${d} of shape [${x.shape.join(', ')}]`);
  const xc = contiguous(x);
  const outer = numel(x.shape.slice(0, d));
  const inner = numel(x.shape.slice(d + 1));
  const rows = outer * inner;
  const shape = reducedShape(x.shape, [d], keepdim);
  const values = empty(shape);
  const indices = empty(shape, 'i32');
  const spec = { constants: { ARGMIN: argmin ? 1 : 0, PARTS: 0 } };
  const params = (r: number, dd: number, inn: number, off: number, chunk = 0, chunks = 0) => new Uint32Array([r, dd, inn, off, chunk, chunks, INF_BITS, 0]);
  if (rows > 0) {
    if (!usesTwoPass(rows, D)) {
      dispatch(kernel('reduce', 'arg_rows', spec), [values.bufferFor(op), indices.bufferFor(op), xc.bufferFor(op), xc.bufferFor(op)], params(rows, D, inner, xc.offset), groups2d(rows));
    } else {
      const { chunk, chunks } = chunking(D);
      const pv = empty([rows, chunks]);
      const pi = empty([rows, chunks], 'i32');
      dispatch(kernel('reduce', 'arg_partial', spec), [pv.bufferFor(op), pi.bufferFor(op), xc.bufferFor(op), xc.bufferFor(op)], params(rows, D, inner, xc.offset, chunk, chunks), groups2d(rows * chunks));
      const spec2 = { constants: { ARGMIN: argmin ? 1 : 0, PARTS: 1 } };
      dispatch(kernel('reduce', 'arg_rows', spec2), [values.bufferFor(op), indices.bufferFor(op), pv.bufferFor(op), pi.bufferFor(op)], params(rows, chunks, 1, 0), groups2d(rows));
      pv.dispose();
      pi.dispose();
    }
  }
  if (xc !== x) xc.dispose();
  return { values, indices };
}

/** Index of the largest element along `dim` (i32; the first one on ties, as PyTorch). Without
 * `dim`, the index into the flattened tensor. Not differentiable. */
export function argmax(x: Tensor, dim?: number, keepdim = false): Tensor {
  return argImpl('argmax', x, dim, keepdim, false);
}

/** Index of the smallest element along `dim` (see `argmax`). */
export function argmin(x: Tensor, dim?: number, keepdim = false): Tensor {
  return argImpl('argmin', x, dim, keepdim, true);
}

function argImpl(op: string, x: Tensor, dim: number | undefined, keepdim: boolean, isMin: boolean): Tensor {
  x.storageFor(op);
  if (dim === undefined) {
    if (x.size === 0) throw new OpError(op, `cannot reduce an empty tensor of shape [${x.shape.join(', ')}]`);
    const flat = reshape(x, [x.size]);
    const { values, indices } = argRaw(op, flat, 0, isMin, false);
    values.dispose();
    flat.dispose();
    if (!keepdim) return indices;
    const r = reshape(indices, x.shape.map(() => 1));
    indices.dispose();
    return r;
  }
  const { values, indices } = argRaw(op, x, dimOf(op, x, dim), isMin, keepdim);
  values.dispose();
  return indices;
}

/** torch.max(x, dim, keepdim): the largest values along `dim` and their (first) indices (i32).
 * `values` is differentiable: its gradient goes to the recorded index only. */
export function maxWithIndices(x: Tensor, dim: number, keepdim = false): { values: Tensor; indices: Tensor } {
  return withIndices('maxWithIndices', x, dim, keepdim, false);
}

/** torch.min(x, dim, keepdim): see `maxWithIndices`. */
export function minWithIndices(x: Tensor, dim: number, keepdim = false): { values: Tensor; indices: Tensor } {
  return withIndices('minWithIndices', x, dim, keepdim, true);
}

function withIndices(op: string, x: Tensor, dim: number, keepdim: boolean, isMin: boolean): { values: Tensor; indices: Tensor } {
  const d = dimOf(op, x, dim);
  const { values, indices } = argRaw(op, x, d, isMin, keepdim);
  const inShape = x.shape;
  record(op, values, [x], [indices], (g, [idx]) => {
    const gc = dense(g);
    const out = empty(inShape);
    const n = numel(inShape);
    if (n > 0) {
      const p = new Uint32Array([n, inShape[d], numel(inShape.slice(d + 1)), 0]);
      // idx is the saved `indices` output: fresh, row-major from offset 0
      dispatch(kernel('reduce', 'arg_scatter'), [out.bufferFor(op), gc.bufferFor(op), idx.bufferFor(op)], p, grid1d(n));
    }
    if (gc !== g) gc.dispose();
    return [out];
  });
  return { values, indices };
}

// ------------------------------------------------------------------------------ broadcasting

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

/** Broadcasts `t` to `shape` (a view with zero strides); its backward sums over the expansion.
 * Here beside sumToShape, so movement.ts needs nothing from the reductions. */
export function broadcastTo(t: Tensor, shape: readonly number[]): Tensor {
  const out = expandView(t, shape);
  const inShape = t.shape;
  return record('broadcastTo', out, [t], [], (g) => [sumToShape(g, inShape)]);
}
