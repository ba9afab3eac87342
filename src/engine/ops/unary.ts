/**
 * Unary elementwise ops (kernels/unary.wgsl), `where`, and powers, each with its backward beside
 * it. Inputs may be any strided view; contiguous inputs take a flat path without index arithmetic.
 * The backward of a unary op is one kernel computing g * f'(x) from the saved input (f' is
 * recomputed in a numerically stable form rather than derived from the output).
 */
import { Tensor, empty } from '../tensor.ts';
import { record } from '../autograd.ts';
import { OpError } from '../errors.ts';
import { dispatch, grid1d, kernel, stridedParams, broadcastStrides, broadcastShapes, defines } from './launch.ts';
import { full } from './creation.ts';
import { binaryRaw } from './binary.ts';
import { sumToShape } from './reduce.ts';

const OPS = {
  neg: 0, abs: 1, exp: 2, log: 3, sqrt: 4, rsqrt: 5, relu: 6, leakyRelu: 7, tanh: 8, sigmoid: 9,
  gelu: 10, geluTanh: 11, softplus: 12, clamp: 13, pow: 14, square: 15, reciprocal: 16, sin: 17, cos: 18,
} as const;
export type UnaryOp = keyof typeof OPS;

const F32_MAX = 3.4028234663852886e38;

interface Operand {
  strides: readonly number[];
  offset: number;
}

/**
 * Merges dimensions that every operand walks as one (stride[d] == stride[d+1] * shape[d+1] for
 * all of them) and drops size-1 dimensions, as PyTorch's TensorIterator coalesces: fewer index
 * divisions per element (a broadcast scalar or a contiguous slice becomes rank 1).
 */
export function coalesce(shape: readonly number[], ops: readonly Operand[]): { shape: number[]; ops: Operand[] } {
  const dims: number[] = [];
  const strides: number[][] = ops.map(() => []);
  for (let d = shape.length - 1; d >= 0; d--) {
    const n = shape[d];
    if (n === 1) continue;
    const last = dims.length - 1;
    if (last >= 0 && ops.every((op, k) => op.strides[d] === strides[k][last] * dims[last])) {
      dims[last] *= n;
    } else {
      dims.push(n);
      ops.forEach((op, k) => strides[k].push(op.strides[d]));
    }
  }
  if (dims.length === 0) return { shape: [1], ops: ops.map((op) => ({ strides: [0], offset: op.offset })) };
  return { shape: dims.reverse(), ops: ops.map((op, k) => ({ strides: strides[k].reverse(), offset: op.offset })) };
}

/** stridedParams for unary.wgsl's block over the coalesced shape: always four operands (out, a,
 * b, c), the fourth offset in the last header word. */
