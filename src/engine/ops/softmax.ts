/**
 * Softmax and log-softmax along any axis (kernels/softmax.wgsl), backward beside forward.
 *
 * The kernel works on the last axis of a row-major [rows, cols] matrix, one workgroup per row;
 * another axis is moved last first (a permute and a copy), and the result is viewed back in the
 * input's dimension order (a strided view, no second copy).
 */
import { Tensor, empty } from '../tensor.ts';
import { record } from '../autograd.ts';
import { OpError } from '../errors.ts';
import { dispatch, kernel } from './launch.ts';
import { contiguous } from './movement.ts';
import { dense } from './reduce.ts';

/** Workgroup size for rows of `cols` elements: a power of two from 32 to 256. */
export function rowWorkgroup(cols: number): number {
  let wg = 32;
  while (wg < cols && wg < 256) wg *= 2;
  return wg;
}

function groups2d(groups: number): [number, number] {
  const gx = Math.min(groups, 32768);
  return [gx, Math.ceil(groups / gx)];
}

/** The permutation that moves `d` last, and its inverse. */
function lastPerm(rank: number, d: number): { perm: number[]; inv: number[] } {
  const perm = [...Array(rank).keys()].filter((i) => i !== d);
  perm.push(d);
  const inv = new Array<number>(rank);
  perm.forEach((p, i) => (inv[p] = i));
  return { perm, inv };
}

function permView(t: Tensor, perm: readonly number[]): Tensor {
  return t.view(perm.map((d) => t.shape[d]), perm.map((d) => t.strides[d]), t.offset);
}

function isIdentity(perm: readonly number[]): boolean {
  return perm.every((d, i) => d === i);
}

/** Runs the row kernel on `x` moved so that dim `d` is last; returns the [.., cols] result. */
function rowsKernel(op: string, entry: 'softmax_fwd' | 'softmax_bwd', log: boolean, a: Tensor, g: Tensor | null): Tensor {
  const cols = a.shape[a.rank - 1] ?? 1;
  const rows = cols === 0 ? 0 : a.size / cols;
  const out = empty(a.shape);
  if (rows > 0) {
    const p = new Uint32Array([rows, cols, a.offset, g ? g.offset : 0]);
    const spec = { constants: { WG: rowWorkgroup(cols), LOG: log ? 1 : 0 } };
    const buffers = [out.bufferFor(op), a.bufferFor(op)];
    if (g) buffers.push(g.bufferFor(op));
    dispatch(kernel('softmax', entry, spec), buffers, p, groups2d(rows));
  }
  return out;
}

function softmaxImpl(op: string, x: Tensor, dim: number, log: boolean): Tensor {
  x.storageFor(op);
  if (x.dtype !== 'f32') throw new OpError(op, `expects an f32 tensor, got ${x.dtype} of shape [${x.shape.join(', ')}]`);
  const rank = Math.max(x.rank, 1);
  const d = dim < 0 ? dim + rank : dim;
  if (!Number.isInteger(d) || d < 0 || d >= rank) throw new OpError(op, `dimension ${dim} out of range for shape [${x.shape.join(', ')}]`);
  const xr = x.rank === 0 ? x.view([1], [1], x.offset) : x;
  const { perm, inv } = lastPerm(xr.rank, d);
  const moved = isIdentity(perm) ? xr : permView(xr, perm);
  const src = contiguous(moved);
  const y = rowsKernel(op, 'softmax_fwd', log, src, null);
  if (src !== moved) src.dispose();
  if (moved !== xr) moved.dispose();
  if (xr !== x) xr.dispose();
  // y is [.., cols] in the moved order; the caller sees it in the input's order
  const out = viewBack(y, inv, x.shape, false);
  const inShape = x.shape;
  const res = record(op, out, [x], [y], (g, [ys]) => {
    const gr = g.rank === 0 ? g.view([1], [1], g.offset) : g;
    const gm = isIdentity(perm) ? gr : permView(gr, perm);
    const gc = dense(gm);
    const dx = rowsKernel(op, 'softmax_bwd', log, ys, gc);
    if (gc !== gm) gc.dispose();
    if (gm !== gr) gm.dispose();
    if (gr !== g) gr.dispose();
    return [viewBack(dx, inv, inShape, true)];
  });
  if (out !== y) y.dispose();
  return res;
}

/** `t` ([.., cols], moved order) viewed in the original order and shape (`t` disposed when
 * `consume` and a new view was made). */
function viewBack(t: Tensor, inv: readonly number[], shape: readonly number[], consume: boolean): Tensor {
  if (isIdentity(inv) && t.rank === shape.length) return t;
  const v = isIdentity(inv) ? t : permView(t, inv);
  const r = v.rank === shape.length ? v : v.view(shape, [], v.offset);
  if (v !== t && consume) t.dispose();
  if (r !== v) v.dispose();
  return r;
}

/** softmax(x) along `dim` (default the last): exp(x - max) / sum(exp(x - max)). */
export function softmax(x: Tensor, dim = -1): Tensor {
  return softmaxImpl('softmax', x, dim, false);
}

/** log(softmax(x)) along `dim`, computed as x - max - log(sum(exp(x - max))): finite wherever the
 * softmax underflows to 0. */
export function logSoftmax(x: Tensor, dim = -1): Tensor {
  return softmaxImpl('logSoftmax', x, dim, true);
}

