/** The kernels autograd itself needs: the seed gradient, copies, and accumulation. */
import type { Tensor } from '../tensor.ts';
import { onesLike } from './creation.ts';
import { copyRaw, copyValues } from './copy.ts';
import { binaryRaw, addInto } from './binary-raw.ts';

export { onesLike, addInto, copyValues };

/** A row-major copy with offset 0 (a gradient the caller may keep or modify in place). */
export function copyOf(t: Tensor): Tensor {
  return copyRaw(t);
}

/** a + b as a new tensor, without recording a graph. */
export function add(a: Tensor, b: Tensor): Tensor {
  return binaryRaw('add', a, b);
}
