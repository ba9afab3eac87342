/**
 * PyTorch-style methods on Tensor (`x.add(y).relu().sum()`), each a thin call of the op function
 * of the same name, so the op families stay free functions and tensor.ts stays free of op imports
 * (which would be circular). The `declare module` block only adds types; the assignments below
 * install the methods when this module is first imported (api.ts does so).
 */
import { Tensor } from './tensor.ts';
import { backward as backwardFn, detach as detachFn } from './autograd.ts';
import { add, sub, mul, div, maximum, minimum, compare, type TensorOrNumber } from './ops/binary.ts';
import {
  neg, abs, exp, log, sqrt, rsqrt, relu, leakyRelu, tanh, sigmoid, gelu, softplus, clamp, pow,
  square, reciprocal, sin, cos, where,
} from './ops/unary.ts';
import { sum, mean, max, min, argmax, argmin, logsumexp, type Axes } from './ops/reduce.ts';
import { reshape, permute, transpose, contiguous } from './ops/movement.ts';
import { broadcastTo } from './ops/reduce.ts';
import { slice, narrow, select, split, chunk, squeeze, unsqueeze, flatten, pad } from './ops/shape.ts';

declare module './tensor.ts' {
  interface Tensor {
    add(other: TensorOrNumber): Tensor;
    sub(other: TensorOrNumber): Tensor;
    mul(other: TensorOrNumber): Tensor;
    div(other: TensorOrNumber): Tensor;
    maximum(other: TensorOrNumber): Tensor;
    minimum(other: TensorOrNumber): Tensor;
    /** Comparisons give 1/0 in this tensor's dtype (no gradient). */
    eq(other: TensorOrNumber): Tensor;
    ne(other: TensorOrNumber): Tensor;
    lt(other: TensorOrNumber): Tensor;
    le(other: TensorOrNumber): Tensor;
    gt(other: TensorOrNumber): Tensor;
    ge(other: TensorOrNumber): Tensor;

    neg(): Tensor;
    abs(): Tensor;
    exp(): Tensor;
    log(): Tensor;
    sqrt(): Tensor;
    rsqrt(): Tensor;
    relu(): Tensor;
    leakyRelu(slope?: number): Tensor;
    tanh(): Tensor;
    sigmoid(): Tensor;
    gelu(approximate?: 'none' | 'tanh'): Tensor;
    softplus(beta?: number, threshold?: number): Tensor;
    clamp(min?: number | null, max?: number | null): Tensor;
    pow(exponent: number | Tensor): Tensor;
    square(): Tensor;
    reciprocal(): Tensor;
    sin(): Tensor;
    cos(): Tensor;
    /** condition ? this : other (torch.Tensor.where). */
    where(condition: Tensor, other: Tensor | number): Tensor;

    sum(axes?: Axes, keepdim?: boolean): Tensor;
    mean(axes?: Axes, keepdim?: boolean): Tensor;
    max(axes?: Axes, keepdim?: boolean): Tensor;
    min(axes?: Axes, keepdim?: boolean): Tensor;
    argmax(dim?: number, keepdim?: boolean): Tensor;
    argmin(dim?: number, keepdim?: boolean): Tensor;
    logsumexp(axes?: Axes, keepdim?: boolean): Tensor;

    /** New shape as an array or as arguments (`x.reshape(2, -1)`). */
    reshape(...shape: number[] | [readonly number[]]): Tensor;
    permute(...perm: number[] | [readonly number[]]): Tensor;
    transpose(dim0?: number, dim1?: number): Tensor;
    broadcastTo(shape: readonly number[]): Tensor;
    /** This tensor itself when row-major, else a row-major copy. */
    contiguous(): Tensor;

    slice(starts: readonly number[], ends: readonly number[], steps?: readonly number[]): Tensor;
    narrow(dim: number, start: number, length: number): Tensor;
    select(dim: number, index: number): Tensor;
    split(size: number | readonly number[], dim?: number): Tensor[];
    chunk(chunks: number, dim?: number): Tensor[];
    squeeze(dim?: number | readonly number[]): Tensor;
    unsqueeze(dim: number): Tensor;
    flatten(startDim?: number, endDim?: number): Tensor;
    pad(pads: readonly number[], value?: number): Tensor;

    /** Backpropagates from this tensor (a scalar, or with an explicit gradient of its shape). */
    backward(grad?: Tensor): void;
    /** A handle on the same storage, cut from the graph. */
    detach(): Tensor;
  }
}

/** `f(1, 2)` or `f([1, 2])`. */
function dims(args: readonly (number | readonly number[])[]): readonly number[] {
  return args.length === 1 && Array.isArray(args[0]) ? (args[0] as readonly number[]) : (args as readonly number[]);
}

const P = Tensor.prototype;

