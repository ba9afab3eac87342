/** Strided copies without autograd: the kernel every movement op and autograd's own gradient
 * bookkeeping share (a file below autograd, so the engine's imports stay a DAG). */
import { empty, type Tensor } from '../tensor.ts';
import { dispatch, grid1d, kernel, stridedParams, defines } from './launch.ts';

/** Elements each copy_strided thread copies (RUN in kernels/copy.wgsl). */
const COPY_RUN = 8;

/** Copies `src` (any strides) into `dst` (any strides) of the same shape. */
export function copyInto(dst: Tensor, src: Tensor): void {
  if (dst.size === 0) return;
  const params = stridedParams(src.shape, [dst, src]);
  // RUN (kernels/copy.wgsl) elements per thread
  dispatch(kernel('copy', 'copy_strided', { defines: defines(src.dtype) }), [dst.bufferFor('copy'), src.bufferFor('copy')], params, grid1d(Math.ceil(src.size / COPY_RUN)));
}

/** A row-major copy of `t` as a new tensor, without recording a graph. */
export function copyRaw(t: Tensor): Tensor {
  t.storageFor('contiguous');
  const out = empty(t.shape, t.dtype);
  copyInto(out, t);
  return out;
}

/**
 * dst = src elementwise (same shape, any strides). WebGPU forbids a dispatch that writes a buffer
 * it also reads (two parameters of one arena, a gradient that is a view of another's slot): such
 * copies go through a temporary.
 */
export function copyValues(dst: Tensor, src: Tensor): void {
  if (dst.bufferFor('copy') !== src.bufferFor('copy')) {
    copyInto(dst, src);
    return;
  }
  const tmp = empty(src.shape, src.dtype);
  copyInto(tmp, src);
  copyInto(dst, tmp);
  tmp.dispose();
}
