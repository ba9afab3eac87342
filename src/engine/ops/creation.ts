/** Tensors made on the GPU: full/zeros/ones (a fill kernel), and their *Like forms. */
import { empty, type DType, type Shape, type Tensor } from '../tensor.ts';
import { dispatch, grid1d, kernel, defines, f32Bits } from './launch.ts';

/** Fills the contiguous range [offset, offset+n) of `t`'s storage with `value`. */
export function fillRange(t: Tensor, offset: number, n: number, value: number): void {
  if (n === 0) return;
  const params = new Uint32Array(4);
  params[0] = n;
  params[1] = offset;
  // an i32 lands as its two's-complement bits (a Uint32Array stores a number modulo 2^32)
  params[2] = t.dtype === 'f32' ? f32Bits(value) : value;
  dispatch(kernel('fill', 'fill', { defines: defines(t.dtype) }), [t.bufferFor('fill')], params, grid1d(n));
}

export function full(shape: Shape, value: number, dtype: DType = 'f32'): Tensor {
  const t = empty(shape, dtype);
  fillRange(t, 0, t.size, value);
  return t;
}

export function zeros(shape: Shape, dtype: DType = 'f32'): Tensor {
  return full(shape, 0, dtype);
}

export function ones(shape: Shape, dtype: DType = 'f32'): Tensor {
  return full(shape, 1, dtype);
}

export function zerosLike(t: Tensor): Tensor {
  return full(t.shape, 0, t.dtype);
}

export function onesLike(t: Tensor): Tensor {
  return full(t.shape, 1, t.dtype);
}

export function fullLike(t: Tensor, value: number): Tensor {
  return full(t.shape, value, t.dtype);
}