P.add = function (this: Tensor, other: TensorOrNumber) { return add(this, other); };
P.sub = function (this: Tensor, other: TensorOrNumber) { return sub(this, other); };
P.mul = function (this: Tensor, other: TensorOrNumber) { return mul(this, other); };
P.div = function (this: Tensor, other: TensorOrNumber) { return div(this, other); };
P.maximum = function (this: Tensor, other: TensorOrNumber) { return maximum(this, other); };
P.minimum = function (this: Tensor, other: TensorOrNumber) { return minimum(this, other); };
P.eq = function (this: Tensor, other: TensorOrNumber) { return compare('eq', this, other); };
P.ne = function (this: Tensor, other: TensorOrNumber) { return compare('ne', this, other); };
P.lt = function (this: Tensor, other: TensorOrNumber) { return compare('lt', this, other); };
P.le = function (this: Tensor, other: TensorOrNumber) { return compare('le', this, other); };
P.gt = function (this: Tensor, other: TensorOrNumber) { return compare('gt', this, other); };
P.ge = function (this: Tensor, other: TensorOrNumber) { return compare('ge', this, other); };

P.neg = function (this: Tensor) { return neg(this); };
P.abs = function (this: Tensor) { return abs(this); };
P.exp = function (this: Tensor) { return exp(this); };
P.log = function (this: Tensor) { return log(this); };
P.sqrt = function (this: Tensor) { return sqrt(this); };
P.rsqrt = function (this: Tensor) { return rsqrt(this); };
P.relu = function (this: Tensor) { return relu(this); };
P.leakyRelu = function (this: Tensor, slope?: number) { return leakyRelu(this, slope); };
P.tanh = function (this: Tensor) { return tanh(this); };
P.sigmoid = function (this: Tensor) { return sigmoid(this); };
P.gelu = function (this: Tensor, approximate?: 'none' | 'tanh') { return gelu(this, approximate); };
P.softplus = function (this: Tensor, beta?: number, threshold?: number) { return softplus(this, beta, threshold); };
P.clamp = function (this: Tensor, lo?: number | null, hi?: number | null) { return clamp(this, lo, hi); };
P.pow = function (this: Tensor, exponent: number | Tensor) { return pow(this, exponent); };
P.square = function (this: Tensor) { return square(this); };
P.reciprocal = function (this: Tensor) { return reciprocal(this); };
P.sin = function (this: Tensor) { return sin(this); };
P.cos = function (this: Tensor) { return cos(this); };
P.where = function (this: Tensor, condition: Tensor, other: Tensor | number) { return where(condition, this, other); };

P.sum = function (this: Tensor, axes?: Axes, keepdim?: boolean) { return sum(this, axes, keepdim); };
P.mean = function (this: Tensor, axes?: Axes, keepdim?: boolean) { return mean(this, axes, keepdim); };
P.max = function (this: Tensor, axes?: Axes, keepdim?: boolean) { return max(this, axes, keepdim); };
P.min = function (this: Tensor, axes?: Axes, keepdim?: boolean) { return min(this, axes, keepdim); };
P.argmax = function (this: Tensor, dim?: number, keepdim?: boolean) { return argmax(this, dim, keepdim); };
P.argmin = function (this: Tensor, dim?: number, keepdim?: boolean) { return argmin(this, dim, keepdim); };
P.logsumexp = function (this: Tensor, axes?: Axes, keepdim?: boolean) { return logsumexp(this, axes, keepdim); };

P.reshape = function (this: Tensor, ...shape: number[] | [readonly number[]]) { return reshape(this, dims(shape)); };
P.permute = function (this: Tensor, ...perm: number[] | [readonly number[]]) { return permute(this, dims(perm)); };
P.transpose = function (this: Tensor, dim0?: number, dim1?: number) { return transpose(this, dim0, dim1); };
P.broadcastTo = function (this: Tensor, shape: readonly number[]) { return broadcastTo(this, shape); };
P.contiguous = function (this: Tensor) { return contiguous(this); };

P.slice = function (this: Tensor, starts: readonly number[], ends: readonly number[], steps?: readonly number[]) { return slice(this, starts, ends, steps); };
P.narrow = function (this: Tensor, dim: number, start: number, length: number) { return narrow(this, dim, start, length); };
P.select = function (this: Tensor, dim: number, index: number) { return select(this, dim, index); };
P.split = function (this: Tensor, size: number | readonly number[], dim?: number) { return split(this, size, dim); };
P.chunk = function (this: Tensor, chunks: number, dim?: number) { return chunk(this, chunks, dim); };
P.squeeze = function (this: Tensor, dim?: number | readonly number[]) { return squeeze(this, dim); };
P.unsqueeze = function (this: Tensor, dim: number) { return unsqueeze(this, dim); };
P.flatten = function (this: Tensor, startDim?: number, endDim?: number) { return flatten(this, startDim, endDim); };
P.pad = function (this: Tensor, pads: readonly number[], value?: number) { return pad(this, pads, value); };

P.backward = function (this: Tensor, grad?: Tensor) { backwardFn(this, grad); };
P.detach = function (this: Tensor) { return detachFn(this); };
