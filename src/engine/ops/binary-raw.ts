/** Binary elementwise kernels without autograd (kernels/elementwise.wgsl): what the recording
 * ops in binary.ts, the reductions' backwards and autograd's accumulation all call. */
import { Tensor, empty } from '../tensor.ts';
import { OpError } from '../errors.ts';
import { dispatch, grid1d, kernel, stridedParams, defines, broadcastStrides, broadcastShapes } from './launch.ts';
import { full } from './creation.ts';
import { copyInto } from './copy.ts';

export const BINARY_OPS = { add: 0, sub: 1, mul: 2, div: 3, maximum: 4, minimum: 5, eq: 6, ne: 7, lt: 8, le: 9, gt: 10, ge: 11 } as const;
export type CompareOp = 'eq' | 'ne' | 'lt' | 'le' | 'gt' | 'ge';
export type BinaryOp = keyof typeof BINARY_OPS;

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

/** out = a (op) b without autograd; `out` given means write there (same shape as the broadcast). */
export function binaryRaw(op: BinaryOp, a: Tensor, b: Tensor, out?: Tensor): Tensor {
  a.storageFor(op);
  b.storageFor(op);
  if (a.dtype !== b.dtype) throw new OpError(op, `dtype mismatch: ${a.dtype} and ${b.dtype} (shapes [${a.shape.join(', ')}] and [${b.shape.join(', ')}])`);
  const shape = broadcastShapes(op, a.shape, b.shape);
  if (out && !sameShape(out.shape, shape)) throw new OpError(op, `output of shape [${out.shape.join(', ')}] cannot hold the result of shape [${shape.join(', ')}]`);
  if (out && (out.bufferFor(op) === a.bufferFor(op) || out.bufferFor(op) === b.bufferFor(op))) {
    // WebGPU forbids binding one buffer as both written and read in a dispatch: go through a
    // temporary (in-place updates here are gradient accumulation, not a hot path).
    const tmp = binaryRaw(op, a, b);
    copyInto(out, tmp);
    tmp.dispose();
    return out;
  }
  const o = out ?? empty(shape, a.dtype);
  if (o.size === 0) return o;
  const spec = { defines: defines(a.dtype), constants: { OP: BINARY_OPS[op] } };
  const buffers = [o.bufferFor(op), a.bufferFor(op), b.bufferFor(op)];
  const flat = o.isContiguous && a.isContiguous && b.isContiguous && sameShape(a.shape, shape) && sameShape(b.shape, shape);
  if (flat) {
    const params = stridedParams([o.size], [
      { strides: [1], offset: o.offset },
      { strides: [1], offset: a.offset },
      { strides: [1], offset: b.offset },
    ]);
    dispatch(kernel('elementwise', 'binary_flat', spec), buffers, params, grid1d(o.size));
  } else {
    const params = stridedParams(shape, [
      { strides: broadcastStrides(op, o, shape), offset: o.offset },
      { strides: broadcastStrides(op, a, shape), offset: a.offset },
      { strides: broadcastStrides(op, b, shape), offset: b.offset },
    ]);
    dispatch(kernel('elementwise', 'binary', spec), buffers, params, grid1d(o.size));
  }
  return o;
}

/** x * c without autograd. */
export function scaleRaw(x: Tensor, c: number): Tensor {
  const s = full([], c, x.dtype);
  const r = binaryRaw('mul', x, s);
  s.dispose();
  return r;
}

/** dst += src in place (dst contiguous, src broadcastable to it); no autograd. */
export function addInto(dst: Tensor, src: Tensor): void {
  binaryRaw('add', dst, src, dst);
}

/** Comparison as 1/0 in the operands' dtype (not differentiable). */
export function compareRaw(op: CompareOp, a: Tensor, b: Tensor): Tensor {
  return binaryRaw(op, a, b);
}

