/**
 * Views and movement. reshape, permute/transpose and broadcastTo are views (no copy) whenever the
 * strides allow; `contiguous` copies a view into row-major memory for kernels that need it.
 * Each op's backward sits beside it.
 */
import { Tensor, empty, numel, checkShape, contiguousStrides } from '../tensor.ts';
import { record } from '../autograd.ts';
import { OpError } from '../errors.ts';
import { copyInto, copyRaw } from './copy.ts';
import { broadcastStrides } from './launch.ts';

export { copyInto };

/** A row-major copy of `t` (always a new tensor; autograd passes the gradient through). */
export function contiguousCopy(t: Tensor): Tensor {
  const out = copyRaw(t);
  return record('contiguous', out, [t], [], (g) => [g]);
}

/** `t` itself when already row-major with offset 0 (the caller must not dispose it twice), else a
 * copy. Use `contiguousCopy` when a distinct tensor is needed. */
export function contiguous(t: Tensor): Tensor {
  t.storageFor('contiguous');
  return t.isContiguous ? t : contiguousCopy(t);
}

/** Shape with at most one -1, resolved against `size`. */
export function resolveShape(op: string, shape: readonly number[], size: number, from: readonly number[]): number[] {
  const free = shape.filter((d) => d === -1).length;
  if (free > 1) throw new OpError(op, `only one dimension may be -1 in [${shape.join(', ')}]`);
  const known = shape.reduce((a, d) => (d === -1 ? a : a * d), 1);
  const out = shape.map((d) => (d === -1 ? (known === 0 ? 0 : size / known) : d));
  checkShape(op, out);
  if (numel(out) !== size) {
    throw new OpError(op, `cannot reshape [${from.join(', ')}] (${size} elements) into [${shape.join(', ')}]`);
  }
  return out;
}

/** Reshape: a view for row-major tensors, a copy otherwise. */
export function reshape(t: Tensor, shape: readonly number[]): Tensor {
  t.storageFor('reshape');
  const target = resolveShape('reshape', shape, t.size, t.shape);
  const inShape = t.shape;
  let out: Tensor;
  if (t.isContiguous) {
    out = t.view(target, contiguousStrides(target), t.offset);
  } else {
    const c = empty(t.shape, t.dtype);
    copyInto(c, t);
    out = c.view(target, contiguousStrides(target), 0);
    c.dispose();
  }
  return record('reshape', out, [t], [], (g) => [reshape(g, inShape)]);
}


/** Reorders dimensions (a view). `perm[i]` is the input dimension that becomes dimension i. */
export function permute(t: Tensor, perm: readonly number[]): Tensor {
  t.storageFor('permute');
  const r = t.rank;
  const p = perm.map((d) => (d < 0 ? d + r : d));
  if (p.length !== r || new Set(p).size !== r || p.some((d) => d < 0 || d >= r)) {
    throw new OpError('permute', `[${perm.join(', ')}] is not a permutation of the ${r} dimensions of [${t.shape.join(', ')}]`);
  }
  const out = t.view(p.map((d) => t.shape[d]), p.map((d) => t.strides[d]), t.offset);
  const inverse = new Array<number>(r);
  p.forEach((d, i) => (inverse[d] = i));
  return record('permute', out, [t], [], (g) => [permute(g, inverse)]);
}

/** Swaps two dimensions (a view). */
export function transpose(t: Tensor, dim0 = -2, dim1 = -1): Tensor {
  const r = t.rank;
  if (r < 2 && dim0 === -2 && dim1 === -1) return permute(t, [...Array(r).keys()]);
  const a = dim0 < 0 ? dim0 + r : dim0;
  const b = dim1 < 0 ? dim1 + r : dim1;
  if (a < 0 || a >= r || b < 0 || b >= r) {
    throw new OpError('transpose', `dimensions ${dim0} and ${dim1} out of range for shape [${t.shape.join(', ')}]`);
  }
  const perm = [...Array(r).keys()];
  perm[a] = b;
  perm[b] = a;
  return permute(t, perm);
}

/** `t` viewed at `shape` with zero strides along broadcast dimensions, without recording a graph
 * (broadcastTo in reduce.ts records it, its backward being a sum). */
export function expandView(t: Tensor, shape: readonly number[]): Tensor {
  t.storageFor('broadcastTo');
  checkShape('broadcastTo', shape);
  const strides = broadcastStrides('broadcastTo', t, shape);
  return t.view(shape, strides, t.offset);
}