function params4(fullShape: readonly number[], fullOps: readonly Operand[], scalars: readonly number[] = []): Uint32Array {
  const { shape, ops } = coalesce(fullShape, fullOps);
  const filler: Operand = { strides: new Array<number>(shape.length).fill(0), offset: 0 };
  const all = [...ops];
  while (all.length < 4) all.push(filler);
  const buf = stridedParams(shape, all, scalars);
  buf[7] = all[3].offset;
  return buf;
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

function checkF32(op: string, x: Tensor): void {
  x.storageFor(op);
  if (x.dtype !== 'f32') throw new OpError(op, `expects an f32 tensor, got ${x.dtype} of shape [${x.shape.join(', ')}]`);
}

/** f(x) without autograd; `scalars` fill the alpha/beta slots. */
export function unaryRaw(op: UnaryOp, x: Tensor, scalars: readonly number[] = []): Tensor {
  checkF32(op, x);
  const out = empty(x.shape, 'f32');
  if (out.size === 0) return out;
  const spec = { defines: defines('f32'), constants: { OP: OPS[op] } };
  const buffers = [out.bufferFor(op), x.bufferFor(op)];
  if (x.isContiguous) {
    const params = params4([out.size], [{ strides: [1], offset: 0 }, { strides: [1], offset: x.offset }], scalars);
    dispatch(kernel('unary', 'unary_flat', spec), buffers, params, grid1d(out.size));
  } else {
    const params = params4(x.shape, [out, x], scalars);
    dispatch(kernel('unary', 'unary', spec), buffers, params, grid1d(out.size));
  }
  return out;
}

/** g * f'(x) without autograd (x and g of the same shape, any strides). */
export function unaryGradRaw(op: UnaryOp, x: Tensor, g: Tensor, scalars: readonly number[] = []): Tensor {
  checkF32(op, x);
  checkF32(op, g);
  if (!sameShape(x.shape, g.shape)) throw new OpError(`${op} backward`, `gradient of shape [${g.shape.join(', ')}] does not match input [${x.shape.join(', ')}]`);
  const out = empty(x.shape, 'f32');
  if (out.size === 0) return out;
  const spec = { defines: defines('f32'), constants: { OP: OPS[op] } };
  const buffers = [out.bufferFor(op), x.bufferFor(op), g.bufferFor(op)];
  if (x.isContiguous && g.isContiguous) {
    const params = params4([out.size], [{ strides: [1], offset: 0 }, { strides: [1], offset: x.offset }, { strides: [1], offset: g.offset }], scalars);
    dispatch(kernel('unary', 'unary_grad_flat', spec), buffers, params, grid1d(out.size));
  } else {
    const params = params4(x.shape, [out, x, g], scalars);
    dispatch(kernel('unary', 'unary_grad', spec), buffers, params, grid1d(out.size));
  }
  return out;
}

/** A differentiable unary op: forward kernel, and g * f'(x) from the saved input. */
function unaryOp(op: UnaryOp, x: Tensor, scalars: readonly number[] = []): Tensor {
  const out = unaryRaw(op, x, scalars);
  return record(op, out, [x], [x], (g, [xs]) => [unaryGradRaw(op, xs, g, scalars)]);
}

export function neg(x: Tensor): Tensor {
  return unaryOp('neg', x);
}
/** |x|; the gradient at 0 is 0 (sign(0)), as PyTorch's. */
export function abs(x: Tensor): Tensor {
  return unaryOp('abs', x);
}
/** e^x; +inf past f32's range instead of the undefined result of WGSL's exp there. */
export function exp(x: Tensor): Tensor {
  return unaryOp('exp', x);
}
/** Natural log: log(0) = -inf, log(x < 0) = NaN (PyTorch's values). */
export function log(x: Tensor): Tensor {
  return unaryOp('log', x);
}
export function sqrt(x: Tensor): Tensor {
  return unaryOp('sqrt', x);
}
/** 1 / sqrt(x); rsqrt(0) = inf. */
export function rsqrt(x: Tensor): Tensor {
  return unaryOp('rsqrt', x);
}
/** max(x, 0); the gradient at exactly 0 is 0 (PyTorch). */
export function relu(x: Tensor): Tensor {
  return unaryOp('relu', x);
}
/** x for x > 0, slope * x otherwise (PyTorch's default slope 0.01). */
export function leakyRelu(x: Tensor, slope = 0.01): Tensor {
  if (!Number.isFinite(slope)) throw new OpError('leakyRelu', `slope must be finite, got ${slope}`);
  return unaryOp('leakyRelu', x, [slope]);
}
/** tanh through e = exp(-2|x|): no overflow for any input. */
export function tanh(x: Tensor): Tensor {
  return unaryOp('tanh', x);
}
/** 1 / (1 + e^-x) through exp(-|x|): no overflow for any input. */
export function sigmoid(x: Tensor): Tensor {
  return unaryOp('sigmoid', x);
}
/** GELU: x Phi(x) with the exact normal CDF (PyTorch's default, approximate='none'), or PyTorch's
 * tanh approximation with `approximate: 'tanh'`. */
export function gelu(x: Tensor, approximate: 'none' | 'tanh' = 'none'): Tensor {
  if (approximate !== 'none' && approximate !== 'tanh') throw new OpError('gelu', `approximate must be 'none' or 'tanh', got '${String(approximate)}'`);
  return unaryOp(approximate === 'tanh' ? 'geluTanh' : 'gelu', x);
}
/** log(1 + e^(beta x)) / beta, and x itself where beta x > threshold (PyTorch's defaults 1, 20). */
export function softplus(x: Tensor, beta = 1, threshold = 20): Tensor {
  if (!Number.isFinite(beta) || beta === 0) throw new OpError('softplus', `beta must be finite and non-zero, got ${beta}`);
  if (Number.isNaN(threshold)) throw new OpError('softplus', 'threshold is NaN');
  return unaryOp('softplus', x, [beta, threshold]);
}
/** Clamps into [min, max] (either bound may be omitted); the gradient flows where
 * min <= x <= max, and NaN stays NaN (PyTorch). */
export function clamp(x: Tensor, min?: number | null, max?: number | null): Tensor {
  const lo = min ?? -Infinity;
  const hi = max ?? Infinity;
  if (Number.isNaN(lo) || Number.isNaN(hi)) throw new OpError('clamp', `bounds must not be NaN (min ${min}, max ${max})`);
  if (min == null && max == null) throw new OpError('clamp', 'at least one of min and max must be given');
  // infinities become +-FLT_MAX (the comparisons then give the same results)
  return unaryOp('clamp', x, [Math.max(lo, -F32_MAX), Math.min(hi, F32_MAX)]);
}
export function square(x: Tensor): Tensor {
  return unaryOp('square', x);
}
export function reciprocal(x: Tensor): Tensor {
  return unaryOp('reciprocal', x);
}
export function sin(x: Tensor): Tensor {
  return unaryOp('sin', x);
}
export function cos(x: Tensor): Tensor {
  return unaryOp('cos', x);
}

/**
 * x ** exponent. A number exponent runs the unary kernel (negative bases with integer exponents
 * keep C pow's sign, non-integer exponents of negative bases give NaN, 0 ** 0 = 1); a tensor
 * exponent broadcasts against x and both get gradients (d/dexponent = x^e log x, taken as 0 where
 * x == 0 and e >= 0, as PyTorch does).
 */
export function pow(x: Tensor, exponent: number | Tensor): Tensor {
  if (exponent instanceof Tensor) return powT(x, exponent);
  if (typeof exponent !== 'number') throw new OpError('pow', `exponent must be a number or a Tensor, got ${typeof exponent}`);
  if (Number.isNaN(exponent)) throw new OpError('pow', 'exponent is NaN');
  return unaryOp('pow', x, [exponent]);
}

/** Tensor ^ tensor kernel (OP 0 value, 1 d/da, 2 d/db) over the broadcast shape; no autograd. */
function powRaw(which: 0 | 1 | 2, a: Tensor, b: Tensor): Tensor {
  const shape = broadcastShapes('pow', a.shape, b.shape);
  const out = empty(shape, 'f32');
  if (out.size === 0) return out;
  const params = params4(shape, [
    { strides: broadcastStrides('pow', out, shape), offset: 0 },
    { strides: broadcastStrides('pow', a, shape), offset: a.offset },
    { strides: broadcastStrides('pow', b, shape), offset: b.offset },
  ]);
  dispatch(kernel('unary', 'pow_tt', { defines: defines('f32'), constants: { OP: which } }), [out.bufferFor('pow'), a.bufferFor('pow'), b.bufferFor('pow')], params, grid1d(out.size));
  return out;
}

/** Tensor ^ tensor with broadcasting (see `pow`). */
export function powT(a: Tensor, b: Tensor): Tensor {
  checkF32('pow', a);
  checkF32('pow', b);
  const out = powRaw(0, a, b);
  const [sa, sb] = [a.shape, b.shape];
  return record('pow', out, [a, b], [a, b], (g, [as, bs]) => {
    const da = powRaw(1, as, bs);
    const ga = binaryRaw('mul', g, da);
    da.dispose();
    const db = powRaw(2, as, bs);
    const gb = binaryRaw('mul', g, db);
    db.dispose();
    return [reduced(ga, sa), reduced(gb, sb)];
  });
}

function reduced(t: Tensor, shape: readonly number[]): Tensor {
  const r = sumToShape(t, shape);
  if (r !== t) t.dispose();
  return r;
}

/** The where kernel over the broadcast of the three shapes; no autograd. */
export function whereRaw(cond: Tensor, a: Tensor, b: Tensor): Tensor {
  cond.storageFor('where');
  a.storageFor('where');
  b.storageFor('where');
  if (a.dtype !== b.dtype) throw new OpError('where', `dtype mismatch: ${a.dtype} and ${b.dtype} (shapes [${a.shape.join(', ')}] and [${b.shape.join(', ')}])`);
  const shape = broadcastShapes('where', broadcastShapes('where', cond.shape, a.shape), b.shape);
  const out = empty(shape, a.dtype);
  if (out.size === 0) return out;
  const params = params4(
    shape,
    [
      { strides: broadcastStrides('where', out, shape), offset: 0 },
      { strides: broadcastStrides('where', a, shape), offset: a.offset },
      { strides: broadcastStrides('where', b, shape), offset: b.offset },
      { strides: broadcastStrides('where', cond, shape), offset: cond.offset },
    ],
  );
  params[5] = cond.dtype === 'f32' ? 1 : 0;
  const buffers = [out.bufferFor('where'), a.bufferFor('where'), b.bufferFor('where'), cond.bufferFor('where')];
  dispatch(kernel('unary', 'where_select', { defines: defines(a.dtype), constants: {} }), buffers, params, grid1d(out.size));
  return out;
}

/**
 * cond ? a : b elementwise, broadcasting all three (cond is 1/0 in f32, i32 or u32; any non-zero
 * counts as true). Numbers are allowed for a and b. The gradient goes to a where cond holds and
 * to b elsewhere; cond gets none.
 */
export function where(cond: Tensor, a: Tensor | number, b: Tensor | number): Tensor {
  if (!(cond instanceof Tensor)) throw new OpError('where', 'the condition must be a Tensor');
  const dtype = a instanceof Tensor ? a.dtype : b instanceof Tensor ? b.dtype : 'f32';
  const x = a instanceof Tensor ? a : full([], a, dtype);
  const y = b instanceof Tensor ? b : full([], b, dtype);
  try {
    const out = whereRaw(cond, x, y);
    const [sx, sy] = [x.shape, y.shape];
    return record('where', out, [x, y], [cond], (g, [c]) => {
      const zero = full([], 0, g.dtype);
      const gx = whereRaw(c, g, zero);
      const gy = whereRaw(c, zero, g);
      zero.dispose();
      return [reduced(gx, sx), reduced(gy, sy)];
    });
  } finally {
    if (x !== a) x.dispose();
    if (y !== b) y.dispose();
  }
}
